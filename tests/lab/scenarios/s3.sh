#!/usr/bin/env bash
# shellcheck shell=bash
#
# s3.sh - a repository in a bucket with the two GENERATED least-privilege keys, against
# moto's S3 server with IAM enforcement on (facts.md §9), pgBackRest 2.59.1 over plain
# HTTP: apply.sh writes each side's key, verify.sh's delete probe; the backup side runs
# stanza-create, check, two full backups and expire; the database side archives and
# restores; every destructive act with the database-side key (pgBackRest expire,
# stanza-delete --force, raw deletes and overwrites of backup.info, a manifest,
# archive.info, a WAL file) is denied while archiving keeps working; with object lock
# (COMPLIANCE) no version can be destroyed, and the backup expire removed is restored
# from the bucket's versions (--repo-target-time) with the same rows.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

S3_VENV=/var/cache/pgbr-lab/moto
S3_PGBACKREST=/opt/pgbackrest-2.59.1/bin/pgbackrest

# moto[server] + boto3 in a virtualenv built from /usr/bin/python3 (never over Debian's
# Python). .ci/run installs it; a lab run without it installs it here.
s3_venv_ready() {
  [ -x "$S3_VENV/bin/moto_server" ] && "$S3_VENV/bin/python" -c 'import boto3, moto' 2>/dev/null && return 0
  echo "lab: s3: installing moto[server]==5.2.5 and boto3 into $S3_VENV (PyPI)" >&2
  mkdir -p "$(dirname "$S3_VENV")"
  /usr/bin/python3 -m venv "$S3_VENV" && "$S3_VENV/bin/pip" install -q 'moto[server]==5.2.5' boto3
}

# SCENARIO s3: pgBackRest 2.59.1, plain HTTP to moto. SCENARIO s3-245: Debian's 2.45,
# which speaks only HTTPS: through tls_proxy.py (a terminator that ends TLS properly), the
# CA in s3.ca_file, `localhost:PORT` as the endpoint; no restore through the versions
# (2.45 has no --repo-target-time: validation warns, CHANGE.md says so).
scenario_s3() {
  local D="$LAB/$SCENARIO" bin
  local owner=pgbrs3o bkp=pgbrs3b runner=pgbrs3m stanza=labs3 cluster=lab-s3 bucket=pgbr-lab-s3
  local s3_port=55530 port=55531 restore_port=55532 tls_port="" rows=20000
  local pgbackrest=$S3_PGBACKREST version=2.59.1 ca_line=""
  if [ "$SCENARIO" = s3-245 ]; then
    owner=pgbrt3o bkp=pgbrt3b runner=pgbrt3m stanza=labs3t cluster=lab-s3-245 bucket=pgbr-lab-s3-245
    s3_port=55535 tls_port=55536 port=55537 restore_port=55538
    pgbackrest=/usr/bin/pgbackrest version=2.45 ca_line="ca_file: $LAB/$SCENARIO/tls/cert.pem"
  fi
  local moto="http://127.0.0.1:$s3_port" endpoint="http://127.0.0.1:$s3_port"
  [ -z "$tls_port" ] || endpoint="localhost:$tls_port"
  S3_PGBACKREST=$pgbackrest
  step moto-venv s3_venv_ready || return
  [ -x "$S3_PGBACKREST" ] || { result FAIL "pgbackrest-$version" 0 "$S3_PGBACKREST missing (scripts/pgbackrest-vendor, or apt-get install pgbackrest)"; return; }
  bin=$(pgbin_dir 15 2>>"$LOG") || { result FAIL binaries 0 "pgbin_dir 15 failed"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"; lab_user "$runner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"
  install -d -o "$runner" -g "$runner" -m 0700 "$D/moto"

  # --- the emulator, as an unprivileged user, on loopback ---
  register_pidfile "$D/moto/pid"
  runuser -u "$runner" -- sh -c "echo \$\$ > '$D/moto/pid'; exec '$S3_VENV/bin/moto_server' -H 127.0.0.1 -p $s3_port" >> "$D/moto/log" 2>&1 &
  local tries=0
  until python3 -c "import urllib.request; urllib.request.urlopen('$moto/moto-api/')" 2>/dev/null; do
    tries=$((tries + 1)); [ "$tries" -lt 100 ] || { result FAIL moto-start 0 "moto did not answer on $moto"; return; }
    sleep 0.2
  done
  result ok moto-start 0
  if [ -n "$tls_port" ]; then
    # A certificate for `localhost` (pgBackRest before 2.53 ignores IP names), its own CA.
    install -d -m 0755 "$D/tls"
    step tls-certificate openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
      -addext subjectAltName=DNS:localhost -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" || return
    chown "$runner" "$D/tls/key.pem"; chmod 0600 "$D/tls/key.pem"; chmod 0644 "$D/tls/cert.pem"
    register_pidfile "$D/moto/proxy.pid"
    runuser -u "$runner" -- sh -c "echo \$\$ > '$D/moto/proxy.pid'; exec /usr/bin/python3 '$ROOT/tests/lab/lib/tls_proxy.py' '$D/tls/cert.pem' '$D/tls/key.pem' $tls_port $s3_port" >> "$D/moto/proxy.log" 2>&1 &
    tries=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $tls_port), 1)" 2>/dev/null; do
      tries=$((tries + 1)); [ "$tries" -lt 100 ] || { result FAIL tls-proxy-start 0 "the TLS terminator did not listen on $tls_port"; return; }
      sleep 0.2
    done
  fi

  # --- the cluster, with data ---
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --no-sync || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  step load-rows "${q[@]}" postgres -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, $rows) g" || return

  # --- the policy: a bucket with versioning and COMPLIANCE object lock ---
  install -d -m 0700 "$D/keys"
  cat > "$D/policy.yaml" <<YAML
