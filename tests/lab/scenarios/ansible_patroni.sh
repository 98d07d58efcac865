#!/usr/bin/env bash
# shellcheck shell=bash
#
# ansible_patroni.sh - the generated Ansible collection (built, installed from its
# tarball, the raw copy deleted) on a Patroni cluster: Debian's Patroni 3.0.2 + etcd 3.4
# and PostgreSQL 15 on loopback, without systemd, one member. The role runs apply.sh's
# Patroni mode step by step: first, before Patroni's first start, only the scripts
# (pgbr_policy_patroni_scripts_only: the post-bootstrap script must exist for the
# bootstrap); then, once Patroni has bootstrapped the cluster from the merged fragment,
# the whole plan: no pg_hba.conf edit (Patroni's file starts with the block), no ALTER
# SYSTEM (archive settings through patronictl edit-config), the hook installed. Then
# verify.sh and verify.yml pass, pgbackrest check and a full backup work as the backup
# user, a second run reports changed=0. Reuses patroni.sh's helpers (patroni_packages,
# patroni_base_config, patroni_merge, patroni_daemon, wait_for, query_true) with its own
# ports, scope and etcd. Everything stopped by PID at the end.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run), and patroni.sh and
# ansible.sh sourced (tests/lab/run sources every scenario).

scenario_ansible_patroni() {
  local D="$LAB/$SCENARIO" bin=/usr/lib/postgresql/15/bin
  local owner=pgbrlabapo bkp=pgbrlabapb role=lab_anspat_bkp stanza=labanspat cluster=lab-ans-patroni
  local port=55477 rest=18108 tls_port=18698 etcd_port=12479 group=pgbr_lab_ans_patroni
  # patroni.sh's helpers read these (not PATRONI_*: Patroni reads those as configuration).
  # shellcheck disable=SC2034
  PT_OWNER=$owner PT_HOME="$D/patroni" PT_SOCK="$D/sock"
  # shellcheck disable=SC2034
  PT_PATH="/usr/sbin:/usr/bin:/sbin:/bin" PT_PYTHON=/usr/bin/python3 PT_SCOPE=lab-ans-patroni PT_ETCD=$etcd_port  # Debian's Patroni
  step packages patroni_packages || return
  command -v ansible-playbook >/dev/null || step install-ansible env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible || return
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/patroni" "$D/etcd"
  install -d -o "$owner" -g "$owner" -m 0750 "$D/pg"
  install -d -o "$owner" -g "$owner" -m 0755 "$D/sock"
  # shellcheck disable=SC2034
  PT_SU_PASSWORD="su-$(openssl rand -hex 12)" PT_REPL_PASSWORD="repl-$(openssl rand -hex 12)"
  ( umask 077; printf '%s\n' "$PT_SU_PASSWORD" "$PT_REPL_PASSWORD" > "$D/secrets" )

  local cfg="$D/patroni/$cluster.yml"
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
    backup_user: {name: $bkp, home: $D/home-bkp}
    role: {name: $role}
    pgbackrest:
      stanza: $stanza
      version: "2.45"
      repository: $D/repo
      tls: {port: $tls_port, directory: $D/tls}
      config: {repository_side: $D/etc/repository.conf, database_side: $D/etc/database.conf}
      backup_user_paths: {lock: /run/pgbr-lab-anspat-bkp, log: $D/log-bkp}
      owner_paths: {lock: $D/lock-owner, log: $D/log-owner, spool: $D/spool}
    patroni:
      enabled: true
      config_file: $cfg
      version: "3.0.2"
      scripts_directory: $D/scripts
      service: pgbr-$cluster.service
      pg_hba_after:
        - "local all $owner peer"
        - "host all $owner 127.0.0.1/32 scram-sha-256"
        - "host replication replicator 127.0.0.1/32 scram-sha-256"
YAML
  register_cluster "$cluster"
  printf '%s\n' "/etc/systemd/system/pgbr-$cluster.service.d" /run/pgbr-lab-anspat-bkp >> "$LAB/tmp-paths"
  echo "$bkp" >> "$LAB/users"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  local tree="$D/out/$cluster" pb="$D/out/ansible" coll="$D/collections" host_tree="/var/lib/pgbr-policy-ansible/$cluster"
  echo "$host_tree" >> "$LAB/tmp-paths"
  step collection-build ansible-galaxy collection build "$pb/collections/ansible_collections/pgbr/policy" --output-path "$D/dist" || return
  step collection-install ansible-galaxy collection install "$D"/dist/pgbr-policy-*.tar.gz -p "$coll" || return
  rm -rf "$pb/collections"
  mkdir -p "$D/inventory/group_vars"
  printf 'all:\n  children:\n    %s:\n      hosts:\n        localhost:\n' "$group" > "$D/inventory/hosts.yml"
  cat > "$D/inventory/group_vars/$group.yml" <<YAML
ansible_connection: local
ansible_python_interpreter: /usr/bin/python3
ansible_pipelining: true
ansible_become_method: ansible.builtin.su
pgbr_policy_restart: true
pgbr_policy_start_tls_server: true
YAML
  local ap=(env ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_COLLECTIONS_PATH="$coll"
    ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook -i "$D/inventory")

  # --- before Patroni's first start: the role installs only the scripts ---
  ansible_run role-patroni-scripts "$D/scripts.out" ok "${ap[@]}" "$pb/playbook.yml" -e pgbr_policy_patroni_scripts_only=true || return
  expect scripts-installed "the hook or the post-bootstrap script is missing" \
    bash -c "[ -x '$D/scripts/patroni-hook.sh' ] && [ -x '$D/scripts/post-bootstrap.sh' ] && [ \"\$(stat -c %U '$D/scripts/patroni-hook.sh')\" = root ]"

  # --- a minimal patroni.yml + the fragment (this scenario's scope and etcd), then
  # etcd, then Patroni bootstraps the cluster ---
  patroni_base_config "$D/patroni/base.yml" node1 "$D/pg/data" "$port" "$rest"
  sed -i "s/^scope: lab-patroni$/scope: lab-ans-patroni/; s/127\.0\.0\.1:12379/127.0.0.1:$etcd_port/" "$D/patroni/base.yml"
  step merge-fragment patroni_merge "$D/patroni/base.yml" "$tree/patroni/patroni.yml" "$cfg" || return
  chown "$owner:" "$cfg"; chmod 0600 "$cfg"
  local start
  start=$(now)
  patroni_daemon "$D/patroni/etcd.pid" "$D/etcd.log" 0077 etcd --name lab --data-dir "$D/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
    --initial-cluster "lab=http://127.0.0.1:$((etcd_port + 1))" --initial-cluster-token pgbr-lab-ansible --initial-cluster-state new
  if wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$etcd_port"; then
    result ok etcd-start "$(elapsed "$start")"
  else
    result FAIL etcd-start "$(elapsed "$start")" "etcd does not listen on $etcd_port"; return
  fi
  register_pgdata "$bin" "$D/pg/data"
  start=$(now)
  patroni_daemon "$D/patroni/node1.pid" "$D/patroni1.log" 0027 patroni "$cfg"
  local q=(psql_as "$owner" "$D/sock" "$port")
  if wait_for 90 query_true "${q[@]}" postgres -c "SELECT NOT pg_is_in_recovery() AND EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')"; then
    result ok bootstrap "$(elapsed "$start")"
  else
    result FAIL bootstrap "$(elapsed "$start")" "no primary with the role within 90 s"; return
  fi
  local hba_before
  hba_before=$(sha256sum < "$D/pg/data/pg_hba.conf")

  # --- the role: apply.sh's Patroni mode, step by step ---
  ansible_run role-apply "$D/apply.out" ok "${ap[@]}" "$pb/playbook.yml" || return
  expect role-apply-changed "the role changed nothing" [ "$(ansible_recap_changed "$D/apply.out")" -gt 0 ]
  expect role-ran-patroni-scripts-step "the patroni-scripts step did not run" grep -q "Step patroni-scripts" "$D/apply.out"
  expect no-hba-edit "pg_hba.conf changed (Patroni's to write)" [ "$(sha256sum < "$D/pg/data/pg_hba.conf")" = "$hba_before" ]
  expect no-alter-system "postgresql.auto.conf holds archive settings" \
    bash -c "! grep -q '^archive' '$D/pg/data/postgresql.auto.conf'"
  expect archive-command-via-patroni "the dynamic configuration lacks archive_command" \
    bash -c "patronictl -c '$cfg' show-config | grep -qF -- 'archive-push %p'"
  step verify "$tree/shell/verify.sh" || return
  local b=(runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --stanza="$stanza" --log-level-console=warn)
  step check "${b[@]}" check
  step backup-full "${b[@]}" --type=full backup
  ansible_run verify-yml "$D/verify.out" ok "${ap[@]}" "$pb/verify.yml" -e pgbr_policy_verify_pgbackrest_check=false
  expect verify-yml-changed-0 "verify.yml: changed=$(ansible_recap_changed "$D/verify.out")" [ "$(ansible_recap_changed "$D/verify.out")" = 0 ]
  ansible_run role-again "$D/again.out" ok "${ap[@]}" "$pb/playbook.yml"
  expect again-changed-0 "second run: changed=$(ansible_recap_changed "$D/again.out")" [ "$(ansible_recap_changed "$D/again.out")" = 0 ]
  expect secrets-nowhere "a Patroni password appears in the artifacts or the outputs" \
    bash -c "! grep -rqF -f '$D/secrets' '$D/out' '$D'/*.out /var/lib/pgbr-policy/$cluster"

  # --- everything stopped by PID (PostgreSQL outlives a killed Patroni: pg_ctl too) ---
  start=$(now)
  stop_pidfile "$D/patroni/node1.pid"
  pg_stop "$owner" "$bin" "$D/pg/data"
  stop_pidfile "$D/patroni/etcd.pid"
  rm -rf "$host_tree"; rmdir /var/lib/pgbr-policy-ansible 2>/dev/null || true
  result ok stop "$(elapsed "$start")"
}
