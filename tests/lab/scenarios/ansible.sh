#!/usr/bin/env bash
# shellcheck shell=bash
#
# ansible.sh - the generated Ansible role applied with the real ansible-playbook, against
# localhost (connection: local), on a fresh PostgreSQL 15 cluster without group access.
# The role copies the cluster's generated directory to the host and runs its
# shell/apply.sh step by step, so what matters here is the orchestration: --check on the
# untouched host reports changes and changes nothing (a snapshot of owners, modes and
# contents of everything the plan touches, the users, the server's roles and settings);
# the playbook (restart and TLS server allowed) makes shell/verify.sh pass and pgbackrest
# check + a full backup work as the backup user; apply.sh of the host's copy then finds
# nothing to change; a second run reports changed=0, and so does --check; one mode and
# one hba line changed by hand are reported by --check (and nothing changes), then
# repaired by a real run; rollback.sh undoes it; then the role with scram-sha-256
# (log_statement=all), the password from a root-only file on the host, then from
# ansible-playbook's environment: it is found nowhere but in .pgpass.
# The role name holds `{{ }}`: the run proves Ansible never evaluates it.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

# ansible_recap_changed LOGFILE: the changed= count of the PLAY RECAP line(s), summed.
ansible_recap_changed() {
  sed -n 's/^.* : ok=[0-9]* *changed=\([0-9]*\) .*$/\1/p' "$1" | awk '{ s += $1 } END { print s + 0 }'
}

# ansible_task_changed LOGFILE TASK: the task whose name starts with TASK reported changed.
ansible_task_changed() {
  awk -v task="TASK [pgbr_policy : $2" 'index($0, task) == 1 { inside = 1; next }
    inside && /^(ok|changed|fatal|skipping):/ { found = ($0 ~ /^changed:/); inside = 0 } END { exit !found }' "$1"
}

# ansible_run NAME OUTFILE ARGS...: one ansible-playbook run as a step; its output is
# kept in OUTFILE (and the log), the recap's changed count in the step's detail.
ansible_run() {
  local name=$1 out=$2 start status; shift 2
  start=$(now)
  echo "--- $name: ansible-playbook $*" >> "$LOG"
  if ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook "$@" > "$out" 2>&1; then status=ok; else status=FAIL; fi
  cat "$out" >> "$LOG"
  result "$status" "$name" "$(elapsed "$start")" "changed=$(ansible_recap_changed "$out")"
  [ "$status" = ok ]
}

# ansible_snapshot: what the role (through apply.sh) may change on this host, as text:
# owners and modes of every planned path, contents of the files root installs or keeps,
# users and groups, the server's roles, settings and hba/ident/auto.conf files, whether
# any data-directory entry has (or lacks) group read, scratch directories left in /run.
# Directories other processes write into (repository, logs, locks, spool) by their own
# owner and mode only. Uses the variables of scenario_ansible.
ansible_snapshot() {
  local p
  stat -c '%n %U %G %a' "$D" "$D/pg" "$D/pg/data" "$D/sock"
  for p in "$D/repo" "$D/log-bkp" "$D/lock-owner" "$D/log-owner" "$D/spool" /run/pgbr-lab-ans-bkp; do
    if [ -e "$p" ]; then stat -c '%n %U %G %a %F' "$p"; else echo "$p absent"; fi
  done
  [ ! -d "$D/repo" ] || find -P "$D/repo" -mindepth 1 -maxdepth 2 -printf '%p %u %g %m %y\n' | sort
  if [ -e /var/lib/pgbr-policy-ansible ]; then stat -c '%n %U %G %a %F' /var/lib/pgbr-policy-ansible; else echo "no tree root"; fi
  for p in "$D/etc" "$D/tls" "$D/home-bkp" "/var/lib/pgbr-policy/$cluster" "/var/lib/pgbr-policy-ansible/$cluster" \
           "/etc/systemd/system/pgbr-tls-$cluster.service" "/etc/tmpfiles.d/pgbr-$cluster.conf"; do
    [ -e "$p" ] || { echo "$p absent"; continue; }
    find -P "$p" -printf '%p %u %g %m %y\n' | sort
    find -P "$p" -type f -exec sha256sum {} + | sort
  done
  sha256sum "$D/pg/data/pg_hba.conf" "$D/pg/data/pg_ident.conf" "$D/pg/data/postgresql.auto.conf"
  echo "group-readable: $(find "$D/pg/data" -perm -g+r -print -quit | wc -l)"
  echo "lacking group read: $(find "$D/pg/data" ! -perm -g+r -print -quit | wc -l)"
  getent passwd "$bkp" || echo "no user $bkp"
  getent group "$bkp" "$owner" || true
  ls -d /run/pgbr-policy-check.* 2>/dev/null || true
  "${q[@]}" postgres -At -c "SELECT r.rolname, r.rolcanlogin, r.rolpassword IS NULL,
      ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid ORDER BY 1)
      FROM pg_authid r WHERE r.rolname !~ '^pg_' ORDER BY 1" \
    -c "SELECT name, setting FROM pg_settings WHERE name IN ('data_directory_mode', 'archive_mode', 'archive_command') ORDER BY 1" \
    -c "SELECT p.oid::regprocedure, p.proacl FROM pg_proc p WHERE p.proacl IS NOT NULL AND p.pronamespace = 'pg_catalog'::regnamespace ORDER BY 1"
}