version: 1
repositories:
  - name: lab-bucket
    type: s3
    s3:
      bucket: $bucket
      prefix: /pgbackrest
      region: us-east-1
      endpoint: $endpoint
      uri_style: path
      $ca_line
      admin_principal: "arn:aws:iam::123456789012:user/lab-admin"
    credentials: {database_side: $D/keys/database.key, backup_side: $D/keys/backup.key}
    versioning: true
    object_lock: {mode: compliance, days: 1}
clusters:
  - name: $cluster
    postgres: {major: 15, data_directory: $D/pg/data, owner: $owner, socket_directory: $D/sock, port: $port, bin_directory: $bin}
    backup_user: {name: $bkp, home: $D/home-bkp}
    role: {name: pgbr_s3}
    pgbackrest:
      stanza: $stanza
      binary: $S3_PGBACKREST
      version: "$version"
      repository: lab-bucket
      retention_full: 2
      config: {repository_side: $D/etc/repository.conf, database_side: $D/etc/database.conf}
      backup_user_paths: {lock: $D/lock-bkp, log: $D/log-bkp}
      owner_paths: {lock: $D/lock-owner, log: $D/log-owner, spool: $D/spool}
YAML
  register_cluster "$cluster"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  if [ "$version" = 2.45 ]; then
    expect warns-no-restore-through-versions "generate did not warn that 2.45 cannot restore through versions" \
      bash -c "'$PGBR' validate '$D/policy.yaml' 2>&1 | grep -q 'repo-target-time'"
    expect change-md-says-needs-2.54 "CHANGE.md does not say 2.45 cannot restore through versions" \
      grep -q 'policy names cannot' "$D/out/$cluster/CHANGE.md"
  fi
  local tree="$D/out/$cluster"
  expect no-tls-unit "an s3 cluster got a TLS server unit" bash -c "! ls '$tree/systemd/'pgbr-tls-*.service 2>/dev/null"

  # --- the bucket and the two IAM users, with the GENERATED documents (lab/s3.py) ---
  local py=(env PGBR_S3_ADMIN="$D/keys/admin.key" "$S3_VENV/bin/python" "$ROOT/tests/lab/lib/s3.py" "$moto" "$bucket")
  step bucket-and-keys "${py[@]}" setup "$tree/s3" "$D/keys" || return
  expect key-files-root-only "key source files are not root 0600" \
    bash -c "[ \"\$(stat -c '%U %a' '$D/keys/database.key' '$D/keys/backup.key' | sort -u)\" = 'root 600' ]"

  echo "$bkp" >> "$LAB/users"
  chmod 0644 "$D/keys/database.key"
  denied apply-refuses-readable-key 'readable by other users' "$tree/shell/apply.sh" --dry-run
  chmod 0600 "$D/keys/database.key"
  chown "$owner" "$D/keys"
  denied apply-refuses-key-in-user-dir "belongs to $owner" "$tree/shell/apply.sh" --dry-run
  chown root "$D/keys"
  mv "$D/keys/backup.key" "$D/keys/backup.key.real"; ln -s "$D/keys/backup.key.real" "$D/keys/backup.key"
  denied apply-refuses-linked-key 'is a symbolic link' "$tree/shell/apply.sh" --dry-run
  rm "$D/keys/backup.key"; mv "$D/keys/backup.key.real" "$D/keys/backup.key"
  step apply env PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --restart || return
  step verify "$tree/shell/verify.sh" || return
  expect verify-ran-delete-probe "verify.sh did not report the delete probe" \
    grep -q 'database-side key cannot delete' "$LOG"
  # The probe can fail: with a key that may delete, verify.sh must say so and exit 1.
  "${py[@]}" set-user-policy lab-database-side allow-all >> "$LOG" 2>&1
  denied verify-fails-on-deleting-key 'database-side key DELETED' "$tree/shell/verify.sh" --no-pgbackrest-check
  step restore-generated-policy "${py[@]}" set-user-policy lab-database-side "$tree/s3/database-side-iam-policy.json"
  local secret
  secret=$(awk -F' *= *' '$1 == "aws_secret_access_key" { print $2 }' "$D/keys/database.key")
  expect secret-not-in-tree "the database-side secret is in the generated tree" bash -c "! grep -rqF -- '$secret' '$D/out'"
  expect key-include-0600-owner "$D/etc/database-side.d/s3-key.conf is not $owner 0600" \
    bash -c "[ \"\$(stat -c '%U %a' '$D/etc/database-side.d/s3-key.conf')\" = '$owner 600' ]"
  denied backup-user-cannot-read-db-key 'Permission denied' runuser -u "$bkp" -- cat "$D/etc/database-side.d/s3-key.conf"
  denied owner-cannot-read-backup-key 'Permission denied' runuser -u "$owner" -- cat "$D/etc/backup-side.d/s3-key.conf"

  # --- the backup side: check, two full backups, expire ---
  local b=(runuser -u "$bkp" -- "$S3_PGBACKREST" --config="$D/etc/repository.conf" --config-include-path="$D/etc/backup-side.d" --stanza="$stanza" --log-level-console=warn)
  local o=(runuser -u "$owner" -- "$S3_PGBACKREST" --config="$D/etc/database.conf" --config-include-path="$D/etc/database-side.d" --stanza="$stanza" --log-level-console=warn)
  local sum='SELECT count(*) || md5(string_agg(v, $$,$$ ORDER BY id)) FROM t'
  step check "${b[@]}" check
  step backup-full "${b[@]}" --type=full backup || return
  local first first_sum
  first=$("${b[@]}" --output=json info | grep -o '"label":"[^"]*F"' | head -1 | cut -d'"' -f4)
  first_sum=$("${q[@]}" postgres -c "$sum")
  "${q[@]}" postgres -c "INSERT INTO t SELECT g, md5(g::text) FROM generate_series($((rows + 1)), $((rows + 1000))) g" >> "$LOG" 2>&1
  "${q[@]}" postgres -c "SELECT pg_switch_wal()" >> "$LOG" 2>&1
  step backup-full-2 "${b[@]}" --type=full backup || return
  sleep 1.1
  local before_expire
  before_expire=$(date -u '+%Y-%m-%d %H:%M:%S+00')
  sleep 1.1
  # The database side first, while there is a backup to expire: its first DELETE is denied.
  denied db-expire-denied '\[039\]|AccessDenied|403' "${o[@]}" --repo1-retention-full=1 expire
  expect db-expire-changed-nothing "the database-side expire removed $first" bash -c "runuser -u $bkp -- $S3_PGBACKREST --config=$D/etc/repository.conf --config-include-path=$D/etc/backup-side.d --stanza=$stanza info | grep -q '$first'"
  step expire "${b[@]}" --repo1-retention-full=1 expire
  expect expire-removed-first "info still lists $first after expire" bash -c "! runuser -u $bkp -- $S3_PGBACKREST --config=$D/etc/repository.conf --config-include-path=$D/etc/backup-side.d --stanza=$stanza info | grep -q '$first'"

  # --- the database side: every destructive act denied ---
  local wal manifest
  wal=$("${py[@]}" wal-key "pgbackrest/archive/$stanza/")
  manifest=$("${py[@]}" manifest-key "pgbackrest/backup/$stanza/")
  "${o[@]}" stop >> "$LOG" 2>&1
  denied db-stanza-delete-denied '\[039\]|AccessDenied|403' "${o[@]}" --force stanza-delete
  "${o[@]}" start >> "$LOG" 2>&1
  local act key
  while read -r act key; do
    denied "db-raw-$act-$(basename "$key" | cut -c1-28)" 'AccessDenied' "${py[@]}" "$act" "$key" "$D/keys/database.key"
  done <<ATTACKS
