#!/usr/bin/env bash
# shellcheck shell=bash
#
# lifecycle.sh - after apply: restore and point-in-time recovery through the generated
# shell/restore.sh. A PostgreSQL 15 cluster gets a full backup, then a first batch of
# rows, a recorded moment, a second batch (archived); restore.sh --time to that moment
# gives exactly the first batch (md5 of every row), the latest state gives both, and a
# restore in place is refused while the server runs, then done once it is stopped.
# The repository is encrypted (repo1-cipher-type, the passphrase read by apply.sh from a
# root-only file) and WAL is archived asynchronously (archive-async, the owner's spool):
# both end to end, through backup and every restore; the passphrase appears in no file
# of the tree, no log, and apply.sh refuses to switch it. Scheduled jobs: the generated
# full-backup service started under a throwaway systemd (as the timer would), its timer
# active there; the cron fallback's diff and verify lines executed as cron would.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

scenario_lifecycle() {
  local D="$LAB/$SCENARIO" bin
  local owner="pgbrlco" bkp="pgbrlcb" stanza="lc" cluster="lab-lifecycle"
  local port=57710 tls_port=57711 copy_port=57712
  bin=$(pgbin_dir 15 2>>"$LOG") || { result FAIL binaries 0 "pgbin_dir 15 failed"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --no-sync --allow-group-access || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  cat > "$D/policy.yaml" <<YAML
version: 1
clusters:
  - name: $cluster
    postgres:
      major: 15
      data_directory: $D/pg/data
      owner: $owner
      socket_directory: $D/sock
      port: $port
      bin_directory: $bin
    backup_user:
      name: $bkp
      home: $D/home-bkp
    role:
      name: lc_backup
    pgbackrest:
      stanza: $stanza
      version: "2.45"
      repository: $D/repo
      tls: {port: $tls_port, directory: $D/tls}
      config: {repository_side: $D/etc/repository.conf, database_side: $D/etc/database.conf}
      backup_user_paths: {lock: /run/pgbr-lab-lc-bkp, log: $D/log-bkp}
      owner_paths: {lock: $D/lock-owner, log: $D/log-owner, spool: $D/spool}
      cipher_passphrase_file: $D/cipher-pass
      options:
        archive-async: true
        process-max: 2
        compress-type: lz4
        repo1-cipher-type: aes-256-cbc
        repo1-retention-diff: 2
YAML
  local passphrase
  passphrase="lc-$(openssl rand -hex 16)"
  ( umask 077; printf '%s\n' "$passphrase" > "$D/cipher-pass" )
  register_cluster "$cluster"
  echo "/run/pgbr-lab-lc-bkp" >> "$LAB/tmp-paths"
  echo "$bkp" >> "$LAB/users"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  local tree="$D/out/$cluster"
  step apply "$tree/shell/apply.sh" --restart --start-tls-server || return
  local b=(runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --config-include-path="$D/etc/cipher.d" --stanza="$stanza" --log-level-console=warn)
  step verify "$tree/shell/verify.sh" || return
  step backup-full "${b[@]}" --type=full backup || return
  expect repository-encrypted "info does not say aes-256-cbc" bash -c "${b[*]@Q} info | grep -q 'cipher: aes-256-cbc'"
  local wal
  wal=$(find "$D/repo/archive/$stanza" -name '0000*' -type f | head -1)
  expect wal-file-encrypted "$wal does not start with Salted__" bash -c "[ \"\$(head -c 8 '$wal')\" = Salted__ ]"
  # The async process leaves its own log (its .ok status files in the spool are removed
  # once PostgreSQL has marked the segment done, so they prove nothing reliably); the
  # spool's out directory exists only when archive-push ran asynchronously.
  expect archive-async-spool "no asynchronous archive-push (its log and the spool's out directory)" bash -c \
    "grep -q 'archive-push:async command begin' '$D/log-owner/$stanza-archive-push-async.log' && [ -d '$D/spool/archive/$stanza/out' ]"
  denied no-repository-without-passphrase 'requires option: repo1-cipher-pass' \
    runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --stanza="$stanza" --log-level-console=warn info --output=json

  # --- two batches with a recorded moment between them ---
  local sum='SELECT count(*) || $$ $$ || md5(string_agg(v, $$,$$ ORDER BY id)) FROM t'
  step batch-1 "${q[@]}" postgres -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g" || return
  local first moment
  first=$("${q[@]}" postgres -c "$sum")
  sleep 1
  moment=$("${q[@]}" postgres -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
  sleep 1
  step batch-2 "${q[@]}" postgres -c "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1001, 2000) g" || return
  local both
  both=$("${q[@]}" postgres -c "$sum")
  echo "first batch: $first; both: $both; moment: $moment" >> "$LOG"
  expect batches-read "first '$first', both '$both'" [ "${first%% *}-${both%% *}" = 1000-2000 ] || return
  # check switches WAL and waits until that segment is archived: batch 2 is in the repository.
  step archive-batch-2 "${b[@]}" check || return

  # --- restore.sh: dry run, refusals ---
  step restore-dry-run "$tree/shell/restore.sh" --to "$D/pg/pitr" --time "$moment" --dry-run || return
  expect dry-run-wrote-nothing "$D/pg/pitr exists after --dry-run" [ ! -e "$D/pg/pitr" ]
  denied restore-in-place-refused-while-running 'PostgreSQL is running on .*stop it first: runuser -u '"$owner"' -- .*pg_ctl stop' \
    "$tree/shell/restore.sh" --in-place --time "$moment"
  install -d -o "$bkp" -g "$bkp" -m 0755 "$D/not-owners"
  denied restore-into-another-users-dir 'belongs to '"$bkp"', not '"$owner" "$tree/shell/restore.sh" --to "$D/not-owners"

  # --- point in time: exactly the first batch ---
  local out
  out=$("$tree/shell/restore.sh" --to "$D/pg/pitr" --time "$moment" 2>&1); local rc=$?
  printf '%s\n' "$out" >> "$LOG"
  expect restore-pitr "restore.sh --time exited $rc" [ "$rc" = 0 ] || return
  expect restore-says-how-to-start "no start command in the output" grep -q 'pg_ctl start -D '"$D/pg/pitr" <<<"$out"
  expect pitr-dir-owner "$D/pg/pitr not $owner 0750" bash -c "[ \"\$(stat -c '%U %a' '$D/pg/pitr')\" = '$owner 750' ]"
  if step pitr-start pg_start "$owner" "$bin" "$D/pg/pitr" "$copy_port" "$D/sock" "-c archive_mode=off"; then
    step pitr-promoted wait_promoted "$owner" "$D/sock" "$copy_port"
    local got
    got=$(psql_as "$owner" "$D/sock" "$copy_port" postgres -c "$sum" 2>>"$LOG")
    expect pitr-exactly-first-batch "restored '$got', first batch '$first', both '$both'" [ "$got" = "$first" ]
    pg_stop "$owner" "$bin" "$D/pg/pitr"
  fi

  # --- the latest state: both batches (batch 2 really was in the archive) ---
  # Into a directory root makes (its parent is root's alone); started by hand with the
  # log in the owner's directory.
  step restore-latest "$tree/shell/restore.sh" --to "$D/latest"
  expect latest-dir-owner "$D/latest not $owner 0750" bash -c "[ \"\$(stat -c '%U %a' '$D/latest')\" = '$owner 750' ]"
  register_pgdata "$bin" "$D/latest"
  if step latest-start runuser -u "$owner" -- "$bin/pg_ctl" -D "$D/latest" -l "$D/pg/latest.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$D/sock' -p $copy_port -c archive_mode=off" start; then
    step latest-promoted wait_promoted "$owner" "$D/sock" "$copy_port"
    got=$(psql_as "$owner" "$D/sock" "$copy_port" postgres -c "$sum" 2>>"$LOG")
    expect latest-both-batches "restored '$got', expected '$both'" [ "$got" = "$both" ]
    pg_stop "$owner" "$bin" "$D/latest"
  fi

  # --- in place, once stopped: back to the first batch ---
  pg_stop "$owner" "$bin" "$D/pg/data"
  step restore-in-place "$tree/shell/restore.sh" --in-place --time "$moment"
  if step in-place-start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock"; then
    step in-place-promoted wait_promoted "$owner" "$D/sock" "$port"
    got=$("${q[@]}" postgres -c "$sum" 2>>"$LOG")
    expect in-place-exactly-first-batch "restored '$got', first batch '$first'" [ "$got" = "$first" ]
    step backup-after-restore "${b[@]}" --type=full backup
  fi
  lifecycle_scheduled_jobs
  # A kind the policy stops scheduling: apply.sh removes its units.
  cp "$D/policy.yaml" "$D/policy-noverify.yaml"
  printf '    schedule: {verify: none}\n' >> "$D/policy-noverify.yaml"
  if step generate-noverify "$PGBR" generate "$D/policy-noverify.yaml" --out "$D/out-noverify"; then
    expect verify-unit-installed "apply.sh did not install pgbr-verify-$cluster.timer" [ -f "/etc/systemd/system/pgbr-verify-$cluster.timer" ]
    step apply-noverify "$D/out-noverify/$cluster/shell/apply.sh" --step schedule
    expect verify-units-removed "pgbr-verify-$cluster.* still in /etc/systemd/system" \
      bash -c "[ ! -e /etc/systemd/system/pgbr-verify-$cluster.timer ] && [ ! -e /etc/systemd/system/pgbr-verify-$cluster.service ] && [ -e /etc/systemd/system/pgbr-backup-full-$cluster.timer ]"
  fi
  # scram-sha-256 needs pgbr-policy on the host: apply.sh says so before changing anything.
  sed -e 's/      name: lc_backup/      name: lc_backup\n      auth: scram-sha-256\n      password_env: LC_PW/' "$D/policy.yaml" > "$D/policy-scram.yaml"
  if step generate-scram "$PGBR" generate "$D/policy-scram.yaml" --out "$D/out-scram"; then
    local before_hba
    before_hba=$(md5sum < "$D/pg/data/pg_hba.conf")
    denied scram-needs-pgbr-policy-first 'pgbr-policy is needed on this host.*nothing was changed' \
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_PW=secret "$D/out-scram/$cluster/shell/apply.sh"
    expect scram-refusal-changed-nothing "pg_hba.conf changed" [ "$(md5sum < "$D/pg/data/pg_hba.conf")" = "$before_hba" ]
  fi
  ( umask 077; printf 'another-%s\n' "$passphrase" > "$D/cipher-pass" )
  denied apply-refuses-another-passphrase 'holds another passphrase' "$tree/shell/apply.sh" --step configs
  ( umask 077; printf '%s\n' "$passphrase" > "$D/cipher-pass" )
  pg_stop "$owner" "$bin" "$D/pg/data"

  # --- the passphrase: nowhere but its two root-only files; never switched ---
  local hits
  hits=$(grep -rlF -- "$passphrase" "$D/out" "$LOG" "$D/log-bkp" "$D/log-owner" "$D/pg" /var/lib/pgbr-policy/"$cluster" 2>/dev/null | wc -l)
  expect passphrase-nowhere "the passphrase was found in $hits file(s)" [ "$hits" = 0 ]
  expect passphrase-copy-root-only "$D/etc/cipher.d/cipher.conf is not root:$bkp 640" \
    bash -c "[ \"\$(stat -c '%U:%G %a' '$D/etc/cipher.d/cipher.conf')\" = 'root:$bkp 640' ]"
  denied owner-cannot-read-passphrase 'Permission denied' runuser -u "$owner" -- cat "$D/etc/cipher.d/cipher.conf"
}

# The label of the newest backup in the repository (info lists them oldest first;
# retention may expire the oldest, so counts would not tell).
lifecycle_newest() {
  "${b[@]}" --output=json info 2>>"$LOG" | grep -o '"label":"[0-9A-Z_-]*"' | tail -1 | cut -d'"' -f4
}

# The scheduled jobs, run for real. Where systemd is PID 1, apply.sh enabled the timers:
# the service is started there. Here (containers), as in tlsconfine, a throwaway systemd
# boots in its own PID, mount, UTS, IPC and cgroup namespaces with a fresh /run (the
# tmpfiles.d entry remakes the lock directory) and /etc/systemd/system holding only the
# generated full-backup service and timer; `systemctl start` of the service is what the
# timer does when it fires. Then the cron fallback: its diff and verify lines run as cron
# runs them (/bin/sh -c, as the user the line names). PGBR_LAB_NESTED_SYSTEMD=0 skips systemd.
lifecycle_scheduled_jobs() {
  local sysd="$tree/systemd" service="pgbr-backup-full-$cluster.service" timer="pgbr-backup-full-$cluster.timer"
  local before after dir="$D/systemd" init="" i
  before=$(lifecycle_newest)
  if [ -d /run/systemd/system ]; then
    step systemd-timer-enabled systemctl is-enabled --quiet "$timer"
    step systemd-job-runs systemctl start "$service"
  elif [ "${PGBR_LAB_NESTED_SYSTEMD:-1}" = 0 ] || [ ! -x /lib/systemd/systemd ] || ! command -v unshare >/dev/null; then
    result ok systemd-skipped 0 "no throwaway systemd (PGBR_LAB_NESTED_SYSTEMD=0, or no /lib/systemd/systemd, unshare)"
  else
    install -d -m 0755 "$dir/units/$service.d"
    cp "$sysd/$service" "$sysd/$timer" "$dir/units/"
    printf '[Unit]\nDefaultDependencies=no\n[Service]\nStandardOutput=append:%s\nStandardError=inherit\n' "$dir/unit.log" \
      > "$dir/units/$service.d/lab.conf"
    install -d -m 0755 "$dir/units/$timer.d"
    printf '[Unit]\nDefaultDependencies=no\n' > "$dir/units/$timer.d/lab.conf"
    printf '[Unit]\nDefaultDependencies=no\nWants=%s\n' "$timer" > "$dir/units/pgbr-lab.target"
    cat > "$dir/boot.sh" <<BOOT
#!/bin/bash
set -e
mount -t tmpfs -o mode=0755 tmpfs /run
for f in '$sysd'/*.conf; do systemd-tmpfiles --create "\$f"; done
mount -t tmpfs -o mode=0755 tmpfs /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/system
cp -r '$dir/units/.' /etc/systemd/system/
exec /lib/systemd/systemd --system --unit=pgbr-lab.target --log-target=console --show-status=0
BOOT
    chmod 0755 "$dir/boot.sh"
    setsid unshare --pid --fork --kill-child --mount --uts --ipc --cgroup --propagation private --mount-proc "$dir/boot.sh" \
      >"$dir/boot.log" 2>&1 </dev/null &
    echo $! > "$dir/unshare.pid"
    register_pidfile "$dir/unshare.pid"
    for ((i = 0; i < 100; i++)); do
      init=$(pgrep -P "$(cat "$dir/unshare.pid")" -x systemd) && break
      sleep 0.1
    done
    if [ -z "$init" ]; then
      result FAIL systemd-boot 0 "the throwaway systemd did not start: $(tail -n 3 "$dir/boot.log")"
    else
      for ((i = 0; i < 50; i++)); do
        nsenter -t "$init" -m -p systemctl is-active --quiet "$timer" 2>/dev/null && break
        sleep 0.1
      done
      step systemd-timer-active nsenter -t "$init" -m -p systemctl is-active "$timer"
      nsenter -t "$init" -m -p systemctl list-timers --all >> "$LOG" 2>&1 || true
      step systemd-job-runs nsenter -t "$init" -m -p systemctl start "$service"
      nsenter -t "$init" -m -p systemctl status "$service" >> "$LOG" 2>&1 || true
      cat "$dir/unit.log" >> "$LOG" 2>/dev/null || true
      kill -KILL "$init" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$init" 2>/dev/null || break; sleep 0.1; done
      wait "$(cat "$dir/unshare.pid")" 2>/dev/null || true
      local cg
      for cg in /sys/fs/cgroup/unified /sys/fs/cgroup; do
        [ -f "$cg/cgroup.procs" ] || continue
        find "$cg/system.slice" "$cg/init.scope" -depth -type d -empty -delete 2>/dev/null || true
        rmdir "$cg/system.slice" "$cg/init.scope" 2>/dev/null || true
        break
      done
      rm -rf /tmp/systemd-private-*-"$service"-* /var/tmp/systemd-private-*-"$service"-*
      after=$(lifecycle_newest)
      # shellcheck disable=SC2016  # $1 and $2 are bash -c's own arguments
      expect systemd-job-made-a-full-backup "newest backup: $before before, $after after" bash -c '[ "$1" != "$2" ] && [[ "$1" == *F ]]' _ "$after" "$before"
    fi
  fi
  # --- the cron fallback: each line as cron runs it ---
  local line user cmd kind ending
  before=$(lifecycle_newest)
  for kind in diff verify; do
    ending=" verify"; [ "$kind" = diff ] && ending="'--type=diff' backup"
    line=$(grep -v '^#' "$tree/cron/pgbr-$cluster" | grep -F -- "$ending" | head -1)
    read -r _ _ _ _ _ user cmd <<<"$line"
    expect "cron-$kind-line" "no $kind line for $bkp in cron/pgbr-$cluster: '$line'" [ "$user" = "$bkp" ]
    step "cron-$kind-runs" runuser -u "$user" -- env -i SHELL=/bin/sh PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -c "$cmd"
  done
  after=$(lifecycle_newest)
  # shellcheck disable=SC2016  # $1 and $2 are bash -c's own arguments
  expect cron-made-a-diff-backup "newest backup: $before before, $after after the cron lines" bash -c '[ "$1" != "$2" ] && [[ "$1" == *D ]]' _ "$after" "$before"
}

# Polls until the server is out of recovery (pg_ctl -w returns before replay ends).
wait_promoted() {  # owner socket port
  local _
  for _ in $(seq 1 120); do
    [ "$(psql_as "$1" "$2" "$3" postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && return 0
    sleep 0.5
  done
  return 1
}
