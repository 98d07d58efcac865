#!/usr/bin/env bash
# shellcheck shell=bash
#
# tlsconfine.sh - the TLS server is confined to what it serves (issue 12, item 9).
# `pgbackrest server` runs as the backup user and loads the options its client sends, so
# the cluster owner, who holds the client certificate, can pass --repo1-path=/any/dir.
# On a PostgreSQL 15 cluster with real OS users, after apply.sh --start-tls-server (no
# systemd here: the server runs under bubblewrap), the owner tries, with its own
# certificate and the database-side configuration, to make the server read or write
# outside the repository: list and read the backup user's home (.pgpass), create a stanza
# in the home, in the state directory /var/lib/pgbr-policy and in a directory the backup
# user owns outside the repository, push WAL there. Each must be refused, and the
# sentinel files keep content, mode and owner. Then check + backup as the backup user
# still work through the confined server, the server process is confined (uid, no
# capabilities, no_new_privs, groups), and killing the recorded PID (rollback.sh) stops
# it. PGBR_LAB_TLSCONFINE_EXPECT=open inverts the attack checks (each must succeed): the
# "before the fix" evidence, run against a tree without the confinement.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

# tlsconfine_attack NAME LEAK COMMAND...: as the cluster owner; must fail, or succeed
# without showing anything (a listing of a path hidden under the sandbox's private
# /var/tmp is empty, not refused): it leaked when it succeeded and, for a listing, its
# output matches the regular expression LEAK (empty: any success leaked). With
# PGBR_LAB_TLSCONFINE_EXPECT=open it must leak.
tlsconfine_attack() {
  local name=$1 leak=$2 start output leaked=0; shift 2
  start=$(now)
  echo "--- attack $name: $*" >> "$LOG"
  if output=$("$@" 2>&1); then
    if [ -z "$leak" ] || grep -Eq -- "$leak" <<<"$output"; then leaked=1; fi
  fi
  printf '%s\n' "$output" >> "$LOG"
  local why
  why=$(printf '%s' "$output" | grep -m1 -E 'ERROR' | cut -c1-160)
  [ -n "$why" ] || why="succeeded, showing nothing it must not: $(printf '%s' "$output" | head -c 80 | tr '\n' ' ')"
  if [ "${PGBR_LAB_TLSCONFINE_EXPECT:-confined}" = open ]; then
    if [ "$leaked" = 1 ]; then
      result ok "open-$name" "$(elapsed "$start")" "the attack succeeded (as expected without confinement)"
    else
      result FAIL "open-$name" "$(elapsed "$start")" "refused: $why"
    fi
  elif [ "$leaked" = 1 ]; then
    result FAIL "$name" "$(elapsed "$start")" "the TLS server did it: $(printf '%s' "$output" | head -c 120 | tr '\n' ' ')"
  else
    result ok "$name" "$(elapsed "$start")" "$why"
  fi
}

# No process runs `pgbackrest --config=CONF server` (a function: under `bash -c` the
# pattern would match that shell's own command line).
tlsconfine_no_server() {  # conf
  ! pgrep -f -- "--config=$1 server\$" >/dev/null
}

