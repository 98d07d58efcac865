#!/usr/bin/env bash
# shellcheck shell=bash
#
# repo_host.sh - the dedicated repository host (issue 14) on real servers: three hosts on
# this machine (tests/lab/lib/hosts.sh: each its own network namespace on a private
# bridge, names in its /etc/hosts, and its own mount namespace for /etc, /run, /var/log,
# /var/spool, /home, /srv, /var/lib/{pgbackrest,pgbr-policy,postgresql}): the repository
# host `repo` (etcd runs there too), and `db1`, `db2` running a Patroni pair (Debian's
# Patroni 3.0.2, etcd 3.4, PostgreSQL 15). The policy declares the repository on `repo`
# and the two members; `generate` writes one directory per host; each host's apply.sh
# runs as root inside that host, in the order CHANGE.md gives (keys and CSRs everywhere,
# the CA signs on the repository host, database hosts, repository host, archive on the
# primary). Then: stanza-create, check, a full backup from the primary and a backup from
# the replica (backup-standby), both run on the repository host as its backup user;
# a switchover (patronictl); WAL of both timelines in the one repository; a
# point-in-time restore (as the cluster owner on db1, through the repository host's TLS
# server) to a moment after the switchover gives exactly the rows written before it;
# every must-not on every host; apply.sh again changes nothing; rollback.sh in reverse.
# PGBR_LAB_REPOHOST_PGBACKREST: 2.59.1 (default, scripts/pgbackrest-vendor) or 2.45.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

RH_NET=10.213.14