scenario_ansible() {
  local D="$LAB/$SCENARIO" bin=/usr/lib/postgresql/15/bin
  local owner=pgbrlabano bkp=pgbrlabanb role='lab-ans {{ 7 * 6 }} bkp' stanza=labans cluster=lab-ansible
  local port=55490 tls_port=18690
  if ! command -v ansible-playbook >/dev/null; then
    step install-ansible env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible || return
  fi
  [ -x "$bin/initdb" ] || { result FAIL binaries 0 "$bin/initdb missing (postgresql-15)"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"

  # --- a fresh cluster, without group access ---
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --no-sync || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  step load-data "${q[@]}" postgres -c "CREATE TABLE secret AS SELECT 'do not read'::text AS s" \
    -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 10000) g" || return

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
      name: "$role"
    pgbackrest:
      stanza: $stanza
      version: "2.45"
      repository: $D/repo
      retention_full: 2
      tls: {port: $tls_port, directory: $D/tls}
      config: {repository_side: $D/etc/repository.conf, database_side: $D/etc/database.conf}
      backup_user_paths: {lock: /run/pgbr-lab-ans-bkp, log: $D/log-bkp}
      owner_paths: {lock: $D/lock-owner, log: $D/log-owner, spool: $D/spool}
YAML
  register_cluster "$cluster"
  echo "/run/pgbr-lab-ans-bkp" >> "$LAB/tmp-paths"
  echo "$bkp" >> "$LAB/users"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  local tree="$D/out/$cluster"
  cat > "$D/inventory.yml" <<'YAML'
all:
  children:
    pgbr_lab_ansible:
      hosts:
        localhost:
          ansible_connection: local
YAML
  local pb=("$D/out/ansible/playbook.yml" -i "$D/inventory.yml" -e pgbr_policy_restart=true -e pgbr_policy_start_tls_server=true)
  local hba="$D/pg/data/pg_hba.conf" host_tree="/var/lib/pgbr-policy-ansible/$cluster"
  echo "$host_tree" >> "$LAB/tmp-paths"

  # --- check mode on the untouched host: it reports changes, and changes nothing ---
  ansible_snapshot > "$D/snap-fresh.before" 2>&1
  ansible_run playbook-check-fresh "$D/check-fresh.out" "${pb[@]}" --check
  ansible_snapshot > "$D/snap-fresh.after" 2>&1
  expect check-fresh-changed-nothing "check mode changed the host: $(diff "$D/snap-fresh.before" "$D/snap-fresh.after" | head -5 | tr '\n' ' ')" \
    diff "$D/snap-fresh.before" "$D/snap-fresh.after"
  expect check-fresh-reports-changes "check mode reported no change on an untouched host" \
    [ "$(ansible_recap_changed "$D/check-fresh.out")" -gt 0 ]
  expect check-fresh-says-what "check mode did not show apply.sh's dry-run lines" \
    grep -q "would" "$D/check-fresh.out"

  # --- the real run ---
  ansible_run playbook "$D/apply.out" "${pb[@]}" || return
  expect tree-root-only "the host's copy of the tree is not root's alone, or apply.sh lost its mode" \
    bash -c "[ \"\$(stat -c '%U %a' /var/lib/pgbr-policy-ansible)\" = 'root 700' ] && [ \"\$(stat -c '%U %a' '$host_tree/shell/apply.sh')\" = 'root 755' ] && diff -r '$tree' '$host_tree'"
  step verify "$tree/shell/verify.sh" || return
  local b=(runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --stanza="$stanza" --log-level-console=warn)
  step check "${b[@]}" check
  step backup-full "${b[@]}" --type=full backup
  expect role-name-not-evaluated "a role named after Ansible's evaluation of {{ }} exists" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c \"SELECT count(*) FROM pg_roles WHERE rolname = 'lab-ans 42 bkp'\")\" = 0 ]"

  # --- converged: apply.sh (the host's copy) finds nothing to change, nor the role, nor --check ---
  local dry
  dry=$(PGBR_POLICY="$PGBR" bash "$host_tree/shell/apply.sh" --dry-run 2>&1); printf '%s\n' "$dry" >> "$LOG"
  expect apply-sh-finds-no-change "apply.sh --dry-run after the playbook wants changes" \
    grep -q '^\[finish\] no change' <<<"$(tail -n 1 <<<"$dry")"
  ansible_run playbook-again "$D/again.out" "${pb[@]}"
  expect again-changed-0 "second run: changed=$(ansible_recap_changed "$D/again.out")" \
    [ "$(ansible_recap_changed "$D/again.out")" = 0 ]
  ansible_run playbook-check-converged "$D/check-converged.out" "${pb[@]}" --check
  expect check-converged-changed-0 "check mode on the converged host: changed=$(ansible_recap_changed "$D/check-converged.out")" \
    [ "$(ansible_recap_changed "$D/check-converged.out")" = 0 ]

  # --- drift: one mode and one hba line changed by hand ---
  chmod 0755 "$D/repo"
  sed -i "s/^\(host\t.*\t\)reject$/\1trust/" "$hba"
  ansible_snapshot > "$D/snap-drift.before" 2>&1
  local check_out="$D/check-drift.out"
  ansible_run playbook-check-drift "$check_out" "${pb[@]}" --check
  ansible_snapshot > "$D/snap-drift.after" 2>&1
  expect check-drift-changed-nothing "check mode repaired something: $(diff "$D/snap-drift.before" "$D/snap-drift.after" | head -5 | tr '\n' ' ')" \
    diff "$D/snap-drift.before" "$D/snap-drift.after"
  expect check-reports-mode "the repository's mode is not reported by the paths step" \
    ansible_task_changed "$check_out" "Step paths "
  expect check-names-repo "the dry-run lines shown do not name the repository" grep -qF "$D/repo" "$check_out"
  expect check-reports-hba "the pg_hba.conf line is not reported by the pg_hba step" \
    ansible_task_changed "$check_out" "Step pg_hba "
  expect check-drift-only-those "steps other than paths and pg_hba report changes" \
    [ "$(ansible_recap_changed "$check_out")" = 2 ]
  ansible_run playbook-repair "$D/repair.out" "${pb[@]}"
  expect repair-changed "the repair run changed nothing" [ "$(ansible_recap_changed "$D/repair.out")" -gt 0 ]
  expect repair-repaired "the repository's mode or the hba line is still wrong" \
    bash -c "[ \"\$(stat -c %a '$D/repo')\" != 755 ] && grep -qP '^host\t.*\treject$' '$hba'"
  step verify-after-repair "$tree/shell/verify.sh" --no-pgbackrest-check
  ansible_run playbook-after-repair "$D/after.out" "${pb[@]}"
  expect after-repair-changed-0 "run after the repair: changed=$(ansible_recap_changed "$D/after.out")" \
    [ "$(ansible_recap_changed "$D/after.out")" = 0 ]

  # --- the shell rollback undoes what the role did (same state directory) ---
  step rollback "$host_tree/shell/rollback.sh" --restart
  expect rollback-role-gone "role still exists" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c \"SELECT count(*) FROM pg_roles WHERE rolname = 'lab-ans {{ 7 * 6 }} bkp'\")\" = 0 ]"
  expect rollback-hba-block-gone "marker still in pg_hba.conf" bash -c "! grep -q 'pgbr-policy $cluster' '$hba' '$D/pg/data/pg_ident.conf'"
  expect rollback-mode-back "data_directory_mode not 0700" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SHOW data_directory_mode')\" = 0700 ]"

  # --- scram-sha-256 on the same cluster: the password, read from a root-only file at
  # apply time, reaches neither the artifacts, nor Ansible's output, nor the server log ---
  local password
  password="lab-$(openssl rand -hex 12)-pw"
  ( umask 077; printf '%s\n' "$password" > "$D/password" )
  step log-every-statement "${q[@]}" postgres -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()"
  sed -e "s|^      name: \"lab-ans|      auth: scram-sha-256\n      password_file: $D/password\n&|" "$D/policy.yaml" > "$D/policy-scram.yaml"
  step generate-scram "$PGBR" generate "$D/policy-scram.yaml" --out "$D/out-scram" || return
  local spb=("$D/out-scram/ansible/playbook.yml" -i "$D/inventory.yml" -e pgbr_policy_restart=true
    -e pgbr_policy_start_tls_server=true -e "pgbr_policy_tool=$PGBR")
  # The copy of the scram tree replaces the copy of the first tree on the host.
  expect scram-tree-differs "the scram tree is the same as the first" bash -c "! diff -rq '$tree' '$D/out-scram/$cluster' >/dev/null"
  ansible_run playbook-scram "$D/scram.out" "${spb[@]}" || return
  step verify-scram "$D/out-scram/$cluster/shell/verify.sh"
  ansible_run playbook-scram-again "$D/scram-again.out" "${spb[@]}"
  expect scram-again-changed-0 "second scram run: changed=$(ansible_recap_changed "$D/scram-again.out")" \
    [ "$(ansible_recap_changed "$D/scram-again.out")" = 0 ]
  local hits
  hits=$(grep -rlF -- "$password" "$D/out-scram" "$D"/*.out "$LOG" "$D/pg/data.log" "/var/lib/pgbr-policy/$cluster" "$host_tree" 2>/dev/null | wc -l)
  expect password-nowhere "the password was found in $hits file(s)" [ "$hits" = 0 ]
  expect pgpass-0600 ".pgpass is not 0600 $bkp" bash -c "[ \"\$(stat -c '%a %U' '$D/home-bkp/.pgpass')\" = '600 $bkp' ]"
  expect scram-tree-copied "the host's copy is not the scram tree" diff -r "$D/out-scram/$cluster" "$host_tree"

  # --- scram-sha-256 from ansible-playbook's environment: the role hands it to the
  # password step on stdin (no_log); it reaches .pgpass and nothing else ---
  local password_env
  password_env="lab-$(openssl rand -hex 12)-env"
  sed -e "s|^      name: \"lab-ans|      auth: scram-sha-256\n      password_env: PGBR_LAB_ANS_PW\n&|" "$D/policy.yaml" > "$D/policy-env.yaml"
  step generate-env "$PGBR" generate "$D/policy-env.yaml" --out "$D/out-env" || return
  local epb=("$D/out-env/ansible/playbook.yml" -i "$D/inventory.yml" -e pgbr_policy_restart=true
    -e pgbr_policy_start_tls_server=true -e "pgbr_policy_tool=$PGBR")
  PGBR_LAB_ANS_PW=$password_env ansible_run playbook-env "$D/env.out" "${epb[@]}" || return
  expect env-password-step-changed "the password step did not change the password" ansible_task_changed "$D/env.out" "Step password "
  expect env-pgpass "the password from the environment is not in .pgpass" grep -qF -- "$password_env" "$D/home-bkp/.pgpass"
  step verify-env "$D/out-env/$cluster/shell/verify.sh" --no-pgbackrest-check
  hits=$(grep -rlF -- "$password_env" "$D/out-env" "$D"/*.out "$LOG" "$D/pg/data.log" "/var/lib/pgbr-policy/$cluster" "$host_tree" 2>/dev/null | wc -l)
  expect env-password-nowhere "the password from the environment was found in $hits file(s)" [ "$hits" = 0 ]
  pg_stop "$owner" "$bin" "$D/pg/data"
  rm -rf "$host_tree"; rmdir /var/lib/pgbr-policy-ansible 2>/dev/null || true
}
