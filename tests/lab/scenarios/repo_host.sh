#!/usr/bin/env bash
# shellcheck shell=bash
#
# repo_host.sh - the dedicated repository host (issue 14) on real servers: three hosts on
# this machine (tests/lab/lib/hosts.sh: each its own network namespace on a private
# bridge, names in its /etc/hosts, and its own mount namespace for /etc, /usr/local, /run, /var/log,
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
# every must-not on every host (PGDATA, the repository, each TLS key, TCP for the role;
# each TLS server refuses an unlisted certificate and a client without one); drift per
# host; apply.sh again changes nothing; rollback.sh in reverse order.
# PGBR_LAB_REPOHOST_PGBACKREST: 2.59.1 (default, scripts/pgbackrest-vendor) or 2.45.
# PGBR_LAB_REPOHOST_BY_HAND=1: the same proofs on the shape written by hand (rh_by_hand).
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

RH_NET=10.213.14

rh_packages() {
  local missing=() p
  for p in etcd-server patroni postgresql-15 pgbackrest openssl iproute2 util-linux; do
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

# A client without a certificate. pgBackRest's own client always presents one, and its
# server answers a client without one with the greeting (and a ping) only: so the lab
# records, with a stand-in server on the repository host, the first request a real client
# sends (the "config" command: its options and stanza), then replays those bytes to each
# real server with no certificate (must be refused: pgBackRest 2.59.1 hangs up at once,
# 2.45 answers as to a ping and hangs up), with an unlisted one (refused: access denied)
# and with the listed one (the control: acknowledged, the session stays open).
rh_tls_probe_py() {
  cat <<'PY'
import socket, ssl, sys
mode = sys.argv[1]
if mode == "record":  # record ADDR PORT CERT KEY VERSION OUT
    addr, port, cert, key, version, out = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.create_server((addr, port))
    srv.settimeout(20)
    conn, _ = srv.accept()
    t = ctx.wrap_socket(conn, server_side=True)
    t.sendall(('{"name":"pgBackRest","service":"remote","version":"%s"}\n' % version).encode())
    t.settimeout(2)
    data = b""
    try:
        while True:
            chunk = t.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    open(out, "wb").write(data)
    print("recorded %d bytes" % len(data))
    sys.exit(0 if data else 1)
# replay HOST PORT CA REQUEST [CERT KEY]
host, port, ca, req = sys.argv[2], int(sys.argv[3]), sys.argv[4], open(sys.argv[5], "rb").read()
ctx = ssl.create_default_context(cafile=ca)
if len(sys.argv) > 7:
    ctx.load_cert_chain(sys.argv[6], sys.argv[7])
resp = b""
try:
    t = ctx.wrap_socket(socket.create_connection((host, port), timeout=3), server_side=False, server_hostname=host)
    greeting = b""
    while not greeting.endswith(b"\n"):
        chunk = t.recv(1)
        if not chunk:
            break
        greeting += chunk
    print("greeting:", greeting.strip().decode(errors="replace"))
    t.sendall(req)
    t.settimeout(1)
    closed = False
    while True:
        chunk = t.recv(65536)
        if not chunk:
            closed = True
            break
        resp += chunk
except socket.timeout:
    pass
except (ssl.SSLError, OSError) as e:
    print("refused:", e)
    sys.exit(1)
print("response:", resp[:160])
for why in (b"access denied", b"expected config command"):
    if why in resp:
        print("refused:", why.decode())
        sys.exit(1)
if closed:
    # An unauthenticated client may ping: the server answers it and hangs up.
    print("refused: the server hung up (no session for the next command)")
    sys.exit(1)
print("reached: the server acknowledged the request and waits for the next command")
PY
}

# Records the first request db1's owner sends to the repository host.
rh_tls_record() {
  local pid
  rh_tls_probe_py > "$D/tls-probe.py"
  on_host repo python3 "$D/tls-probe.py" record "$RH_NET.1" 8444 "$RH_TLSDIR/server.crt" "$RH_TLSDIR/server.key" \
    "$RH_PGBR_VERSION" "$D/carry/config-request" &
  pid=$!
  sleep 0.5
  rh_owner db1 --log-level-console=off --repo1-host-port=8444 --io-timeout=3 archive-get 000000010000000000000001 /run/lab-wal/z
  wait "$pid"
}

rh_tls_server_running() { ! rh_no_tls_server "$1"; }

rh_not_in_group() {  # host user group
  ! on_host "$1" id -nG "$2" | tr ' ' '\n' | grep -qx -- "$3"
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

# apply.sh that must stop with exit 3 and PENDING work (the certificates).
rh_apply_pending() {  # host args...
  local out rc
  out=$(rh_apply "$@" 2>&1); rc=$?
  printf '%s\n' "$out"
  [ "$rc" = 3 ] && grep -q PENDING <<<"$out"
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
  if [ "${PGBR_LAB_REPOHOST_BY_HAND:-0}" = 1 ]; then
    openssl x509 -req -in "$D/carry/intruder-$h.csr" -CA "$D/handca/ca.crt" -CAkey "$D/handca/ca.key" \
      -CAcreateserial -days 2 -out "$D/carry/intruder-$h.crt" 2>/dev/null || return
  else
    on_host repo openssl x509 -req -in "$D/carry/intruder-$h.csr" -CA "$RH_CA_DIR/ca.crt" -CAkey "$RH_CA_DIR/ca.key" \
      -CAserial "$D/carry/intruder.srl" -CAcreateserial -days 2 -out "$D/carry/intruder-$h.crt" 2>/dev/null || return
  fi
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

  if [ "${PGBR_LAB_REPOHOST_BY_HAND:-0}" = 1 ]; then
    rh_by_hand || return
  else
    rh_generated || return
  fi
  rh_proofs
  rh_must_nots
  [ "${PGBR_LAB_REPOHOST_BY_HAND:-0}" = 1 ] || rh_idempotence_rollback
}

# Patroni on db1 (bootstrap: the role comes from post_bootstrap), then COMMAND if any,
# then db2 (a replica cloned from db1).
rh_start_patroni() {  # [command...]
  local start
  start=$(now)
  host_daemon db1 "$RH_OWNER" "$D/patroni-db1.pid" "$D/logs/patroni-db1.log" 0027 patroni /etc/patroni/config.yml
  if [ -n "${RH_HAND_ROLE:-}" ] && rh_wait 90 rh_true db1 postgres "SELECT NOT pg_is_in_recovery()"; then
    rh_q db1 postgres "CREATE ROLE $RH_ROLE LOGIN; GRANT pg_read_all_settings, pg_checkpoint TO $RH_ROLE;
      GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean), pg_backup_stop(boolean), pg_switch_wal(),
        pg_create_restore_point(text) TO $RH_ROLE" >> "$LOG" 2>&1
  fi
  if rh_wait 90 rh_true db1 postgres "SELECT NOT pg_is_in_recovery() AND EXISTS (SELECT FROM pg_roles WHERE rolname = '$RH_ROLE')"; then
    result ok bootstrap-db1 "$(elapsed "$start")"
  else
    result FAIL bootstrap-db1 "$(elapsed "$start")" "no primary with the role on db1 within 90 s"; return
  fi
  if [ "$#" -gt 0 ]; then "$@"; fi
  start=$(now)
  host_daemon db2 "$RH_OWNER" "$D/patroni-db2.pid" "$D/logs/patroni-db2.log" 0027 patroni /etc/patroni/config.yml
  if rh_wait 90 rh_true db2 postgres "SELECT pg_is_in_recovery()"; then
    result ok replica-db2 "$(elapsed "$start")"
  else
    result FAIL replica-db2 "$(elapsed "$start")" "no replica on db2 within 90 s"; return
  fi

}

# The generated artifacts, in the order CHANGE.md gives.
rh_generated() {
  local h
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
  # Nothing to register: every file the artifacts write is inside a host (hosts.sh), and
  # every process the lab or apply.sh starts there is stopped by hosts_cleanup.
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  RH_TREE="$D/out/$RH_CLUSTER"
  for h in repo db1 db2; do
    expect "layout-$h" "no $RH_TREE/hosts/$h/shell/apply.sh" test -x "$RH_TREE/hosts/$h/shell/apply.sh" || return
    rh_deploy "$h"
  done

  # --- 1. every host: its user, paths, configuration, keys and CSRs; database hosts
  # first install the Patroni scripts and merge the fragment ---
  step apply-early-repo rh_apply_pending repo --step os-user --step paths --step configs --step tls
  for h in db1 db2; do
    step "patroni-scripts-$h" rh_apply "$h" --patroni-scripts || return
    rh_patroni_base "$h" > "$D/carry/base-$h.yml"
    step "merge-fragment-$h" rh_merge "$D/carry/base-$h.yml" "$RH_TREE/hosts/$h/patroni/patroni.yml" "$D/carry/patroni-$h.yml" || return
    on_host "$h" install -d -m 0755 /etc/patroni
    on_host "$h" install -o "$RH_OWNER" -g "$RH_OWNER" -m 0600 "$D/carry/patroni-$h.yml" /etc/patroni/config.yml
  done
  # db2 joins as a new member: its step 1 runs before its PostgreSQL exists; db1's after
  # Patroni has bootstrapped it.
  rh_start_patroni step apply-early-db2 rh_apply_pending db2 --step os-user --step paths --step configs --step tls || return
  step apply-early-db1 rh_apply_pending db1 --step os-user --step paths --step configs --step tls

  # --- 2. the CA on the repository host signs every host's CSRs ---
  step ca-init on_host repo "$RH_TREE/ca/sign.sh" init || return
  step ca-sign rh_sign_all || return

  # --- 3. database hosts (primary first), 4. repository host, 5. archive on the primary ---
  step apply-db1 rh_apply_pending db1 --start-tls-server || return
  step apply-db2 rh_apply db2 --start-tls-server || return
  step apply-repo rh_apply repo --start-tls-server || return
  step apply-archive-db1 rh_apply db1 --step archive || return
  for h in repo db1 db2; do step "verify-$h" on_host "$h" "/srv/pgbr-deploy/$h/shell/verify.sh"; done
  # Drift, host by host: clean after apply; a configuration made world-readable on the
  # repository host is named (then put back).
  for h in repo db1 db2; do step "no-drift-$h" on_host "$h" "$PGBR" check "$D/policy.yaml" --deployed --host "$h"; done
  on_host repo chmod 0644 "$RH_CONFDIR/repository.conf"
  denied drift-found-on-repo "repository.conf" on_host repo "$PGBR" check "$D/policy.yaml" --deployed --host repo
  on_host repo chmod 0640 "$RH_CONFDIR/repository.conf"
  return 0

}

# PGBR_LAB_REPOHOST_BY_HAND=1: the shape of the i14 contract (§3, §6) written by hand,
# no generated artifact: users, paths, certificates from a lab CA, the three
# configuration files, the role and its pg_hba/pg_ident lines through Patroni, the TLS
# servers as daemons. It proves the shape the generator must produce.
rh_hand_cert() {  # host kind cn user (key and certificate in RH_TLSDIR, signed by the lab CA)
  local h=$1 kind=$2 cn=$3 u=$4 ext
  on_host "$h" openssl req -new -newkey rsa:2048 -nodes -keyout "$RH_TLSDIR/$kind.key" -subj "/CN=$cn" \
    -out "$D/carry/$h-$kind.csr" 2>/dev/null || return
  if [ "$kind" = server ]; then ext="subjectAltName=DNS:$cn
extendedKeyUsage=serverAuth"; else ext="extendedKeyUsage=clientAuth"; fi
  printf '%s\n' "$ext" > "$D/carry/$h-$kind.ext"
  openssl x509 -req -in "$D/carry/$h-$kind.csr" -CA "$D/handca/ca.crt" -CAkey "$D/handca/ca.key" -CAcreateserial \
    -days 2 -extfile "$D/carry/$h-$kind.ext" -out "$D/carry/$h-$kind.crt" 2>/dev/null || return
  on_host "$h" install -o root -g root -m 0644 "$D/carry/$h-$kind.crt" "$RH_TLSDIR/$kind.crt" &&
    on_host "$h" chown "$u:" "$RH_TLSDIR/$kind.key" && on_host "$h" chmod 0600 "$RH_TLSDIR/$kind.key"
}

# By hand there is no Patroni hook: patroni.dynamic.json is written 0600 (facts.md §5).
rh_hand_modes() {
  local h
  [ "${PGBR_LAB_REPOHOST_BY_HAND:-0}" = 1 ] || return 0
  sleep 1.5
  for h in db1 db2; do on_host "$h" find "$RH_PGDATA" -maxdepth 1 -type f ! -perm -g+r -exec chmod g+r {} + ; done
}

rh_by_hand() {
  local h a n
  install -d -m 0700 "$D/handca"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/handca/ca.key" -subj "/CN=pgbr-lab-rh-ca" -days 2 \
    -out "$D/handca/ca.crt" 2>/dev/null || { result FAIL hand-ca 0 "openssl"; return 1; }
  # repository host
  on_host repo useradd --system --user-group --create-home --home-dir "/home/$RH_RBK" --shell /bin/bash "$RH_RBK" || return
  on_host repo install -d -m 0755 /srv/pgbackrest "$RH_CONFDIR" "$RH_TLSDIR"
  on_host repo install -d -o "$RH_RBK" -g "$RH_RBK" -m 0750 "$RH_REPO_PATH" "/run/pgbackrest-$RH_RBK" "/var/log/pgbackrest-$RH_RBK"
  on_host repo install -m 0644 "$D/handca/ca.crt" "$RH_TLSDIR/ca.crt"
  rh_hand_cert repo server repo.lab-rh.test "$RH_RBK" && rh_hand_cert repo client "pgbr-$RH_CLUSTER-repo-$RH_RBK" "$RH_RBK" || return
  {
    printf '[global]\nrepo1-path=%s\nrepo1-retention-full=2\nlock-path=/run/pgbackrest-%s\nlog-path=/var/log/pgbackrest-%s\n' "$RH_REPO_PATH" "$RH_RBK" "$RH_RBK"
    printf 'log-level-file=info\nstart-fast=y\nbackup-standby=y\n'
    printf 'tls-server-address=repo.lab-rh.test\ntls-server-port=8443\n'
    printf 'tls-server-ca-file=%s/ca.crt\ntls-server-cert-file=%s/server.crt\ntls-server-key-file=%s/server.key\n' "$RH_TLSDIR" "$RH_TLSDIR" "$RH_TLSDIR"
    printf 'tls-server-auth=pgbr-%s-db1-%s=%s\ntls-server-auth=pgbr-%s-db2-%s=%s\n\n[%s]\n' "$RH_CLUSTER" "$RH_OWNER" "$RH_STANZA" "$RH_CLUSTER" "$RH_OWNER" "$RH_STANZA" "$RH_STANZA"
    for n in 1 2; do
      printf 'pg%s-host=db%s.lab-rh.test\npg%s-host-type=tls\npg%s-host-port=8433\n' "$n" "$n" "$n" "$n"
      printf 'pg%s-host-ca-file=%s/ca.crt\npg%s-host-cert-file=%s/client.crt\npg%s-host-key-file=%s/client.key\n' "$n" "$RH_TLSDIR" "$n" "$RH_TLSDIR" "$n" "$RH_TLSDIR"
      printf 'pg%s-host-config=%s/server.conf\npg%s-path=%s\npg%s-socket-path=/run/postgresql\npg%s-port=%s\npg%s-user=%s\npg%s-database=postgres\n' \
        "$n" "$RH_CONFDIR" "$n" "$RH_PGDATA" "$n" "$n" "$RH_PORT" "$n" "$RH_ROLE" "$n"
    done
  } > "$D/carry/repository.conf"
  on_host repo install -o root -g "$RH_RBK" -m 0640 "$D/carry/repository.conf" "$RH_CONFDIR/repository.conf"
  # database hosts
  for h in db1 db2; do
    on_host "$h" useradd --system --user-group --groups "$RH_OWNER" --create-home --home-dir "/home/$RH_DBK" --shell /bin/bash "$RH_DBK" || return
    on_host "$h" install -d -m 0755 "$RH_CONFDIR" "$RH_TLSDIR"
    on_host "$h" install -d -o "$RH_DBK" -g "$RH_DBK" -m 0750 "/run/pgbackrest-$RH_DBK" "/var/log/pgbackrest-$RH_DBK"
    on_host "$h" install -d -o "$RH_OWNER" -g "$RH_OWNER" -m 0750 "/run/pgbackrest-$RH_OWNER" /var/log/pgbackrest /var/spool/pgbackrest
    on_host "$h" install -m 0644 "$D/handca/ca.crt" "$RH_TLSDIR/ca.crt"
    rh_hand_cert "$h" server "$h.lab-rh.test" "$RH_DBK" && rh_hand_cert "$h" client "pgbr-$RH_CLUSTER-$h-$RH_OWNER" "$RH_OWNER" || return
    {
      printf '[global]\nlock-path=/run/pgbackrest-%s\nlog-path=/var/log/pgbackrest-%s\nlog-level-file=info\n' "$RH_DBK" "$RH_DBK"
      printf 'tls-server-address=%s.lab-rh.test\ntls-server-port=8433\n' "$h"
      printf 'tls-server-ca-file=%s/ca.crt\ntls-server-cert-file=%s/server.crt\ntls-server-key-file=%s/server.key\n' "$RH_TLSDIR" "$RH_TLSDIR" "$RH_TLSDIR"
      printf 'tls-server-auth=pgbr-%s-repo-%s=%s\n\n[%s]\n' "$RH_CLUSTER" "$RH_RBK" "$RH_STANZA" "$RH_STANZA"
      printf 'pg1-path=%s\npg1-socket-path=/run/postgresql\npg1-port=%s\npg1-user=%s\npg1-database=postgres\n' "$RH_PGDATA" "$RH_PORT" "$RH_ROLE"
    } > "$D/carry/server-$h.conf"
    {
      printf '[global]\nrepo1-host=repo.lab-rh.test\nrepo1-host-type=tls\nrepo1-host-port=8443\n'
      printf 'repo1-host-ca-file=%s/ca.crt\nrepo1-host-cert-file=%s/client.crt\nrepo1-host-key-file=%s/client.key\n' "$RH_TLSDIR" "$RH_TLSDIR" "$RH_TLSDIR"
      printf 'repo1-host-config=%s/repository.conf\nlock-path=/run/pgbackrest-%s\nlog-path=/var/log/pgbackrest\nspool-path=/var/spool/pgbackrest\nlog-level-file=info\n\n[%s]\n' "$RH_CONFDIR" "$RH_OWNER" "$RH_STANZA"
      printf 'pg1-path=%s\npg1-socket-path=/run/postgresql\npg1-port=%s\n' "$RH_PGDATA" "$RH_PORT"
    } > "$D/carry/database-$h.conf"
    on_host "$h" install -o root -g "$RH_DBK" -m 0640 "$D/carry/server-$h.conf" "$RH_CONFDIR/server.conf"
    on_host "$h" install -o root -g "$RH_OWNER" -m 0640 "$D/carry/database-$h.conf" "$RH_CONFDIR/database.conf"
    a=$(host_addr "$h")
    {
      rh_patroni_base "$h"
      cat <<YAML
  pg_hba:
    - local postgres $RH_ROLE peer map=pgbr
    - local all $RH_ROLE reject
    - host all $RH_ROLE all reject
    - local all $RH_OWNER peer
    - host all $RH_OWNER $RH_NET.0/24 scram-sha-256
    - host replication replicator $RH_NET.0/24 scram-sha-256
  pg_ident:
    - pgbr $RH_DBK $RH_ROLE
YAML
    } > "$D/carry/patroni-$h.yml"
    sed -i "s/^    retry_timeout: 5\$/    retry_timeout: 5\n    postgresql:\n      parameters:\n        archive_mode: 'on'\n  initdb: [allow-group-access]/" "$D/carry/patroni-$h.yml"
    on_host "$h" install -d -m 0755 /etc/patroni
    on_host "$h" install -o "$RH_OWNER" -g "$RH_OWNER" -m 0600 "$D/carry/patroni-$h.yml" /etc/patroni/config.yml
  done
  RH_HAND_ROLE=1 rh_start_patroni || return
  for h in db1 db2; do
    host_daemon "$h" "$RH_DBK" "$D/tls-$h.pid" "$D/logs/tls-$h.log" 0027 "$RH_PGBR" --config="$RH_CONFDIR/server.conf" server
  done
  host_daemon repo "$RH_RBK" "$D/tls-repo.pid" "$D/logs/tls-repo.log" 0027 "$RH_PGBR" --config="$RH_CONFDIR/repository.conf" server
  sleep 1
  step stanza-create rh_repo --log-level-console=warn stanza-create || return
  local cmd="$RH_PGBR --config=$RH_CONFDIR/database.conf --stanza=$RH_STANZA"
  step archive-via-patroni on_host db1 patronictl -c /etc/patroni/config.yml edit-config lab-repohost --force --quiet \
    -s "postgresql.parameters.archive_command=$cmd archive-push %p" \
    -s "postgresql.recovery_conf.restore_command=$cmd archive-get %f \"%p\"" || return
  rh_wait 20 rh_true db1 postgres "SELECT current_setting('archive_command') LIKE '%archive-push%'"
}

rh_proofs() {
  local out start t_after before after restored sum
  sum='SELECT count(*) || md5(string_agg(v, $$,$$ ORDER BY id)) FROM t'
  rh_hand_modes
  step check rh_repo --log-level-console=warn check
  step backup-full rh_repo --log-level-console=warn --backup-standby=n --type=full backup
  step load-rows rh_q db1 postgres "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g" || return
  rh_wait 30 rh_true db2 postgres "SELECT count(*) = 1000 FROM t"
  rh_hand_modes
  start=$(now)
  out=$(rh_repo --log-level-console=info --backup-standby=y --type=incr backup 2>&1); local rc=$?
  printf '%s\n' "$out" >> "$LOG"
  if [ "$rc" = 0 ] && grep -q 'replay on the standby reached' <<<"$out"; then
    result ok backup-standby "$(elapsed "$start")" "$(grep -m1 -o 'replay on the standby reached.*' <<<"$out")"
  else
    result FAIL backup-standby "$(elapsed "$start")" "rc $rc: $(grep -m1 ERROR <<<"$out" | cut -c1-160)"
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
  if grep -q ' 00000001' <<<" $arch" && grep -q ' 00000002' <<<" $arch"; then
    result ok wal-both-timelines 0 "segments per timeline: $arch"
  else
    result FAIL wal-both-timelines 0 "archive holds: $arch"
  fi
  rh_hand_modes
  step backup-after-switchover rh_repo --log-level-console=warn --backup-standby=n --type=incr backup

  # --- point-in-time restore, as the cluster owner on db1, to a moment on timeline 2 ---
  on_host db1 install -d -o "$RH_OWNER" -g "$RH_OWNER" -m 0750 /var/lib/postgresql/restore
  step pitr-restore rh_owner db1 --log-level-console=info --pg1-path=/var/lib/postgresql/restore \
    --type=time "--target=$t_after" --target-action=promote --target-timeline=latest restore || return
  step pitr-start on_host db1 runuser -u "$RH_OWNER" -- /usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/restore \
    -l /var/lib/postgresql/restore.log -w -t 120 \
    -o "-c port=5499 -c listen_addresses='' -c unix_socket_directories=/run/postgresql -c archive_mode=off -c primary_conninfo='' -c hba_file=/var/lib/postgresql/restore/pg_hba.conf -c ident_file=/var/lib/postgresql/restore/pg_ident.conf" start || return
  rh_wait 60 rh_true db1 postgres "SELECT NOT pg_is_in_recovery()" 5499
  restored=$(rh_q db1 postgres "$sum" 5499)
  local rlog; rlog=$(on_host db1 cat /var/lib/postgresql/restore.log)
  printf '%s\n' "$rlog" >> "$LOG"
  expect pitr-followed-timeline-2 "the restored server did not fetch timeline 2's WAL and stop before a commit" \
    bash -c "grep -q 'restored log file \"00000002' <<<\"\$1\" && grep -q 'recovery stopping before commit' <<<\"\$1\"" _ "$rlog"
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
    denied "no-owner-key-for-backup-user-$h" 'Permission denied' on_host "$h" runuser -u "$RH_DBK" -- cat "$RH_TLSDIR/client.key"
    denied "no-server-key-for-owner-$h" 'Permission denied' on_host "$h" runuser -u "$RH_OWNER" -- cat "$RH_TLSDIR/server.key"
    denied "no-tcp-for-role-$h" 'pg_hba.conf rejects connection|no pg_hba.conf entry' on_host "$h" runuser -u "$RH_DBK" -- \
      psql -X -h "$h.lab-rh.test" -p "$RH_PORT" -U "$RH_ROLE" -d postgres -c "SELECT 1"
  done
  denied no-owner-write-in-repo 'Permission denied' on_host repo runuser -u "$RH_OWNER" -- touch "$RH_REPO_PATH/lab-probe"
  denied no-owner-write-archive-info 'Permission denied' on_host repo runuser -u "$RH_OWNER" -- \
    sh -c "echo x >> '$RH_REPO_PATH/archive/$RH_STANZA/archive.info'"
  denied no-owner-read-repo 'Permission denied' on_host repo runuser -u "$RH_OWNER" -- ls "$RH_REPO_PATH/backup"
  denied no-db-backup-user-on-repo 'no such user' on_host repo id "$RH_DBK"
  denied no-repo-client-key-for-owner 'Permission denied' on_host repo runuser -u "$RH_OWNER" -- cat "$RH_TLSDIR/client.key"

  # --- nobody but the listed client certificates reaches a TLS server ---
  if ! rh_intruder_cert db1 "$RH_OWNER" || ! rh_intruder_cert repo "$RH_RBK"; then
    result FAIL intruder-cert 0 "could not make the intruder's certificate"; return
  fi
  local seg
  seg=$(on_host repo find "$RH_REPO_PATH/archive/$RH_STANZA" -type f -name '000000010000000000000*' -printf '%f\n' | sort | head -1 | cut -c1-24)
  on_host db1 install -d -o "$RH_OWNER" -m 0700 /run/lab-wal
  step listed-cert-archive-get rh_owner db1 --log-level-console=warn archive-get "$seg" /run/lab-wal/ok
  denied repo-tls-refuses-unlisted-cert 'access denied' rh_owner db1 --log-level-console=warn \
    --repo1-host-cert-file=/run/lab-intruder/client.crt --repo1-host-key-file=/run/lab-intruder/client.key archive-get "$seg" /run/lab-wal/x
  # db1's owner's certificate is listed by the repository host, not by db2's server.
  denied db2-tls-refuses-db1-owner-cert 'access denied' rh_owner db1 --log-level-console=warn \
    --repo1-host=db2.lab-rh.test --repo1-host-port=8433 archive-get "$seg" /run/lab-wal/y
  # Both members' TLS servers, each with the repository host's intruder certificate.
  local out
  out=$(rh_repo --log-level-console=warn --io-timeout=5 \
    --pg1-host-cert-file=/run/lab-intruder/client.crt --pg1-host-key-file=/run/lab-intruder/client.key \
    --pg2-host-cert-file=/run/lab-intruder/client.crt --pg2-host-key-file=/run/lab-intruder/client.key check 2>&1)
  printf -- '--- check with an unlisted certificate for both members:\n%s\n' "$out" >> "$LOG"
  for h in 1 2; do
    expect "db$h-tls-refuses-unlisted-cert" "no access denied from db$h" grep -Eq "pg$h: \[AccessError\].*access denied" <<<"$out"
  done
  step tls-record-request rh_tls_record || return
  local probe=(python3 "$D/tls-probe.py" replay) req="$D/carry/config-request"
  step replay-listed-cert-reaches-repo on_host db1 "${probe[@]}" repo.lab-rh.test 8443 "$RH_TLSDIR/ca.crt" "$req" \
    "$RH_TLSDIR/client.crt" "$RH_TLSDIR/client.key"
  denied replay-repo-refuses-no-cert 'refused' on_host db1 "${probe[@]}" repo.lab-rh.test 8443 "$RH_TLSDIR/ca.crt" "$req"
  denied replay-repo-refuses-unlisted-cert 'refused: access denied' on_host db1 "${probe[@]}" repo.lab-rh.test 8443 "$RH_TLSDIR/ca.crt" "$req" \
    /run/lab-intruder/client.crt /run/lab-intruder/client.key
  for h in db1 db2; do
    denied "replay-$h-refuses-no-cert" 'refused' on_host repo "${probe[@]}" "$h.lab-rh.test" 8433 "$RH_TLSDIR/ca.crt" "$req"
  done
}

rh_idempotence_rollback() {
  local h second
  for h in db1 db2 repo; do
    second=$(rh_apply "$h" --start-tls-server 2>&1); printf '%s\n' "$second" >> "$LOG"
    expect "apply-again-no-change-$h" "second apply.sh on $h reported changes" grep -q "no change: the host already matches the plan" <<<"$second"
  done
  for h in repo db1 db2; do
    expect "tls-server-running-$h" "no pgbackrest server runs on $h before the rollback" rh_tls_server_running "$h"
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
  expect rollback-archive-command-back "archive_command is still set on $p" \
    rh_wait 20 rh_true "$p" postgres "SELECT current_setting('archive_command') IN ('', '(disabled)')"
  for h in db1 db2; do
    expect "rollback-user-left-group-$h" "$RH_DBK is still in $RH_OWNER's group on $h" \
      rh_not_in_group "$h" "$RH_DBK" "$RH_OWNER"
  done
  expect secrets-nowhere "a Patroni password appears in the artifacts or the log" \
    bash -c "! grep -rqF -f '$D/secrets' '$D/out' '$LOG'"
}