rh_packages() {
  local missing=() p
  for p in etcd-server patroni postgresql-15 pgbackrest openssl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Patroni's own Python merges YAML the way Patroni patches configuration.
rh_merge() {  # base fragment out
  /usr/bin/python3 - "$@" <<'PY'
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

rh_wait() {  # seconds command...
  local deadline=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

# psql as the cluster owner on a database host: rh_q HOST DB SQL [PORT]
rh_q() {
  on_host "$1" runuser -u "$RH_OWNER" -- psql -X -q -At -v ON_ERROR_STOP=1 -h /run/postgresql -p "${4:-$RH_PORT}" -d "$2" -c "$3"
}
rh_true() { [ "$(rh_q "$@" 2>/dev/null)" = t ]; }

# As the repository host's backup user, with the generated configuration.
rh_repo() {
  on_host repo runuser -u "$RH_RBK" -- "$RH_PGBR" --config="$RH_CONFDIR/repository.conf" --stanza="$RH_STANZA" "$@"
}
# As the cluster owner on a database host, with its configuration.
rh_owner() {
  local h=$1; shift
  on_host "$h" runuser -u "$RH_OWNER" -- "$RH_PGBR" --config="$RH_CONFDIR/database.conf" --stanza="$RH_STANZA" "$@"
}

# Which member is the primary now (db1 or db2), empty when none.
rh_primary() {
  local h
  for h in db1 db2; do rh_true "$h" postgres "SELECT NOT pg_is_in_recovery()" && { echo "$h"; return 0; }; done
  return 1
}

# Has HOST archived SEGMENT (or a later one)?
rh_archived() {  # host segment
  local last; last=$(rh_q "$1" postgres "SELECT last_archived_wal FROM pg_stat_archiver") || return 1
  [ -n "$last" ] && { [ "$last" = "$2" ] || [[ "$last" > "$2" ]]; }
}

# No `pgbackrest … server` process runs in HOST.
rh_no_tls_server() {  # host
  local pid
  for pid in $(ip netns pids "$(hosts_netns "$1")"); do
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null; echo
  done | { ! grep -q 'pgbackrest.* server *$'; }
}

rh_hosts() {
  hosts_init "$RH_NET" && hosts_add repo 1 61400 repo.lab-rh.test &&
    hosts_add db1 2 61450 db1.lab-rh.test && hosts_add db2 3 61450 db2.lab-rh.test && hosts_finish
}

rh_patroni_base() {  # host -> the base patroni.yml (the lab's part) on stdout
  local h=$1 a; a=$(host_addr "$1")
  cat <<YAML
scope: lab-repohost
name: $h
restapi:
  listen: $a:8008
  connect_address: $a:8008
etcd3:
  hosts: $RH_NET.1:2379
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
postgresql:
  listen: $a:$RH_PORT
  connect_address: $a:$RH_PORT
  data_dir: $RH_PGDATA
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: /var/lib/postgresql/pgpass
  authentication:
    superuser: {username: $RH_OWNER, password: $RH_SU_PASSWORD}
    replication: {username: replicator, password: $RH_REPL_PASSWORD}
  parameters:
    unix_socket_directories: /run/postgresql
YAML
}

# Copy a host's generated directory onto that host (as an operator would), so that
# apply.sh runs from the host's own copy: /srv/pgbr-deploy/<host>.
rh_deploy() {  # host
  # shellcheck disable=SC2016  # $1 and $2 belong to the inner sh
  on_host "$1" sh -c 'rm -rf "$2" && install -d -m 0700 /srv/pgbr-deploy && cp -a "$1" "$2"' sh \
    "$RH_TREE/hosts/$1" "/srv/pgbr-deploy/$1"
}
rh_apply() {  # host args...
  local h=$1; shift
  on_host "$h" env PGBR_POLICY="$PGBR" "/srv/pgbr-deploy/$h/shell/apply.sh" "$@"
}

# The site CA on the repository host signs every CSR the hosts wrote (the lab carries
# them as an operator would, through a root-only directory).
rh_sign_all() {
  local h kind csr
  for h in repo db1 db2; do
    for kind in server client; do
      csr="$RH_TLSDIR/$kind.csr"
      on_host "$h" test -f "$csr" || continue
      on_host "$h" cat "$csr" > "$D/carry/$h-$kind.csr" || return
      on_host repo "$RH_TREE/ca/sign.sh" sign "$h" "$kind" "$D/carry/$h-$kind.csr" "$D/carry/$h-$kind.crt" || return
      on_host "$h" install -m 0644 "$D/carry/$h-$kind.crt" "$RH_TLSDIR/$kind.crt" || return
    done
    on_host repo cat "$RH_CA_DIR/ca.crt" > "$D/carry/ca.crt" || return
    on_host "$h" install -m 0644 "$D/carry/ca.crt" "$RH_TLSDIR/ca.crt" || return
  done
}

# A client certificate the servers do not list, from the same CA (the lab's own key pair
# on the repository host), for the refusal checks.
rh_intruder_cert() {  # host user
  local h=$1 u=$2 dir=/run/lab-intruder
  on_host "$h" install -d -o "$u" -m 0700 "$dir" || return
  on_host "$h" runuser -u "$u" -- openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/client.key" \
    -subj "/CN=pgbr-lab-intruder" -out "$dir/client.csr" 2>/dev/null || return
  on_host "$h" cat "$dir/client.csr" > "$D/carry/intruder-$h.csr"
  on_host repo openssl x509 -req -in "$D/carry/intruder-$h.csr" -CA "$RH_CA_DIR/ca.crt" -CAkey "$RH_CA_DIR/ca.key" \
    -CAcreateserial -days 2 -out "$D/carry/intruder-$h.crt" 2>/dev/null || return
  on_host "$h" install -o "$u" -m 0644 "$D/carry/intruder-$h.crt" "$dir/client.crt"
}

scenario_repo_host() {
  local D="$LAB/$SCENARIO" start h
  # Names unlike the example's; not exported (Patroni reads PATRONI_* variables).
  RH_OWNER=pgbrlabrho RH_DBK=pgbrlabrhb RH_RBK=pgbrlabrhr RH_ETCD=pgbrlabrhe
  RH_ROLE=lab_rh_bkp RH_STANZA=labrh RH_CLUSTER=lab-rh RH_PORT=5433
  RH_PGDATA=/var/lib/postgresql/15/ha RH_REPO_PATH=/srv/pgbackrest/central
  RH_CONFDIR=/etc/pgbackrest/$RH_CLUSTER RH_TLSDIR=/etc/pgbackrest/$RH_CLUSTER/tls RH_CA_DIR=/etc/pgbr-ca/central
  case "${PGBR_LAB_REPOHOST_PGBACKREST:-2.59.1}" in
    2.45) RH_PGBR=/usr/bin/pgbackrest RH_PGBR_VERSION=2.45 ;;
    *) RH_PGBR=/opt/pgbackrest-2.59.1/bin/pgbackrest RH_PGBR_VERSION=2.59.1 ;;
  esac
  step packages rh_packages || return
  [ -x "$RH_PGBR" ] || step pgbackrest-vendor "$ROOT/scripts/pgbackrest-vendor" || return
  install -d -m 0755 "$D"
  install -d -m 0700 "$D/carry" "$D/logs"

  # --- users every host sees (made before the hosts): the cluster owner (PostgreSQL is
  # installed on the database hosts; on the repository host it is only the test's
  # must-not subject) and etcd's. The backup users are made by apply.sh, on their hosts.
  lab_user "$RH_OWNER" --home-dir /var/lib/postgresql
  lab_user "$RH_ETCD"
  step hosts rh_hosts || return
  for h in db1 db2; do
    on_host "$h" install -d -o "$RH_OWNER" -g "$RH_OWNER" -m 0755 /var/lib/postgresql /run/postgresql
    on_host "$h" install -d -o "$RH_OWNER" -g "$RH_OWNER" -m 0750 /var/lib/postgresql/15
  done
  install -d -o "$RH_ETCD" -g "$RH_ETCD" -m 0700 "$D/etcd"
  expect hosts-resolve-each-other "db1 cannot resolve repo.lab-rh.test" on_host db1 getent hosts repo.lab-rh.test
  expect repo-not-on-db-host "db1 sees the repository host's /srv" on_host db1 test ! -e "$RH_REPO_PATH"

  RH_SU_PASSWORD="su-$(openssl rand -hex 12)" RH_REPL_PASSWORD="repl-$(openssl rand -hex 12)"
  ( umask 077; printf '%s\n' "$RH_SU_PASSWORD" "$RH_REPL_PASSWORD" > "$D/secrets" )

  # --- the policy: one repository on `repo`, one cluster with two members ---
  cat > "$D/policy.yaml" <<YAML
version: 1
repositories:
  - name: central
    type: posix
    host:
      name: repo
      address: repo.lab-rh.test
      tls_port: 8443
    path: $RH_REPO_PATH
    backup_user: {name: $RH_RBK, home: /home/$RH_RBK}
    ca_directory: $RH_CA_DIR
clusters:
  - name: $RH_CLUSTER
    postgres:
      major: 15
      data_directory: $RH_PGDATA
      owner: $RH_OWNER
      socket_directory: /run/postgresql
      port: $RH_PORT
      bin_directory: /usr/lib/postgresql/15/bin
    backup_user: {name: $RH_DBK, home: /home/$RH_DBK}
    role: {name: $RH_ROLE}
    pgbackrest:
      stanza: $RH_STANZA
      repository: central
      version: "$RH_PGBR_VERSION"
      binary: $RH_PGBR
      commands: [check, backup, backup-standby]
      tls: {port: 8433}
    members:
      - {name: db1, address: db1.lab-rh.test}
      - {name: db2, address: db2.lab-rh.test}
    patroni:
      enabled: true
      config_file: /etc/patroni/config.yml
      version: "3.0.2"
      pg_hba_after:
        - "local all $RH_OWNER peer"
        - "host all $RH_OWNER $RH_NET.0/24 scram-sha-256"
        - "host replication replicator $RH_NET.0/24 scram-sha-256"
YAML
  register_cluster "$RH_CLUSTER"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  RH_TREE="$D/out/$RH_CLUSTER"
  for h in repo db1 db2; do
    expect "layout-$h" "no $RH_TREE/hosts/$h/shell/apply.sh" test -x "$RH_TREE/hosts/$h/shell/apply.sh" || return
    rh_deploy "$h"
  done

  # --- 1. every host: its user, paths, configuration, keys and CSRs; database hosts
  # first install the Patroni scripts and merge the fragment ---
  step apply-early-repo rh_apply repo --step os-user --step paths --step configs --step tls
  for h in db1 db2; do
    step "patroni-scripts-$h" rh_apply "$h" --patroni-scripts || return
    rh_patroni_base "$h" > "$D/carry/base-$h.yml"
    step "merge-fragment-$h" rh_merge "$D/carry/base-$h.yml" "/srv/pgbr-deploy/$h/patroni/patroni.yml" "$D/carry/patroni-$h.yml" || return
    on_host "$h" install -d -m 0755 /etc/patroni
    on_host "$h" install -o "$RH_OWNER" -g "$RH_OWNER" -m 0600 "$D/carry/patroni-$h.yml" /etc/patroni/config.yml
    step "apply-early-$h" rh_apply "$h" --step os-user --step paths --step configs --step tls
  done

  # --- etcd on the repository host, Patroni on db1 (bootstrap), then db2 (replica) ---
  start=$(now)
  host_daemon repo "$RH_ETCD" "$D/etcd.pid" "$D/logs/etcd.log" 0077 etcd --name lab --data-dir "$D/etcd/data" \
    --listen-client-urls "http://$RH_NET.1:2379" --advertise-client-urls "http://$RH_NET.1:2379" \
    --listen-peer-urls "http://$RH_NET.1:2380" --initial-advertise-peer-urls "http://$RH_NET.1:2380" \
    --initial-cluster "lab=http://$RH_NET.1:2380" --initial-cluster-token pgbr-lab-rh --initial-cluster-state new
  if rh_wait 30 on_host db1 bash -c "exec 3<>/dev/tcp/$RH_NET.1/2379"; then
    result ok etcd-start "$(elapsed "$start")"
  else
    result FAIL etcd-start "$(elapsed "$start")" "etcd does not answer on $RH_NET.1:2379"; return
  fi
  start=$(now)
  host_daemon db1 "$RH_OWNER" "$D/patroni-db1.pid" "$D/logs/patroni-db1.log" 0027 patroni /etc/patroni/config.yml
  if rh_wait 90 rh_true db1 postgres "SELECT NOT pg_is_in_recovery() AND EXISTS (SELECT FROM pg_roles WHERE rolname = '$RH_ROLE')"; then
    result ok bootstrap-db1 "$(elapsed "$start")"
  else
    result FAIL bootstrap-db1 "$(elapsed "$start")" "no primary with the role on db1 within 90 s"; return
  fi
  start=$(now)
  host_daemon db2 "$RH_OWNER" "$D/patroni-db2.pid" "$D/logs/patroni-db2.log" 0027 patroni /etc/patroni/config.yml
  if rh_wait 90 rh_true db2 postgres "SELECT pg_is_in_recovery()"; then
    result ok replica-db2 "$(elapsed "$start")"
  else
    result FAIL replica-db2 "$(elapsed "$start")" "no replica on db2 within 90 s"; return
  fi

  # --- 2. the CA on the repository host signs every host's CSRs ---
  step ca-init on_host repo "$RH_TREE/ca/sign.sh" init || return
  step ca-sign rh_sign_all || return

  # --- 3. database hosts (primary first), 4. repository host, 5. archive on the primary ---
  step apply-db1 rh_apply db1 --start-tls-server || return
  step apply-db2 rh_apply db2 --start-tls-server || return
  step apply-repo rh_apply repo --start-tls-server || return
  step apply-archive-db1 rh_apply db1 --step archive || return
  for h in repo db1 db2; do step "verify-$h" on_host "$h" "/srv/pgbr-deploy/$h/shell/verify.sh"; done

  rh_proofs
  rh_must_nots
  rh_idempotence_rollback
}

rh_proofs() {
  local out start t_after before after restored sum
  sum='SELECT count(*) || md5(string_agg(v, $$,$$ ORDER BY id)) FROM t'
  step check rh_repo --log-level-console=warn check
  step backup-full rh_repo --log-level-console=warn --backup-standby=n --type=full backup
  step load-rows rh_q db1 postgres "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g" || return
  rh_wait 30 rh_true db2 postgres "SELECT count(*) = 1000 FROM t"
  out=$(rh_repo --log-level-console=info --backup-standby=y --type=incr backup 2>&1); local rc=$?
  printf '%s\n' "$out" >> "$LOG"
  if [ "$rc" = 0 ] && grep -q 'replay on the standby' <<<"$out"; then
    result ok backup-standby 0 "$(grep -m1 'replay on the standby' <<<"$out" | cut -c1-120)"
  else
    result FAIL backup-standby 0 "rc $rc: $(grep -m1 ERROR <<<"$out" | cut -c1-160)"
  fi
  rh_q db1 postgres "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1001, 2000) g" >> "$LOG" 2>&1
  before=$(rh_q db1 postgres "$sum")
  rh_wait 30 rh_true db2 postgres "SELECT count(*) = 2000 FROM t"

  # --- switchover: db2 leads, archives into the same repository on timeline 2 ---
  start=$(now)
  step switchover on_host db1 patronictl -c /etc/patroni/config.yml switchover lab-repohost --leader db1 --candidate db2 --force || return
  if rh_wait 60 rh_true db2 postgres "SELECT NOT pg_is_in_recovery()"; then
    result ok switchover-db2-primary "$(elapsed "$start")"
  else
    result FAIL switchover-db2-primary "$(elapsed "$start")" "db2 is not primary within 60 s"; return
  fi
  rh_q db2 postgres CHECKPOINT >> "$LOG" 2>&1
  local tli; tli=$(rh_q db2 postgres 'SELECT timeline_id FROM pg_control_checkpoint()')
  expect timeline-2 "db2 is on timeline '$tli'" [ "$tli" = 2 ]
  sleep 1.2
  t_after=$(rh_q db2 postgres "SELECT now()")
  sleep 1.2
  rh_q db2 postgres "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(2001, 3000) g" >> "$LOG" 2>&1
  after=$(rh_q db2 postgres "$sum")
  local seg
  seg=$(rh_q db2 postgres "SELECT pg_walfile_name(pg_switch_wal())")
  if rh_wait 60 rh_archived db2 "$seg"; then
    result ok archive-after-switchover 0 "$seg"
  else
    result FAIL archive-after-switchover 0 "$seg not archived by db2 within 60 s"
  fi
  local arch
  arch=$(on_host repo find "$RH_REPO_PATH/archive/$RH_STANZA" -name '0000000[12]*' -printf '%f\n' | cut -c1-8 | sort | uniq -c | tr '\n' ' ')
  expect wal-both-timelines "archive holds: $arch" bash -c "grep -q ' 00000001' <<<' $arch' && grep -q ' 00000002' <<<' $arch'"
  step backup-after-switchover rh_repo --log-level-console=warn --backup-standby=n --type=incr backup

  # --- point-in-time restore, as the cluster owner on db1, to a moment on timeline 2 ---
  on_host db1 install -d -o "$RH_OWNER" -g "$RH_OWNER" -m 0750 /var/lib/postgresql/restore
  step pitr-restore rh_owner db1 --log-level-console=warn --pg1-path=/var/lib/postgresql/restore \
    --type=time "--target=$t_after" --target-action=promote --target-timeline=latest restore || return
  register_pgdata /usr/lib/postgresql/15/bin "$(host_path db1 /var/lib/postgresql/restore)"
  step pitr-start on_host db1 runuser -u "$RH_OWNER" -- /usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/restore \
    -l /var/lib/postgresql/restore.log -w -t 120 \
    -o "-c port=5499 -c listen_addresses='' -c unix_socket_directories=/run/postgresql -c archive_mode=off -c primary_conninfo='' -c hba_file=/var/lib/postgresql/restore/pg_hba.conf -c ident_file=/var/lib/postgresql/restore/pg_ident.conf" start || return
  rh_wait 60 rh_true db1 postgres "SELECT NOT pg_is_in_recovery()" 5499
  restored=$(rh_q db1 postgres "$sum" 5499)
  expect pitr-rows-before-switchover "restored ${restored:0:16}… before ${before:0:16}… after ${after:0:16}…" \
    bash -c "[ -n '$before' ] && [ '$restored' = '$before' ] && [ '$restored' != '$after' ]"
  on_host db1 runuser -u "$RH_OWNER" -- /usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/restore -m fast -w stop >> "$LOG" 2>&1
}

rh_must_nots() {
  local h
  for h in db1 db2; do
    denied "no-create-in-pgdata-$h" 'Permission denied' on_host "$h" runuser -u "$RH_DBK" -- touch "$RH_PGDATA/lab-probe"
    denied "no-write-in-pgdata-$h" 'Permission denied' on_host "$h" runuser -u "$RH_DBK" -- sh -c "echo x >> '$RH_PGDATA/PG_VERSION'"
    expect "no-repository-on-$h" "the repository's path exists on $h" on_host "$h" test ! -e "$RH_REPO_PATH"
    denied "no-repo-user-on-$h" 'no such user' on_host "$h" id "$RH_RBK"
  done
  denied no-owner-write-in-repo 'Permission denied' on_host repo runuser -u "$RH_OWNER" -- touch "$RH_REPO_PATH/lab-probe"
  denied no-owner-write-archive-info 'Permission denied' on_host repo runuser -u "$RH_OWNER" -- \
    sh -c "echo x >> '$RH_REPO_PATH/archive/$RH_STANZA/archive.info'"
  denied no-owner-read-repo 'Permission denied' on_host repo runuser -u "$RH_OWNER" -- ls "$RH_REPO_PATH/backup"
  denied no-db-backup-user-on-repo 'no such user' on_host repo id "$RH_DBK"

  # --- nobody but the listed client certificates reaches a TLS server ---
  if ! rh_intruder_cert db1 "$RH_OWNER" || ! rh_intruder_cert repo "$RH_RBK"; then
    result FAIL intruder-cert 0 "could not make the intruder's certificate"; return
  fi
  local tlsrefused='TLS|tls|certificate|access denied|not authorized|ServiceError|HostConnectError|ProtocolError|unable to|error'
  denied repo-tls-refuses-unlisted-cert "$tlsrefused" rh_owner db1 --log-level-console=warn \
    --repo1-host-cert-file=/run/lab-intruder/client.crt --repo1-host-key-file=/run/lab-intruder/client.key --io-timeout=5 info
  denied repo-tls-refuses-no-cert "$tlsrefused" rh_owner db1 --log-level-console=warn \
    --reset-repo1-host-cert-file --reset-repo1-host-key-file --io-timeout=5 info
  for h in 1 2; do
    denied "db$h-tls-refuses-unlisted-cert" "$tlsrefused" rh_repo --log-level-console=warn --io-timeout=5 --pg$((3 - h))-host=none.invalid \
      "--pg$h-host-cert-file=/run/lab-intruder/client.crt" "--pg$h-host-key-file=/run/lab-intruder/client.key" check
    denied "db$h-tls-refuses-no-cert" "$tlsrefused" rh_repo --log-level-console=warn --io-timeout=5 \
      "--reset-pg$h-host-cert-file" "--reset-pg$h-host-key-file" check
  done
}

rh_idempotence_rollback() {
  local h second
  for h in db1 db2 repo; do
    second=$(rh_apply "$h" --start-tls-server 2>&1); printf '%s\n' "$second" >> "$LOG"
    expect "apply-again-no-change-$h" "second apply.sh on $h reported changes" grep -q "no change: the host already matches the plan" <<<"$second"
  done
  for h in db2 db1 repo; do
    step "rollback-$h" on_host "$h" "/srv/pgbr-deploy/$h/shell/rollback.sh"
  done
  for h in repo db1 db2; do
    expect "rollback-no-tls-server-$h" "a pgbackrest server still runs on $h" rh_no_tls_server "$h"
    expect "rollback-configs-gone-$h" "$RH_CONFDIR remains on $h" on_host "$h" test ! -e "$RH_CONFDIR/repository.conf" -a ! -e "$RH_CONFDIR/database.conf"
  done
  local p; p=$(rh_primary)
  expect rollback-role-gone "the role still exists (primary: '$p')" rh_true "$p" postgres "SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$RH_ROLE')"
  expect secrets-nowhere "a Patroni password appears in the artifacts or the log" \
    bash -c "! grep -rqF -f '$D/secrets' '$D/out' '$LOG'"
}