# The attacks, as the cluster owner (o, D, state, wal, the sentinels' snapshots: the
# caller's locals), then the sentinels. PREFIX names the round.
tlsconfine_attacks() {  # prefix
  local p=$1
  tlsconfine_attack "${p}list-backup-home" 'pgpass|ssh' "${o[@]}" --repo1-path="$V/home-bkp" repo-ls
  tlsconfine_attack "${p}read-pgpass" "" "${o[@]}" --repo1-path="$V/home-bkp" repo-get .pgpass
  tlsconfine_attack "${p}read-ssh-key" "" "${o[@]}" --repo1-path="$V/home-bkp/.ssh" repo-get id_ed25519
  tlsconfine_attack "${p}list-pgdata" 'PG_VERSION|global|base' "${o[@]}" --repo1-path="$D/pg/data" repo-ls
  tlsconfine_attack "${p}read-state-dir" 'tls-server|sentinel' "${o[@]}" --repo1-path="$state" repo-ls
  tlsconfine_attack "${p}read-ca-key" "" "${o[@]}" --repo1-path="$D/tls" repo-get ca.key
  tlsconfine_attack "${p}list-tls-dir" 'ca[.]key|client' "${o[@]}" --repo1-path="$D/tls" repo-ls
  tlsconfine_attack "${p}stanza-create-in-home" "" "${o[@]}" --repo1-path="$V/home-bkp" stanza-create
  tlsconfine_attack "${p}stanza-create-in-state-dir" "" "${o[@]}" --repo1-path="$state" stanza-create
  tlsconfine_attack "${p}stanza-create-in-other-dir" "" "${o[@]}" --repo1-path="$V/bkp-other" stanza-create
  tlsconfine_attack "${p}archive-push-to-other-dir" "" "${o[@]}" --repo1-path="$V/bkp-other" archive-push "$wal"
  tlsconfine_attack "${p}archive-push-to-home" "" "${o[@]}" --repo1-path="$V/home-bkp" archive-push "$wal"
  expect "${p}home-unchanged" "the backup user's home changed (see the log)" \
    bash -c "diff <(printf '%s\n' \"\$1\") <(printf '%s\n' \"\$2\")" _ "$before_home" "$(tlsconfine_snapshot "$V/home-bkp")"
  expect "${p}other-dir-unchanged" "the backup user's other directory changed" \
    bash -c "diff <(printf '%s\n' \"\$1\") <(printf '%s\n' \"\$2\")" _ "$before_other" "$(tlsconfine_snapshot "$V/bkp-other")"
  expect "${p}state-dir-unchanged" "the state directory changed" \
    bash -c "diff <(printf '%s\n' \"\$1\") <(printf '%s\n' \"\$2\")" _ "$before_state" "$(tlsconfine_snapshot "$state/lab-sentinel")"
  expect "${p}pgpass-kept" "the .pgpass sentinel changed" \
    bash -c "[ \"\$(stat -c '%a %U' '$V/home-bkp/.pgpass')\" = '600 $bkp' ] && grep -qx 'localhost:5432:\*:lab:sentinel-pgpass' '$V/home-bkp/.pgpass'"
}

# The state of a tree: every entry with type, mode, owner, size and content hash.
tlsconfine_snapshot() {  # dir
  find "$1" -printf '%y %m %U:%G %s %P\n' 2>/dev/null | sort
  find "$1" -type f -exec sha256sum {} + 2>/dev/null | sort
}