delete pgbackrest/backup/$stanza/backup.info
put pgbackrest/backup/$stanza/backup.info
delete $manifest
put $manifest
delete pgbackrest/archive/$stanza/archive.info
put pgbackrest/archive/$stanza/archive.info
delete $wal
ATTACKS
  # Put is allowed on WAL paths (archive-push needs it): an overwrite only adds a version.
  step db-wal-overwrite-keeps-original "${py[@]}" overwrite-keeps-version "$wal" "$D/keys/database.key"
  step info-after-attacks "${b[@]}" info
  step check-after-attacks "${b[@]}" check
  expect archiving-still-works "archive failures since the attacks" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SELECT failed_count FROM pg_stat_archiver')\" = 0 ]"

  # --- object lock: no version can be destroyed, not by the backup side, not by the admin ---
  denied backup-side-cannot-delete-version 'AccessDenied' "${py[@]}" delete-version "pgbackrest/backup/$stanza/backup.info" "$D/keys/backup.key"
  denied admin-cannot-delete-locked-version 'AccessDenied|WORM|locked|retention' "${py[@]}" delete-version "pgbackrest/backup/$stanza/backup.info" admin

  # --- restore as the owner with the database-side key: the latest backup ---
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg/restore" "$D/pg/restore-old"
  step restore "${o[@]}" --pg1-path="$D/pg/restore" restore
  local original restored
  original=$("${q[@]}" postgres -c "$sum")
  if step restore-start pg_start "$owner" "$bin" "$D/pg/restore" "$restore_port" "$D/sock" "-c archive_mode=off"; then
    s3_wait_primary "$owner" "$restore_port" "$D/sock"
    restored=$(psql_as "$owner" "$D/sock" "$restore_port" postgres -c "$sum" 2>>"$LOG")
    expect restore-same-rows "original ${original:0:14}… restored ${restored:0:14}…" [ -n "$original" ] && [ "$original" = "$restored" ]
    pg_stop "$owner" "$bin" "$D/pg/restore"
  fi
  # --- the backup expire removed, from the bucket's versions (2.54+) ---
  if [ "$version" = 2.45 ]; then
    denied restore-through-versions-needs-2.54 'repo-target-time' "${o[@]}" --pg1-path="$D/pg/restore-old" --repo=1 \
      --repo-target-time="$before_expire" --set="$first" restore
  elif step restore-expired-from-versions "${o[@]}" --pg1-path="$D/pg/restore-old" --repo=1 \
    --repo-target-time="$before_expire" --set="$first" --type=immediate --target-action=promote restore &&
    step restore-expired-start pg_start "$owner" "$bin" "$D/pg/restore-old" "$restore_port" "$D/sock" "-c archive_mode=off"; then
    s3_wait_primary "$owner" "$restore_port" "$D/sock"
    restored=$(psql_as "$owner" "$D/sock" "$restore_port" postgres -c "$sum" 2>>"$LOG")
    expect restore-expired-same-rows "at backup ${first_sum:0:14}… restored ${restored:0:14}…" [ -n "$first_sum" ] && [ "$first_sum" = "$restored" ]
    pg_stop "$owner" "$bin" "$D/pg/restore-old"
  fi

  # --- no secret anywhere; idempotence; drift; rollback ---
  local side hits
  for side in database backup; do
    secret=$(awk -F' *= *' '$1 == "aws_secret_access_key" { print $2 }' "$D/keys/$side.key")
    hits=$(grep -rlF -- "$secret" "$D/out" "$LOG" "$D/log-bkp" "$D/log-owner" "/var/lib/pgbr-policy/$cluster" "$D/pg/data/postgresql.auto.conf" "$D/pg/data.log" 2>/dev/null | wc -l)
    expect "$side-secret-nowhere" "the $side-side secret is in $hits file(s) (tree, logs, state)" [ "$hits" = 0 ]
  done
  local second
  second=$(PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" 2>&1); printf '%s\n' "$second" >> "$LOG"
  expect apply-again-no-change "second apply.sh reported changes" grep -q "no change: the host already matches the plan" <<<"$second"
  step check-deployed "$PGBR" check "$D/policy.yaml" --deployed --db
  chmod 0640 "$D/etc/database-side.d/s3-key.conf"
  denied check-deployed-sees-open-key 'database-side.d/s3-key.conf' "$PGBR" check "$D/policy.yaml" --deployed
  step apply-repairs-key-mode "$tree/shell/apply.sh" --step configs
  step rollback "$tree/shell/rollback.sh"
  expect rollback-keys-gone "key include files remain" bash -c "[ ! -e '$D/etc/database-side.d' ] && [ ! -e '$D/etc/backup-side.d' ]"
  expect rollback-keeps-sources "the key source files were removed" [ -f "$D/keys/database.key" ] && [ -f "$D/keys/backup.key" ]
  # The Ansible target after the rollback (s3 only, to keep s3-245 short): the role runs
  # apply.sh's steps unchanged; step configs writes the keys, so verify.sh (with its
  # delete probe) passes after one playbook run.
  if [ "$SCENARIO" = s3 ] && command -v ansible-playbook >/dev/null; then
    local group="pgbr_${cluster//-/_}"
    printf 'all:\n  children:\n    %s:\n      hosts:\n        localhost:\n          ansible_connection: local\n' "$group" > "$D/inventory.yml"
    echo "/var/lib/pgbr-policy-ansible/$cluster" >> "$LAB/tmp-paths"
    step ansible-playbook env ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 PGBR_POLICY="$PGBR" \
      ansible-playbook "$D/out/ansible/playbook.yml" -i "$D/inventory.yml"
    step verify-after-ansible "$tree/shell/verify.sh" --no-pgbackrest-check
  fi
  pg_stop "$owner" "$bin" "$D/pg/data"
}

# A restored cluster: pg_ctl -w returns before replay ends (facts.md §9).
s3_wait_primary() {  # owner port socket
  local i
  for ((i = 0; i < 120; i++)); do
    [ "$(psql_as "$1" "$3" "$2" postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && return 0
    sleep 0.5
  done
  return 1
}
