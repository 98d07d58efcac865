#!/usr/bin/env bash
# shellcheck shell=bash
#
# common.sh - what every lab scenario uses: one line per check into the scenario's
# result file, timing, OS users and servers registered for clean-up, and psql helpers.
# Sourced by tests/lab/run and by each scenario (in its own subshell).

# result STATUS STEP SECONDS [DETAIL]: one line, also to the scenario's log.
result() {
  local status=$1 step=$2 seconds=$3 detail=${4:-}
  printf '%s\t%s\t%s\t%s\t%s\n' "$status" "$SCENARIO" "$step" "$seconds" "$detail" >> "$RESULTS"
  printf '%-4s %s %s (%ss) %s\n' "$status" "$SCENARIO" "$step" "$seconds" "$detail" >> "$LOG"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# step NAME COMMAND...: passes when the command exits 0. Output goes to the log.
step() {
  local name=$1 start status; shift
  start=$(now)
  echo "--- $name: $*" >> "$LOG"
  if "$@" >> "$LOG" 2>&1; then status=ok; else status=FAIL; fi
  result "$status" "$name" "$(elapsed "$start")"
  [ "$status" = ok ]
}

# denied NAME PATTERN COMMAND...: passes when the command fails AND its output matches
# PATTERN (the reason we expect, not any failure).
denied() {
  local name=$1 pattern=$2 start output; shift 2
  start=$(now)
  echo "--- $name (must fail with /$pattern/): $*" >> "$LOG"
  if output=$("$@" 2>&1); then
    printf '%s\n' "$output" >> "$LOG"
    result FAIL "$name" "$(elapsed "$start")" "it was allowed"
    return 1
  fi
  printf '%s\n' "$output" >> "$LOG"
  if printf '%s\n' "$output" | grep -Eq -- "$pattern"; then
    result ok "$name" "$(elapsed "$start")"
  else
    result FAIL "$name" "$(elapsed "$start")" "failed, but not with /$pattern/"
    return 1
  fi
}

# expect NAME CONDITION-COMMAND... with a detail shown on failure.
expect() {
  local name=$1 detail=$2; shift 2
  if "$@" >> "$LOG" 2>&1; then result ok "$name" 0; else result FAIL "$name" 0 "$detail"; return 1; fi
}

# OS users created by the lab, removed at the end.
lab_user() {  # name [extra useradd args]
  local name=$1; shift
  if ! getent passwd "$name" >/dev/null; then
    useradd --system --user-group --no-create-home --shell /bin/bash "$@" "$name"
    echo "$name" >> "$LAB/users"
  fi
}

# Servers started by the lab: their data directories, stopped at the end.
register_pgdata() { printf '%s %s\n' "$1" "$2" >> "$LAB/servers"; }  # bindir datadir

pg_start() {  # owner bindir datadir port socketdir [extra -o options]
  local owner=$1 bin=$2 data=$3 port=$4 sock=$5 extra=${6:-}
  register_pgdata "$bin" "$data"
  runuser -u "$owner" -- "$bin/pg_ctl" -D "$data" -l "$data.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$sock' -p $port $extra" start >/dev/null
}

pg_stop() {  # owner bindir datadir
  runuser -u "$1" -- "$2/pg_ctl" -D "$3" -m fast -w -t 60 stop >/dev/null 2>&1 ||
    runuser -u "$1" -- "$2/pg_ctl" -D "$3" -m immediate stop >/dev/null 2>&1 || true
}

# psql as an OS user: psql_as USER SOCKET PORT DB [psql args...]
psql_as() {
  local user=$1 sock=$2 port=$3 db=$4; shift 4
  runuser -u "$user" -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -d "$db" "$@"
}

# Daemons a scenario starts in the background (etcd, Patroni) record their PID with
# `sh -c 'echo $$ >PIDFILE; exec …'` (runuser forks, so $! would be runuser's).
# register_pidfile PIDFILE: stopped by that PID at the end, last registered first.
register_pidfile() { echo "$1" >> "$LAB/pidfiles"; }

# stop_pidfile PIDFILE [SECONDS]: SIGTERM to the recorded PID, SIGKILL after the grace time.
stop_pidfile() {
  local pid i
  pid=$(cat "$1" 2>/dev/null) || return 0
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then return 0; fi
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < ${2:-30} * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# Cluster names of the policies a scenario applies: their host files are removed at
# the end (state directory, unit, tmpfiles entry), and only theirs, so that two lab
# runs with different scenarios can share a machine.
register_cluster() { echo "$1" >> "$LAB/clusters"; }

# Everything the lab registered: servers stopped, TLS servers killed, users removed.
lab_cleanup() {
  local bin data pid name cluster pidfile
  # The lab's network and mount namespaces (tests/lab/lib/hosts.sh) and every process
  # in them, first.
  if declare -F hosts_cleanup >/dev/null; then hosts_cleanup; fi
  if [ -f "$LAB/pidfiles" ]; then
    while read -r pidfile; do stop_pidfile "$pidfile" 15; done < <(tac "$LAB/pidfiles")
  fi
  if [ -f "$LAB/servers" ]; then
    while read -r bin data; do
      [ -f "$data/postmaster.pid" ] || continue
      runuser -u "$(stat -c %U "$data")" -- "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    done < "$LAB/servers"
  fi
  if [ -f "$LAB/clusters" ]; then
    while read -r cluster; do
      # Only a pgBackRest server: a stale pid may belong to another process by now.
      pid=$(cat "/var/lib/pgbr-policy/$cluster/tls-server.pid" 2>/dev/null) &&
        tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'pgbackrest.* server' && kill "$pid" 2>/dev/null
      rm -rf "/var/lib/pgbr-policy/$cluster" "/etc/systemd/system/pgbr-tls-$cluster.service" "/etc/tmpfiles.d/pgbr-$cluster.conf"
      # The scheduled jobs' units apply.sh installed (step schedule).
      rm -f /etc/systemd/system/pgbr-backup-{full,diff,incr}-"$cluster".{service,timer} /etc/systemd/system/pgbr-verify-"$cluster".{service,timer}
    done < "$LAB/clusters"
  fi
  if [ -f "$LAB/users" ]; then
    while read -r name; do
      pkill -u "$name" 2>/dev/null || true
    done < "$LAB/users"
    sleep 0.5
    while read -r name; do
      userdel "$name" >/dev/null 2>&1 || true
      if getent group "$name" >/dev/null; then groupdel "$name" >/dev/null 2>&1 || true; fi
    done < "$LAB/users"
  fi
  if [ -f "$LAB/tmp-paths" ]; then xargs -r rm -rf < "$LAB/tmp-paths"; fi
  return 0
}
