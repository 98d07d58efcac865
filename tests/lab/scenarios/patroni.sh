#!/usr/bin/env bash
# shellcheck shell=bash
#
# patroni.sh - the Patroni target on a real Patroni cluster (PATRONI_FLAVOUR=debian:
# Debian's patroni 3.0.2; =pypi: Patroni 4 from PyPI in the virtualenv that
# scripts/patroni4-venv builds; etcd 3.4, PostgreSQL 15) on loopback, without systemd: etcd and Patroni started in the
# background with their PIDs recorded, Patroni with umask 0027 and a clean environment
# (it reads every PATRONI_* variable). The generated fragment is merged into a minimal
# patroni.yml; `patroni --validate-config` is run on both and must find nothing new in
# what the fragment adds. Then: bootstrap a new cluster (group access, the role and its
# grants from post_bootstrap, the role's hba lines live), the rest of shell/apply.sh in
# Patroni mode, verify.sh, `pgbackrest check` and a full backup as the backup user,
# `patronictl restart` (the hook logs a line, nothing in PGDATA lacks group read), a
# dynamic configuration change (on_reload: patroni.dynamic.json, rewritten 0600, gets
# group read back), a replica cloned from the leader (group-readable after its first
# start), apply.sh again (no change), rollback.sh. Everything stopped by PID at the end.
# The policy's patroni.version is the version installed; the hook's log must show the
# leader's role as Patroni names it (`master` on 3.x, `primary` from 4.0).
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT PATRONI_FLAVOUR (set by tests/lab/run).

patroni_packages() {
  local missing=() p
  for p in etcd-server patroni postgresql-15 pgbackrest; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return
  fi
  if [ "$PATRONI_FLAVOUR" = pypi ]; then "$ROOT/scripts/patroni4-venv" >/dev/null; fi
}

# Patroni's own Python (PyYAML and the patroni package): merges YAML the way Patroni
# patches configuration (nested keys merged, lists replaced).
patroni_merge() {  # base fragment out
  "$PT_PYTHON" - "$@" <<'PY'
import sys, yaml
from patroni.utils import patch_config
with open(sys.argv[1]) as f:
    conf = yaml.safe_load(f)
with open(sys.argv[2]) as f:
    patch_config(conf, yaml.safe_load(f))
with open(sys.argv[3], "w") as f:
    yaml.safe_dump(conf, f, default_flow_style=False)
PY
}

# A daemon as the cluster owner, in the background, with a clean environment; its PID
# (the exec'd program's, not runuser's) in PIDFILE.
patroni_daemon() {  # pidfile log umask command...
  local pidfile=$1 log=$2 mask=$3; shift 3
  register_pidfile "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner sh
  setsid runuser -u "$PT_OWNER" -- env -i PATH="$PT_PATH" LANG=C.UTF-8 HOME="$PT_HOME" \
    sh -c 'umask "$1"; echo $$ > "$2"; shift 2; exec "$@"' sh "$mask" "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
}

# True when a query prints exactly "t".
query_true() { [ "$("$@" 2>/dev/null)" = t ]; }

