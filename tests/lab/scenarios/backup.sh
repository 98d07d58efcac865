#!/usr/bin/env bash
# shellcheck shell=bash
#
# backup.sh - the whole flow on one PostgreSQL major with one pgBackRest (Debian's 2.45
# for 12-15, the vendored 2.59.1 for 16-18 and for pg15-259): a cluster initialised
# WITHOUT group access and backed up the usual way (superuser, cluster owner) as the
# "before"; then generate + apply.sh --restart; check, two full backups, info, expire
# (WAL too) as the backup user; restore as the owner and compare the data; every "must
# not" tried; every grant shown necessary; apply.sh again changes nothing; rollback.sh
# returns the host. With a pgBackRest too old for the major (or than the policy says),
# validate and apply.sh's preflight refuse, naming both versions.
# Needs: SCENARIO LAB RESULTS LOG MAJOR PGBR ROOT, and LAB_ID (number unique among the
# lab's backup scenarios: users, ports), PGBACKREST_BIN, PGBACKREST_VER (set by tests/lab/run).

scenario_backup() {
  local n=$MAJOR id=$LAB_ID pgbackrest=$PGBACKREST_BIN
  local D="$LAB/$SCENARIO" bin
  local owner="pgbrlab${id}o" bkp="pgbrlab${id}b" role="lab-bkp-${id} role" stanza="lab${id}" cluster="lab-$SCENARIO"
  local port=$((55400 + id)) tls_port=$((18600 + id)) restore_port=$((55500 + id))
  [ -x "$pgbackrest" ] || { result FAIL binaries 0 "no pgBackRest at $pgbackrest"; return; }
  expect "pgbackrest-is-$PGBACKREST_VER" "$pgbackrest is not pgBackRest $PGBACKREST_VER" \
    bash -c "[ \"\$('$pgbackrest' version)\" = 'pgBackRest $PGBACKREST_VER' ]"
  bin=$(pgbin_dir "$n" 2>>"$LOG") || { result FAIL binaries 0 "pgbin_dir $n failed"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"

  # --- the cluster, without group access, with data ---
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --no-sync || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  step load-data "${q[@]}" postgres -c "CREATE DATABASE app" -c "CREATE TABLE secret AS SELECT 'do not read'::text AS s" || return
  # PGBR_LAB_ROWS (default 100000): a larger cluster for scripts/bench's restore figures.
  local rows=${PGBR_LAB_ROWS:-100000}
  [[ "$rows" =~ ^[1-9][0-9]*$ ]] || { result FAIL load-rows 0 "PGBR_LAB_ROWS must be a positive integer"; return; }
  step load-rows "${q[@]}" app -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, $rows) g" || return

  # --- before: the default setup, pgBackRest as the cluster owner and a superuser ---
  install -d -o "$owner" -g "$owner" -m 0750 "$D/super-repo" "$D/super-lock" "$D/super-log" "$D/super-spool"
  cat > "$D/super.conf" <<CONF
[global]
repo1-path=$D/super-repo
lock-path=$D/super-lock
log-path=$D/super-log
spool-path=$D/super-spool
start-fast=y
[super]
pg1-path=$D/pg/data
pg1-socket-path=$D/sock
pg1-port=$port
CONF
  chmod 0644 "$D/super.conf"
  local super=(runuser -u "$owner" -- "$pgbackrest" --config="$D/super.conf" --stanza=super --log-level-console=warn)
  step superuser-stanza-create "${super[@]}" stanza-create || return
  step superuser-archive-setup "${q[@]}" postgres -c "ALTER SYSTEM SET archive_mode = on" \
    -c "ALTER SYSTEM SET archive_command = '$pgbackrest --config=$D/super.conf --stanza=super archive-push %p'" || return
  pg_stop "$owner" "$bin" "$D/pg/data"
  step restart pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  step superuser-check "${super[@]}" check
  step superuser-backup "${super[@]}" --type=full backup
  install -d -o "$owner" -g "$owner" -m 0700 "$D/super-restore"
  step superuser-restore "${super[@]}" --pg1-path="$D/super-restore" restore

  # --- the policy: names and paths unlike the examples' ---
  # PostgreSQL 14 authenticates with scram-sha-256 (password read at apply time from a
  # root-only file), the others with peer: both paths are exercised.
  local auth="peer" password_line="" password=""
  if [ "$n" = 14 ]; then
    password="lab-$(openssl rand -hex 12)-pw"
    ( umask 077; printf '%s\n' "$password" > "$D/password" )
    auth=scram-sha-256
    password_line="password_file: $D/password"
    step log-every-statement "${q[@]}" postgres -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()"
  fi
  cat > "$D/policy.yaml" <<YAML
version: 1
clusters:
  - name: $cluster
    postgres:
      major: $n
      data_directory: $D/pg/data
      owner: $owner
      socket_directory: $D/sock
      port: $port
      bin_directory: $bin
    backup_user:
      name: $bkp
      home: $D/home-bkp
    role:
      name: "$role"
      auth: $auth
      $password_line
    pgbackrest:
      stanza: $stanza
      version: "$PGBACKREST_VER"
      binary: $pgbackrest
      repository: $D/repo
      retention_full: 2
      tls: {port: $tls_port, directory: $D/tls}
      config: {repository_side: $D/etc/repository.conf, database_side: $D/etc/database.conf}
      backup_user_paths: {lock: /run/pgbr-lab-$id-bkp, log: $D/log-bkp}
      owner_paths: {lock: $D/lock-owner, log: $D/log-owner, spool: $D/spool}
YAML
  register_cluster "$cluster"
  echo "/run/pgbr-lab-$id-bkp" >> "$LAB/tmp-paths"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  local tree="$D/out/$cluster"
  echo "$bkp" >> "$LAB/users"

  # --- a pgBackRest too old: refused by validate (policy) and by apply.sh (host) ---
  local needed refusal
  case "$n" in 12|13|14) needed=2.37 ;; 15) needed=2.39 ;; 16) needed=2.46 ;; 17) needed=2.53.1 ;; *) needed=2.55 ;; esac
  if [ "$n" -ge 16 ]; then
    sed 's/^      version: .*/      version: "2.45"/' "$D/policy.yaml" > "$D/policy-old.yaml"
    refusal=$("$PGBR" validate "$D/policy-old.yaml" 2>&1); printf '%s\n' "$refusal" >> "$LAB/$SCENARIO.log"
    expect validate-refuses-2.45 "validate did not refuse 2.45 naming $needed: $refusal" \
      grep -q "error: .*policy-old.yaml:[0-9]*:[0-9]*: clusters\[0\].pgbackrest.version: pgBackRest 2.45 cannot back up PostgreSQL $n .*needs pgBackRest $needed or later" <<<"$refusal"
    # Version not given: generated (with a warning), but the host's 2.45 stops apply.sh.
    sed -e '/^      version: /d' -e 's#^      binary: .*#      binary: /usr/bin/pgbackrest#' "$D/policy.yaml" > "$D/policy-host-old.yaml"
  else
    # The policy says the vendored release, the host runs Debian's older one.
    sed 's#^      binary: .*#      binary: /usr/bin/pgbackrest#; s/^      version: .*/      version: "2.59.1"/' "$D/policy.yaml" > "$D/policy-host-old.yaml"
  fi
  if [ "$pgbackrest" != /usr/bin/pgbackrest ]; then
    "$PGBR" generate "$D/policy-host-old.yaml" --out "$D/out-host-old" >> "$LOG" 2>&1
    refusal=$("$D/out-host-old/$cluster/shell/apply.sh" --dry-run 2>&1); printf '%s\n' "$refusal" >> "$LOG"
    if [ "$n" -ge 16 ]; then
      expect apply-refuses-host-2.45 "apply.sh did not stop on 2.45: $refusal" \
        grep -q "is pgBackRest 2.45, but PostgreSQL $n with this layout needs pgBackRest $needed or later" <<<"$refusal"
    else
      expect apply-refuses-host-2.45 "apply.sh did not stop on 2.45: $refusal" \
        grep -q "is pgBackRest 2.45, older than the policy's pgbackrest.version 2.59.1" <<<"$refusal"
    fi
  fi
  step apply-dry-run "$tree/shell/apply.sh" --dry-run || return
  step apply env PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --restart --start-tls-server || return
  step verify "$tree/shell/verify.sh" || return

  # --- backups as the backup user, restore as the owner ---
  local b=(runuser -u "$bkp" -- "$pgbackrest" --config="$D/etc/repository.conf" --stanza="$stanza" --log-level-console=warn)
  step check "${b[@]}" check
  step backup-full "${b[@]}" --type=full backup
  "${q[@]}" app -c "INSERT INTO t SELECT g, md5(g::text) FROM generate_series($((rows + 1)), $((rows + 1000))) g" >> "$LOG" 2>&1
  "${q[@]}" postgres -c "SELECT pg_switch_wal()" >> "$LOG" 2>&1
  step backup-full-2 "${b[@]}" --type=full backup
  step info "${b[@]}" info
  local wal_before wal_after
  wal_before=$(find "$D/repo/archive/$stanza" -name '0000*' -type f | wc -l)
  step expire "${b[@]}" --repo1-retention-full=1 expire
  wal_after=$(find "$D/repo/archive/$stanza" -name '0000*' -type f | wc -l)
  expect expire-removed-wal "WAL files: $wal_before before, $wal_after after" [ "$wal_after" -lt "$wal_before" ]
  expect info-one-full "info should list one full backup" \
    bash -c "[ \"\$(runuser -u $bkp -- $pgbackrest --config=$D/etc/repository.conf --stanza=$stanza --output=json info | grep -o '\"type\":\"full\"' | wc -l)\" = 1 ]"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg/restore"
  step restore runuser -u "$owner" -- "$pgbackrest" --config="$D/etc/database.conf" --stanza="$stanza" --log-level-console=warn \
    --pg1-path="$D/pg/restore" restore
  if step restore-start pg_start "$owner" "$bin" "$D/pg/restore" "$restore_port" "$D/sock" "-c archive_mode=off"; then
    local sum='SELECT count(*) || md5(string_agg(v, $$,$$ ORDER BY id)) FROM t'
    local original restored
    original=$("${q[@]}" app -c "$sum" 2>>"$LOG")
    restored=$(psql_as "$owner" "$D/sock" "$restore_port" app -c "$sum" 2>>"$LOG")
    expect restore-same-data "original ${original:0:12}… restored ${restored:0:12}…" [ -n "$original" ] && [ "$original" = "$restored" ]
    expect restore-has-every-row "restored: $restored, expected $((rows + 1000)) rows" [ "${restored%%[a-f]*}" != "" ] && [[ "$restored" == "$((rows + 1000))"* ]]
    pg_stop "$owner" "$bin" "$D/pg/restore"
  fi
  # PGBR_LAB_REPEAT=N (scripts/bench): N more restores each way, in turn (which goes
  # first alternates), so the restore ratio is a median and not one noisy pair.
  local reps=${PGBR_LAB_REPEAT:-0} i t0 su_times=() lp_times=()
  for ((i = 0; i < reps; i++)); do
    rm -rf "$D/super-restore" "$D/pg/restore"
    install -d -o "$owner" -g "$owner" -m 0700 "$D/super-restore" "$D/pg/restore"
    local order=(super lp); ((i % 2)) && order=(lp super)
    local who
    for who in "${order[@]}"; do
      t0=$(now)
      if [ "$who" = super ]; then
        "${super[@]}" --pg1-path="$D/super-restore" restore >> "$LOG" 2>&1 || { result FAIL restore-repeated-superuser 0 "run $i"; return; }
        su_times+=("$(elapsed "$t0")")
      else
        runuser -u "$owner" -- "$pgbackrest" --config="$D/etc/database.conf" --stanza="$stanza" --log-level-console=warn \
          --pg1-path="$D/pg/restore" restore >> "$LOG" 2>&1 || { result FAIL restore-repeated 0 "run $i"; return; }
        lp_times+=("$(elapsed "$t0")")
      fi
    done
  done
  if [ "$reps" -gt 0 ]; then
    result ok restore-repeated-superuser "$(printf '%s\n' "${su_times[@]}" | sort -n | sed -n "$(((reps + 1) / 2))p")" "median of $reps: ${su_times[*]}"
    result ok restore-repeated "$(printf '%s\n' "${lp_times[@]}" | sort -n | sed -n "$(((reps + 1) / 2))p")" "median of $reps: ${lp_times[*]}"
  fi

  # --- every "must not" ---
  local r=(runuser -u "$bkp" -- psql -X -At -v ON_ERROR_STOP=1 -h "$D/sock" -p "$port" -U "$role")
  denied no-select-table 'permission denied for table secret' "${r[@]}" -d postgres -c "SELECT * FROM secret"
  denied no-other-database 'pg_hba.conf rejects connection' "${r[@]}" -d app -c "SELECT 1"
  denied no-tcp 'pg_hba.conf rejects connection|no pg_hba.conf entry|Connection refused|could not connect' \
    runuser -u "$bkp" -- psql -X -h 127.0.0.1 -p "$port" -U "$role" -d postgres -c "SELECT 1"
  denied no-create-in-public 'permission denied for schema public' "${r[@]}" -d postgres -c "CREATE TABLE public.x (i int)"
  denied no-pg-read-file 'permission denied for function pg_read_file' "${r[@]}" -d postgres -c "SELECT pg_read_file('PG_VERSION')"
  denied no-checkpoint 'permission denied|must be superuser|pg_checkpoint' "${r[@]}" -d postgres -c "CHECKPOINT"
  step role-reads-data-directory-setting "${r[@]}" -d postgres -c "SELECT setting FROM pg_settings WHERE name = 'data_directory'"
  denied no-superuser-settings-write 'permission denied|must be superuser' "${r[@]}" -d postgres -c "ALTER SYSTEM SET work_mem = '1GB'"
  denied no-create-in-pgdata 'Permission denied' runuser -u "$bkp" -- touch "$D/pg/data/lab-probe"
  denied no-write-in-pgdata 'Permission denied' runuser -u "$bkp" -- sh -c "echo x >> '$D/pg/data/PG_VERSION'"
  denied no-delete-in-pgdata 'Permission denied' runuser -u "$bkp" -- rm -f "$D/pg/data/postmaster.opts"
  denied no-owner-write-in-repo 'Permission denied' runuser -u "$owner" -- touch "$D/repo/lab-probe"

  # --- every grant is necessary: take each away, see the error facts.md §7 names ---
  local apply_sql="$tree/sql/apply.sql"
  local regrant=("${q[@]}" postgres --single-transaction -f "$apply_sql")
  local fn short
  for fn in "pg_catalog.pg_switch_wal()" "pg_catalog.pg_create_restore_point(text)"; do
    "${q[@]}" postgres -c "REVOKE EXECUTE ON FUNCTION $fn FROM \"$role\"" >> "$LOG" 2>&1
    short=${fn#pg_catalog.}; short=${short%%(*}
    denied "needs-$short" "permission denied for function $short" "${b[@]}" --archive-timeout=20 check
    "${regrant[@]}" >> "$LOG" 2>&1
  done
  if [ "$n" -ge 15 ]; then
    set -- "pg_catalog.pg_backup_start(text, boolean)" "pg_catalog.pg_backup_stop(boolean)"
  else
    set -- "pg_catalog.pg_start_backup(text, boolean, boolean)" "pg_catalog.pg_stop_backup(boolean, boolean)"
  fi
  for fn in "$@"; do
    "${q[@]}" postgres -c "REVOKE EXECUTE ON FUNCTION $fn FROM \"$role\"" >> "$LOG" 2>&1
    short=${fn#pg_catalog.}; short=${short%%(*}
    denied "needs-$short" "permission denied for function $short" "${b[@]}" --type=full backup
    "${regrant[@]}" >> "$LOG" 2>&1
  done
  "${q[@]}" postgres -c "REVOKE pg_read_all_settings FROM \"$role\"" >> "$LOG" 2>&1
  denied needs-pg_read_all_settings 'pg_read_all_settings|\[027\]|\[056\]' "${b[@]}" check
  "${regrant[@]}" >> "$LOG" 2>&1
  step verify-after-regrant "$tree/shell/verify.sh" --no-pgbackrest-check

  if [ -n "$password" ]; then
    # The password must appear nowhere: not in the artifacts, not in what apply.sh and
    # the lab printed, not in the server log (log_statement = all).
    local hits
    hits=$(grep -rlF -- "$password" "$D/out" "$LOG" "$D/pg/data.log" /var/lib/pgbr-policy/"$cluster" 2>/dev/null | wc -l)
    expect password-nowhere "the password was found in $hits file(s)" [ "$hits" = 0 ]
    expect pgpass-0600 ".pgpass is not 0600 $bkp" bash -c "[ \"\$(stat -c '%a %U' '$D/home-bkp/.pgpass')\" = '600 $bkp' ]"
  fi

  # --- idempotence, then rollback ---
  local second
  second=$(PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --start-tls-server 2>&1); printf '%s\n' "$second" >> "$LOG"
  expect apply-again-no-change "second apply.sh reported changes" grep -q "no change: the host already matches the plan" <<<"$second"
  step verify-again "$tree/shell/verify.sh" --no-pgbackrest-check
  step rollback "$tree/shell/rollback.sh" --restart
  expect rollback-role-gone "role still exists" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c \"SELECT count(*) FROM pg_roles WHERE rolname = '$role'\")\" = 0 ]"
  expect rollback-hba-block-gone "marker still in pg_hba.conf" bash -c "! grep -q 'pgbr-policy $cluster' '$D/pg/data/pg_hba.conf' '$D/pg/data/pg_ident.conf'"
  expect rollback-configs-gone "configuration files remain" bash -c "[ ! -e '$D/etc/repository.conf' ] && [ ! -e '$D/etc/database.conf' ] && [ ! -e '$D/tls' ]"
  expect rollback-mode-back "data_directory_mode not 0700" bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SHOW data_directory_mode')\" = 0700 ]"
  # What PostgreSQL wrote between rollback's revoke and its restart (the statistics
  # file at shutdown, with the old umask) got group bits: rollback makes a second pass.
  expect rollback-no-group-bits "entries of the data directory with group bits after rollback --restart: $(find "$D/pg/data" -perm /070 2>/dev/null | head -3 | tr '\n' ' ')" \
    bash -c "[ -z \"\$(find '$D/pg/data' -perm /070 -print -quit)\" ]"
  expect rollback-archive-back "archive_command not the superuser one" bash -c "runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SHOW archive_command' | grep -q super.conf"
  expect rollback-owner-connects "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"
  expect rollback-user-left-group "backup user still in $owner" bash -c "! id -nG $bkp | tr ' ' '\n' | grep -qx $owner"
  pg_stop "$owner" "$bin" "$D/pg/data"
}