# The generated unit under a real systemd. Where systemd runs (PID 1), apply.sh already
# started the unit. Here (containers) a throwaway systemd boots in its own PID, mount,
# UTS, IPC and cgroup namespaces, with a private /run (the generated tmpfiles.d entry makes
# the lock directory in it, as at boot) and /etc/systemd/system holding only
# the generated unit, a test drop-in (DefaultDependencies=no, so nothing else starts:
# no sysinit.target, no journald) and a target that wants it. Then the attacks again,
# `check` through it, and the namespace is killed. PGBR_LAB_NESTED_SYSTEMD=0 skips it.
tlsconfine_nested_systemd() {  # unit-file
  local unit=$1 name dir="$D/systemd" init pid="" i
  name=$(basename "$unit")
  if [ "${PGBR_LAB_NESTED_SYSTEMD:-1}" = 0 ] || [ ! -x /lib/systemd/systemd ] || ! command -v unshare >/dev/null; then
    result ok systemd-skipped 0 "no throwaway systemd (PGBR_LAB_NESTED_SYSTEMD=0, or no /lib/systemd/systemd, unshare)"
    return 0
  fi
  install -d -m 0755 "$dir/units/$name.d"
  cp "$unit" "$dir/units/$name"
  printf '[Unit]\nDefaultDependencies=no\n[Service]\nStandardOutput=append:%s\nStandardError=inherit\n' "$dir/unit.log" \
    > "$dir/units/$name.d/lab.conf"
  printf '[Unit]\nDefaultDependencies=no\nWants=%s\n' "$name" > "$dir/units/pgbr-lab.target"
  cat > "$dir/boot.sh" <<BOOT
#!/bin/bash
set -e
mount -t tmpfs -o mode=0755 tmpfs /run
# A fresh /run, as after a boot: the generated tmpfiles.d entry makes the lock directory.
for f in '$(dirname "$unit")'/*.conf; do systemd-tmpfiles --create "\$f"; done
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
  if [ -z "${init:-}" ]; then result FAIL systemd-boot 0 "the throwaway systemd did not start: $(tail -n 3 "$dir/boot.log")"; return 1; fi
  for ((i = 0; i < 100; i++)); do
    pid=$(pgrep -P "$init" -x pgbackrest) && break
    sleep 0.1
  done
  expect systemd-unit-runs "the unit's server did not start (see $dir/boot.log)" [ -n "$pid" ]
  if [ -n "$pid" ]; then
    local status
    status=$(cat "/proc/$pid/status" 2>/dev/null); printf '%s\n' "$status" >> "$LOG"
    expect systemd-server-uid "the unit's server does not run as $bkp" bash -c "[ \"\$(stat -c %U /proc/$pid)\" = '$bkp' ]"
    expect systemd-server-seccomp "no seccomp filter on the unit's server" grep -qx $'Seccomp:\t2' <<<"$status"
    expect systemd-server-no-capabilities "a capability is left in the bounding set" grep -qx $'CapBnd:\t0000000000000000' <<<"$status"
    step systemd-server-ping runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --tls-server-address=localhost --io-timeout=5 server-ping
    tlsconfine_attacks systemd-
    step systemd-check "${b[@]}" check
    step systemd-backup-incr "${b[@]}" --type=incr backup
  fi
  # Stop the unit (systemd removes its private /tmp and /var/tmp), then the namespace.
  nsenter -t "$init" -m -p systemctl stop "$name" >> "$LOG" 2>&1 || true
  kill -KILL "$init" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$init" 2>/dev/null || break; sleep 0.1; done
  wait "$(cat "$dir/unshare.pid")" 2>/dev/null || true
  # The cgroups it made, empty now.
  local cg
  for cg in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    [ -f "$cg/cgroup.procs" ] || continue
    find "$cg/system.slice" "$cg/init.scope" -depth -type d -empty -delete 2>/dev/null || true
    rmdir "$cg/system.slice" "$cg/init.scope" 2>/dev/null || true
    break
  done
  rm -rf /tmp/systemd-private-*-"$name"-* /var/tmp/systemd-private-*-"$name"-*
  expect systemd-no-server-left "a pgbackrest server of this cluster still runs" tlsconfine_no_server "$D/etc/repository.conf"
}

scenario_tlsconfine() {
  local D="$LAB/$SCENARIO" bin
  local owner="pgbrtco" bkp="pgbrtcb" stanza="tc" cluster="lab-tlsconfine"
  local port=55481 tls_port=18681
  local state="/var/lib/pgbr-policy/$cluster"
  bin=$(pgbin_dir 15 2>>"$LOG") || { result FAIL binaries 0 "pgbin_dir 15 failed"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg"
  install -d -o "$owner" -g "$owner" -m 0755 "$D/sock"
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --allow-group-access --no-sync || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return

  # The backup user's lock directory is under /run (the default's place; validation
  # refuses /tmp). The backup user's home and its other directory are in /var/lib (as on
  # a host): the sandbox must hide the home itself, and leave the other directory
  # read-only.
  local V=/var/lib/pgbr-lab-tc
  echo "$V" >> "$LAB/tmp-paths"
  install -d -m 0755 "$V"
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
      home: $V/home-bkp
    role:
      name: lab_tc_backup
    pgbackrest:
      stanza: $stanza
      version: "2.45"
      repository: $D/repo
      retention_full: 2
      tls: {port: $tls_port, directory: $D/tls}
      config: {repository_side: $D/etc/repository.conf, database_side: $D/etc/database.conf}
      backup_user_paths: {lock: /run/pgbr-lab-tc-bkp, log: $D/log-bkp}
      owner_paths: {lock: $D/lock-owner, log: $D/log-owner, spool: $D/spool}
YAML
  register_cluster "$cluster"
  echo "/run/pgbr-lab-tc-bkp" >> "$LAB/tmp-paths"
  echo "$bkp" >> "$LAB/users"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  local tree="$D/out/$cluster"
  step apply env PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --restart --start-tls-server || return
  step verify "$tree/shell/verify.sh" || return

  # --- sentinels: a .pgpass and a key in the backup user's home, a directory the backup
  # user owns outside the repository, the state directory ---
  install -d -o "$bkp" -g "$bkp" -m 0700 "$V/home-bkp/.ssh" "$V/bkp-other"
  runuser -u "$bkp" -- sh -c "umask 077; printf '%s\n' 'localhost:5432:*:lab:sentinel-pgpass' > '$V/home-bkp/.pgpass'; printf 'sentinel-key\n' > '$V/home-bkp/.ssh/id_ed25519'; printf 'sentinel-other\n' > '$V/bkp-other/keep'"
  printf 'sentinel-state\n' > "$state/lab-sentinel"; chmod 0600 "$state/lab-sentinel"
  local before_home before_other before_state
  before_home=$(tlsconfine_snapshot "$V/home-bkp")
  before_other=$(tlsconfine_snapshot "$V/bkp-other")
  before_state=$(tlsconfine_snapshot "$state/lab-sentinel")

  # --- the attacks, as the cluster owner with its client certificate ---
  local o=(runuser -u "$owner" -- pgbackrest --config="$D/etc/database.conf" --stanza="$stanza" --log-level-console=error --io-timeout=10)
  local wal
  wal=$(runuser -u "$owner" -- find "$D/pg/data/pg_wal" -maxdepth 1 -name '0000*' -type f | sort | head -1)
  tlsconfine_attacks ""

  # --- what it serves still works, through the confined server ---
  local b=(runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --stanza="$stanza" --log-level-console=warn)
  step check "${b[@]}" check
  step backup-full "${b[@]}" --type=full backup
  step info-as-owner runuser -u "$owner" -- pgbackrest --config="$D/etc/database.conf" --stanza="$stanza" --log-level-console=warn info
  local seg
  seg=$(find "$D/repo/archive/$stanza" -name '0000*' -type f -printf '%f\n' | sort | head -1 | cut -c1-24)
  install -d -o "$owner" -g "$owner" -m 0700 "$D/wal-got"
  step archive-get-as-owner runuser -u "$owner" -- pgbackrest --config="$D/etc/database.conf" --stanza="$stanza" \
    --log-level-console=warn archive-get "$seg" "$D/wal-got/$seg"

  # --- the process itself ---
  local pid i host_systemd=0
  [ -d /run/systemd/system ] && host_systemd=1
  if [ "$host_systemd" = 1 ]; then
    pid=$(systemctl show -p MainPID --value "pgbr-tls-$cluster.service")
    [ "$pid" != 0 ] || pid=""
  else
    pid=$(cat "$state/tls-server.pid" 2>/dev/null) || pid=""
  fi
  expect pid-recorded "no pid in $state/tls-server.pid" [ -n "$pid" ]
  if [ -n "$pid" ] && [ "${PGBR_LAB_TLSCONFINE_EXPECT:-confined}" != open ]; then
    local status
    status=$(cat "/proc/$pid/status" 2>/dev/null)
    printf '%s\n' "$status" >> "$LOG"
    expect server-uid "the server does not run as $bkp" bash -c "[ \"\$(stat -c %U /proc/$pid)\" = '$bkp' ]"
    expect server-no-new-privs "NoNewPrivs is not 1" grep -qx $'NoNewPrivs:\t1' <<<"$status"
    expect server-no-capabilities "a capability is left in the bounding set" grep -qx $'CapBnd:\t0000000000000000' <<<"$status"
    expect server-no-cluster-group "the server has the cluster's group" \
      bash -c "! grep -E '^Groups:' <<<\"\$1\" | grep -qw \"\$(getent group '$owner' | cut -d: -f3)\"" _ "$status"
    expect server-env-clean "the server inherited root's environment" \
      bash -c "! tr '\0' '\n' < /proc/$pid/environ | grep -q '^PGBR_POLICY='"
  fi

  # --- the same start as one step (what the Ansible role runs: apply.sh --step
  # tls-server --start-tls-server): killing the recorded PID stops the server, the step
  # starts a confined one again ---
  if [ -n "$pid" ] && [ "$host_systemd" = 0 ] && [ "${PGBR_LAB_TLSCONFINE_EXPECT:-confined}" != open ]; then
    kill "$pid"
    for ((i = 0; i < 50; i++)); do
      if ! kill -0 "$pid" 2>/dev/null && tlsconfine_no_server "$D/etc/repository.conf"; then break; fi
      sleep 0.1
    done
    expect killed-pid-stops-server "the TLS server (pid $pid) survived its SIGTERM" bash -c "! kill -0 $pid 2>/dev/null"
    expect killed-pid-no-server-left "a pgbackrest server of this cluster still runs" tlsconfine_no_server "$D/etc/repository.conf"
    step tls-server-script env PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --step tls-server --start-tls-server
    pid=$(cat "$state/tls-server.pid" 2>/dev/null) || pid=""
    step tls-server-script-ping runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --tls-server-address=localhost --io-timeout=5 server-ping
    tlsconfine_attacks script-
    step script-check "${b[@]}" check
  fi

  # --- the unit, under a real systemd (the server started above stopped first) ---
  if [ "${PGBR_LAB_TLSCONFINE_EXPECT:-confined}" != open ] && [ "$host_systemd" = 0 ] && [ -n "$pid" ]; then
    kill "$pid"
    for ((i = 0; i < 50; i++)); do
      if ! kill -0 "$pid" 2>/dev/null && tlsconfine_no_server "$D/etc/repository.conf"; then break; fi
      sleep 0.1
    done
    tlsconfine_nested_systemd "$tree/systemd/pgbr-tls-$cluster.service"
    step tls-server-script-again env PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --step tls-server --start-tls-server
    pid=$(cat "$state/tls-server.pid" 2>/dev/null) || pid=""
  fi

  # --- a second run recognises the server; rollback.sh stops it by that PID ---
  local second
  second=$(PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --start-tls-server 2>&1); printf '%s\n' "$second" >> "$LOG"
  expect apply-again-no-change "second apply.sh reported changes" grep -q "no change: the host already matches the plan" <<<"$second"
  if [ "$host_systemd" = 0 ]; then
    expect apply-again-same-pid "the second run started another server" [ "$(cat "$state/tls-server.pid" 2>/dev/null)" = "$pid" ]
  fi
  step rollback "$tree/shell/rollback.sh"
  for ((i = 0; i < 50; i++)); do
    if ! kill -0 "$pid" 2>/dev/null && tlsconfine_no_server "$D/etc/repository.conf"; then break; fi
    sleep 0.1
  done
  expect server-stopped "the TLS server (pid $pid) still runs after rollback.sh" bash -c "! kill -0 $pid 2>/dev/null"
  expect no-server-left "a pgbackrest server of this cluster still runs" tlsconfine_no_server "$D/etc/repository.conf"
  pg_stop "$owner" "$bin" "$D/pg/data"
}