# Polls a command for up to SECONDS.
wait_for() {  # seconds command...
  local deadline=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

patroni_base_config() {  # out name data_dir port rest_port
  cat > "$1" <<YAML
scope: $PT_SCOPE
name: $2
restapi:
  listen: 127.0.0.1:$5
  connect_address: 127.0.0.1:$5
etcd3:
  hosts: 127.0.0.1:$PT_ETCD
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
postgresql:
  listen: 127.0.0.1:$4
  connect_address: 127.0.0.1:$4
  data_dir: $3
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: $PT_HOME/pgpass-$2
  authentication:
    superuser: {username: $PT_OWNER, password: $PT_SU_PASSWORD}
    replication: {username: replicator, password: $PT_REPL_PASSWORD}
  parameters:
    unix_socket_directories: $PT_SOCK
YAML
  chown "$PT_OWNER:" "$1"; chmod 0600 "$1"
}

# A switchover to the replica and back (called from scenario_patroni, whose locals it
# reads): on_role_change runs the hook on both members, nothing lacks group read after
# the promotion, and the backup user backs up the new primary through its own
# configuration (repository 2; --archive-check=n: this lab's two members share one host
# and one archive_command, which names member 1's paths). Then member 1 leads again.
patroni_switchover_checks() {
  local hook_log2="$D/log-owner2/patroni-hook-$cluster-r2.log" before1 before2 start
  before1=$(grep -c on_role_change "$hook_log" 2>/dev/null || true)
  before2=$(grep -c on_role_change "$hook_log2" 2>/dev/null || true)
  start=$(now)
  step switchover patronictl -c "$cfg" switchover "$cluster" --leader node1 --candidate node2 --force || return
  if wait_for 60 query_true "${q2[@]}" postgres -c "SELECT NOT pg_is_in_recovery()"; then
    result ok switchover-new-primary "$(elapsed "$start")"
  else
    result FAIL switchover-new-primary "$(elapsed "$start")" "node2 is not primary within 60 s"; return
  fi
  if wait_for 20 bash -c "[ \"\$(grep -c on_role_change '$hook_log2')\" -gt ${before2:-0} ]"; then
    result ok hook-on-role-change-new-primary 0 "$(grep on_role_change "$hook_log2" | tail -1 | cut -d' ' -f3-)"
  else
    result FAIL hook-on-role-change-new-primary 0 "no new on_role_change line in $hook_log2"
  fi
  if wait_for 20 bash -c "[ \"\$(grep -c on_role_change '$hook_log')\" -gt ${before1:-0} ]"; then
    result ok hook-on-role-change-old-primary 0 "$(grep on_role_change "$hook_log" | tail -1 | cut -d' ' -f3-)"
  else
    result FAIL hook-on-role-change-old-primary 0 "no new on_role_change line in $hook_log"
  fi
  unreadable=$(find "$D/pg/data2" "$D/pg/data" \( -type d ! -perm -g+rx -o -type f ! -perm -g+r \) -print | head -5)
  expect nothing-lacks-group-read-after-switchover "lacking group read: $unreadable" [ -z "$unreadable" ]
  expect role-reaches-new-primary "the role cannot reach node2 as a primary" \
    [ "$(runuser -u "$bkp" -- psql -X -At -h "$D/sock" -p "$((port + 1))" -U "$role" -d postgres -c "SELECT NOT pg_is_in_recovery()")" = t ]
  step stanza-on-new-primary runuser -u "$owner" -- pgbackrest --config="$D/etc2/database.conf" --stanza="$stanza" \
    --log-level-console=warn stanza-create
  step backup-new-primary runuser -u "$bkp" -- pgbackrest --config="$D/etc2/repository.conf" --stanza="$stanza" \
    --log-level-console=warn --archive-check=n --type=full backup
  start=$(now)
  step switchover-back patronictl -c "$cfg" switchover "$cluster" --leader node2 --candidate node1 --force || return
  if wait_for 60 query_true "${q[@]}" postgres -c "SELECT NOT pg_is_in_recovery()"; then
    result ok switchover-back-primary "$(elapsed "$start")"
  else
    result FAIL switchover-back-primary "$(elapsed "$start")" "node1 is not primary again within 60 s"
  fi
}

scenario_patroni() {
  local D="$LAB/$SCENARIO" bin=/usr/lib/postgresql/15/bin
  local owner bkp role stanza cluster port rest tls_port etcd primary_role
  if [ "$PATRONI_FLAVOUR" = pypi ]; then
    owner=pgbrlabqo bkp=pgbrlabqb role=lab_patroni4_bkp stanza=labpatroni4 cluster=lab-patroni4
    port=55475 rest=18018 tls_port=18675 etcd=12389 primary_role=primary
    PT_PATH="/var/cache/pgbr-lab/patroni4/bin:/usr/sbin:/usr/bin:/sbin:/bin" PT_PYTHON=/var/cache/pgbr-lab/patroni4/bin/python
  else
    owner=pgbrlabpo bkp=pgbrlabpb role=lab_patroni_bkp stanza=labpatroni cluster=lab-patroni
    port=55470 rest=18008 tls_port=18670 etcd=12379 primary_role=master
    PT_PATH="/usr/sbin:/usr/bin:/sbin:/bin" PT_PYTHON=/usr/bin/python3
  fi
  # Not exported, and not named PATRONI_*: Patroni and patronictl read every PATRONI_*
  # variable of their environment as configuration. The scenario runs in a subshell of
  # its own: PATH (patroni, patronictl for apply.sh and verify.sh) is the flavour's.
  PT_OWNER=$owner PT_HOME="$D/patroni" PT_SOCK="$D/sock" PT_SCOPE=$cluster PT_ETCD=$etcd
  PATH="${PT_PATH%%:/usr/sbin:*}:$PATH"
  step packages patroni_packages || return
  local pt_version
  pt_version=$(patroni --version 2>>"$LOG") && pt_version=${pt_version#patroni }
  case "$PATRONI_FLAVOUR:$pt_version" in
    debian:3.0.2|pypi:4.*) result ok patroni-version 0 "patroni $pt_version ($(command -v patroni))" ;;
    *) result FAIL patroni-version 0 "patroni '$pt_version' at $(command -v patroni) for flavour $PATRONI_FLAVOUR"; return ;;
  esac
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/patroni" "$D/etcd"
  install -d -o "$owner" -g "$owner" -m 0750 "$D/pg"
  install -d -o "$owner" -g "$owner" -m 0755 "$D/sock"
  PT_SU_PASSWORD="su-$(openssl rand -hex 12)" PT_REPL_PASSWORD="repl-$(openssl rand -hex 12)"
  ( umask 077; printf '%s\n' "$PT_SU_PASSWORD" "$PT_REPL_PASSWORD" > "$D/secrets" )

  # --- the policy: a Patroni cluster; a second one for the replica on this host (its
  # hook must know its own data directory; its pgBackRest paths are its own) ---
  local name data p x
  printf 'version: 1\nclusters:\n' > "$D/policy.yaml"
  for name in "$cluster" "$cluster-r2"; do
    if [ "$name" = "$cluster" ]; then data="$D/pg/data" p=$port x=""; else data="$D/pg/data2" p=$((port + 1)) x=2; fi
    cat >> "$D/policy.yaml" <<YAML
  - name: $name
    postgres:
      major: 15
      data_directory: $data
      owner: $owner
      socket_directory: $D/sock
      port: $p
      bin_directory: $bin
    backup_user: {name: $bkp, home: $D/home-bkp}
    role: {name: $role}
    pgbackrest:
      stanza: $stanza
      version: "2.45"
      repository: $D/repo$x
      tls: {port: $((tls_port + ${x:-0})), directory: $D/tls$x}
      config: {repository_side: $D/etc$x/repository.conf, database_side: $D/etc$x/database.conf}
      backup_user_paths: {lock: /run/pgbr-$cluster-bkp$x, log: $D/log-bkp$x}
      owner_paths: {lock: $D/lock-owner$x, log: $D/log-owner$x, spool: $D/spool$x}
    patroni:
      enabled: true
      config_file: $D/patroni/$name.yml
      version: "$pt_version"
      scripts_directory: $D/scripts-$name
      service: pgbr-$name.service
      pg_hba_after:
        - "local all $owner peer"
        - "host all $owner 127.0.0.1/32 scram-sha-256"
        - "host replication replicator 127.0.0.1/32 scram-sha-256"
YAML
    register_cluster "$name"
    printf '%s\n' "/etc/systemd/system/pgbr-$name.service.d" "/run/pgbr-$cluster-bkp$x" >> "$LAB/tmp-paths"
  done
  echo "$bkp" >> "$LAB/users"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  local tree="$D/out/$cluster" tree2="$D/out/$cluster-r2"
  local cfg="$D/patroni/$cluster.yml" cfg2="$D/patroni/$cluster-r2.yml"
  step patroni-scripts "$tree/shell/apply.sh" --patroni-scripts || return
  step patroni-scripts-r2 "$tree2/shell/apply.sh" --patroni-scripts || return

  # --- configuration: a minimal patroni.yml + the fragment; validate-config on both ---
  patroni_base_config "$D/patroni/base.yml" node1 "$D/pg/data" "$port" "$rest"
  step merge-fragment patroni_merge "$D/patroni/base.yml" "$tree/patroni/patroni.yml" "$cfg" || return
  chown "$owner:" "$cfg"; chmod 0600 "$cfg"
  # --- etcd, then Patroni bootstraps the cluster ---
  local start
  start=$(now)
  patroni_daemon "$D/patroni/etcd.pid" "$D/etcd.log" 0077 etcd --name lab --data-dir "$D/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$etcd" --advertise-client-urls "http://127.0.0.1:$etcd" \
    --listen-peer-urls "http://127.0.0.1:$((etcd + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd + 1))" \
    --initial-cluster "lab=http://127.0.0.1:$((etcd + 1))" --initial-cluster-token pgbr-lab --initial-cluster-state new
  if wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$etcd"; then
    result ok etcd-start "$(elapsed "$start")"
  else
    result FAIL etcd-start "$(elapsed "$start")" "etcd does not listen on $etcd"; return
  fi
  local base_out merged_out added
  base_out=$(runuser -u "$owner" -- env -i PATH="$PT_PATH" patroni --validate-config "$D/patroni/base.yml" 2>&1)
  merged_out=$(runuser -u "$owner" -- env -i PATH="$PT_PATH" patroni --validate-config "$cfg" 2>&1)
  printf -- '--- validate-config, base:\n%s\n--- validate-config, with the fragment:\n%s\n' "$base_out" "$merged_out" >> "$LOG"
  added=$(comm -13 <(sort -u <<<"$base_out") <(sort -u <<<"$merged_out"))
  expect validate-config-nothing-new "the fragment adds: $added" [ -z "$added" ]
  result ok validate-config-remaining 0 "$(tr '\n' ';' <<<"$merged_out" | cut -c1-300)"

  register_pgdata "$bin" "$D/pg/data"
  start=$(now)
  patroni_daemon "$D/patroni/node1.pid" "$D/patroni1.log" 0027 patroni "$cfg"
  local q=(psql_as "$owner" "$D/sock" "$port")
  if wait_for 90 query_true "${q[@]}" postgres -c "SELECT NOT pg_is_in_recovery() AND EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')"; then
    result ok bootstrap "$(elapsed "$start")"
  else
    result FAIL bootstrap "$(elapsed "$start")" "no primary with the role within 90 s"; return
  fi
  # The hook's first on_start (before apply.sh made its log directory: on its stderr,
  # in Patroni's log) names the leader's role as this Patroni does.
  if wait_for 15 grep -q "on_start $primary_role $cluster" "$D/patroni1.log"; then
    result ok "hook-role-$primary_role" 0 "$(grep "on_start $primary_role" "$D/patroni1.log" | tail -1 | cut -d' ' -f3-)"
  else
    result FAIL "hook-role-$primary_role" 0 "no 'on_start $primary_role $cluster' line in Patroni's log: $(grep -o 'on_start [a-z_]* ' "$D/patroni1.log" | head -1)"
  fi
  expect data-directory-mode-0750 "data_directory_mode is not 0750" \
    [ "$("${q[@]}" postgres -c "SHOW data_directory_mode")" = 0750 ]
  expect post-bootstrap-grants "role or grants missing after post_bootstrap" \
    [ "$("${q[@]}" postgres -c "SELECT pg_has_role('$role', 'pg_read_all_settings', 'USAGE')
        AND has_function_privilege('$role', 'pg_catalog.pg_backup_start(text,boolean)', 'EXECUTE')
        AND has_function_privilege('$role', 'pg_catalog.pg_backup_stop(boolean)', 'EXECUTE')
        AND has_function_privilege('$role', 'pg_catalog.pg_switch_wal()', 'EXECUTE')
        AND has_function_privilege('$role', 'pg_catalog.pg_create_restore_point(text)', 'EXECUTE')
        AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = '$role')")" = t ]
  expect hba-role-lines-live "the first three rules are not the role's" \
    [ "$("${q[@]}" postgres -c "SELECT string_agg(type || ':' || array_to_string(user_name, ',') || ':' || auth_method, ' ' ORDER BY line_number)
        FROM (SELECT * FROM pg_hba_file_rules ORDER BY line_number LIMIT 3) r")" = "local:$role:peer local:$role:reject host:$role:reject" ]
  expect hba-file-written-by-patroni "pg_hba.conf is not Patroni's" grep -q "It will be overwritten by Patroni" "$D/pg/data/pg_hba.conf"
  expect archive-mode-on-empty-command "archive_mode/archive_command after bootstrap" \
    [ "$("${q[@]}" postgres -c "SELECT current_setting('archive_mode') || '|' || current_setting('archive_command')")" = "on|" ]
  {
    echo "--- modes after bootstrap:"
    find "$D/pg/data" -maxdepth 1 -type f -printf '%m %p\n' | sort
  } >> "$LOG"

  # --- the rest of apply.sh, in Patroni mode ---
  step apply-dry-run "$tree/shell/apply.sh" --dry-run || return
  step apply "$tree/shell/apply.sh" --restart --start-tls-server || return
  expect apply-no-alter-system "postgresql.auto.conf holds settings" \
    bash -c "! grep -q '^archive' '$D/pg/data/postgresql.auto.conf'"
  expect archive-command-via-patroni "the dynamic configuration lacks archive_command" \
    bash -c "patronictl -c '$cfg' show-config | grep -qF -- 'archive-push %p'"
  step verify "$tree/shell/verify.sh" || return

  # --- backups as the backup user ---
  local b=(runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --stanza="$stanza" --log-level-console=warn)
  step check "${b[@]}" check
  step backup-full "${b[@]}" --type=full backup
  denied no-tcp-for-role 'pg_hba.conf rejects connection|no pg_hba.conf entry' \
    runuser -u "$bkp" -- psql -X -h 127.0.0.1 -p "$port" -U "$role" -d postgres -c "SELECT 1"

  # --- patronictl restart fires on_restart: the hook runs ---
  local hook_log="$D/log-owner/patroni-hook-$cluster.log" lines_before unreadable
  lines_before=$(wc -l < "$hook_log" 2>/dev/null || echo 0)
  chmod 0600 "$D/pg/data/patroni.dynamic.json" "$D/pg/data/postgresql.conf"
  step patronictl-restart patronictl -c "$cfg" restart "$cluster" node1 --force || return
  wait_for 30 "${q[@]}" postgres -c "SELECT 1"
  if wait_for 15 bash -c "grep -q 'on_restart' '$hook_log' && [ \"\$(wc -l < '$hook_log')\" -gt $lines_before ]"; then
    result ok hook-ran-on-restart 0 "$(grep on_restart "$hook_log" | tail -1 | cut -d' ' -f3-)"
  else
    result FAIL hook-ran-on-restart 0 "no on_restart line in $hook_log"
  fi
  unreadable=$(find "$D/pg/data" \( -type d ! -perm -g+rx -o -type f ! -perm -g+r \) -print | head -5)
  expect nothing-lacks-group-read-after-restart "lacking group read: $unreadable" [ -z "$unreadable" ]
  step backup-after-restart "${b[@]}" --type=incr backup

  # --- a dynamic configuration change rewrites patroni.dynamic.json 0600: on_reload ---
  start=$(now)
  step edit-config patronictl -c "$cfg" edit-config --force --quiet -p work_mem=8MB || return
  if wait_for 20 bash -c "[ \"\$(stat -c %a '$D/pg/data/patroni.dynamic.json')\" = 640 ] && grep -q 'work_mem' '$D/pg/data/patroni.dynamic.json'"; then
    result ok dynamic-json-group-readable-after-reload "$(elapsed "$start")" "$(grep on_reload "$hook_log" | tail -1 | cut -d' ' -f3-)"
  else
    result FAIL dynamic-json-group-readable-after-reload "$(elapsed "$start")" "mode $(stat -c %a "$D/pg/data/patroni.dynamic.json")"
  fi
  step backup-after-reload "${b[@]}" --type=incr backup

  # --- a replica cloned from the leader, with its own hook ---
  patroni_base_config "$D/patroni/base2.yml" node2 "$D/pg/data2" "$((port + 1))" "$((rest + 1))"
  step merge-fragment-r2 patroni_merge "$D/patroni/base2.yml" "$tree2/patroni/patroni.yml" "$cfg2" || return
  chown "$owner:" "$cfg2"; chmod 0600 "$cfg2"
  register_pgdata "$bin" "$D/pg/data2"
  start=$(now)
  patroni_daemon "$D/patroni/node2.pid" "$D/patroni2.log" 0027 patroni "$cfg2"
  local q2=(psql_as "$owner" "$D/sock" "$((port + 1))")
  if wait_for 90 query_true "${q2[@]}" postgres -c "SELECT pg_is_in_recovery()"; then
    result ok replica-clone "$(elapsed "$start")"
    # Its first on_start runs before apply.sh made its log directory: the line is in
    # Patroni's log (the hook's stderr).
    if wait_for 15 grep -q 'on_start replica' "$D/patroni2.log"; then
      result ok replica-hook-on-start 0 "$(grep 'on_start replica' "$D/patroni2.log" | tail -1 | cut -d' ' -f3-)"
    else
      result FAIL replica-hook-on-start 0 "no on_start replica line in Patroni's log"
    fi
    unreadable=$(find "$D/pg/data2" \( -type d ! -perm -g+rx -o -type f ! -perm -g+r \) -print | head -5)
    expect replica-nothing-lacks-group-read "lacking group read: $unreadable" [ -z "$unreadable" ]
    expect replica-data-directory-mode-0750 "replica data_directory_mode" [ "$("${q2[@]}" postgres -c "SHOW data_directory_mode")" = 0750 ]
    step apply-on-replica "$tree2/shell/apply.sh" --start-tls-server
    patroni_switchover_checks
  else
    result FAIL replica-clone "$(elapsed "$start")" "no replica within 90 s"
  fi
  stop_pidfile "$D/patroni/node2.pid"
  pg_stop "$owner" "$bin" "$D/pg/data2"

  # --- idempotence, then rollback ---
  local second
  second=$("$tree/shell/apply.sh" --start-tls-server 2>&1); printf '%s\n' "$second" >> "$LOG"
  expect apply-again-no-change "second apply.sh reported changes" grep -q "no change: the host already matches the plan" <<<"$second"
  step rollback "$tree/shell/rollback.sh" || true
  expect rollback-role-gone "role still exists" \
    [ "$("${q[@]}" postgres -c "SELECT count(*) FROM pg_roles WHERE rolname = '$role'")" = 0 ]
  expect rollback-archive-command-back "archive_command still set" \
    wait_for 20 bash -c "[ -z \"\$(runuser -u $owner -- psql -X -At -h '$D/sock' -p $port -d postgres -c 'SHOW archive_command')\" ]"
  expect secrets-nowhere "a Patroni password appears in the artifacts or logs" \
    bash -c "! grep -rqF -f '$D/secrets' '$D/out' '$D/log-owner' '$LOG' /var/lib/pgbr-policy/$cluster"

  # --- everything stopped by PID (PostgreSQL outlives a killed Patroni: pg_ctl too) ---
  start=$(now)
  stop_pidfile "$D/patroni/node1.pid"
  pg_stop "$owner" "$bin" "$D/pg/data"
  stop_pidfile "$D/patroni/etcd.pid"
  result ok stop "$(elapsed "$start")"
}
