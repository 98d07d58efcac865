#!/usr/bin/env bash
# shellcheck shell=bash
#
# ansible.sh - the generated Ansible role applied with the real ansible-playbook, against
# localhost (connection: local), on a fresh PostgreSQL 15 cluster without group access:
# --check on the untouched host changes nothing; the playbook (restart and TLS server
# allowed) makes shell/verify.sh pass and pgbackrest check + a full backup work as the
# backup user; shell/apply.sh then finds nothing to change (both paths converge); a
# second run reports changed=0; one mode and one hba line changed by hand are reported by
# --check --diff and left alone, then repaired by a real run; rollback.sh undoes it all;
# after shell/apply.sh the role finds nothing to change; then the role again with
# scram-sha-256 (log_statement=all), and the password is found nowhere.
# The role name holds `{{ }}`: the run proves Ansible never evaluates it.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

# ansible_recap_changed LOGFILE: the changed= count of the PLAY RECAP line(s), summed.
ansible_recap_changed() {
  sed -n 's/^.* : ok=[0-9]* *changed=\([0-9]*\) .*$/\1/p' "$1" | awk '{ s += $1 } END { print s + 0 }'
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

scenario_ansible() {
  local D="$LAB/$SCENARIO" bin=/usr/lib/postgresql/15/bin
  local owner=pgbrlabano bkp=pgbrlabanb role='lab-ans {{ 7 * 6 }} bkp' stanza=labans cluster=lab-ansible
  local port=55490 tls_port=18690
  if ! command -v ansible-playbook >/dev/null || ! /usr/bin/python3 -c 'import psycopg2' 2>/dev/null; then
    step install-ansible env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible python3-psycopg2 || return
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
  local hba="$D/pg/data/pg_hba.conf" hba_sum

  # --- check mode on the untouched host: it runs, and changes nothing ---
  hba_sum=$(sha256sum "$hba")
  ansible_run playbook-check-fresh "$D/check-fresh.out" "${pb[@]}" --check --diff
  expect check-fresh-changed-nothing "check mode created the user, changed pg_hba.conf or the data directory mode" \
    bash -c "! getent passwd $bkp && [ \"\$(sha256sum '$hba')\" = '$hba_sum' ] && [ \"\$(stat -c %a '$D/pg/data')\" = 700 ]"
  expect check-fresh-reports-changes "check mode reported no change on an untouched host" \
    [ "$(ansible_recap_changed "$D/check-fresh.out")" -gt 0 ]

  # --- the real run ---
  ansible_run playbook "$D/apply.out" "${pb[@]}" || return
  step verify "$tree/shell/verify.sh" || return
  local b=(runuser -u "$bkp" -- pgbackrest --config="$D/etc/repository.conf" --stanza="$stanza" --log-level-console=warn)
  step check "${b[@]}" check
  step backup-full "${b[@]}" --type=full backup
  expect role-name-not-evaluated "a role named after Ansible's evaluation of {{ }} exists" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c \"SELECT count(*) FROM pg_roles WHERE rolname = 'lab-ans 42 bkp'\")\" = 0 ]"

  # --- both paths converge: apply.sh finds nothing to change, and the role neither ---
  local dry
  dry=$(PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --dry-run 2>&1); printf '%s\n' "$dry" >> "$LOG"
  expect apply-sh-finds-no-change "apply.sh --dry-run after the playbook wants changes" \
    grep -q "no change: the host already matches the plan" <<<"$dry"
  ansible_run playbook-again "$D/again.out" "${pb[@]}"
  expect again-changed-0 "second run: changed=$(ansible_recap_changed "$D/again.out")" \
    [ "$(ansible_recap_changed "$D/again.out")" = 0 ]

  # --- drift: one mode and one hba line changed by hand ---
  chmod 0755 "$D/repo"
  sed -i "s/^\(host\t.*\t\)reject$/\1trust/" "$hba"
  hba_sum=$(sha256sum "$hba")
  local check_out="$D/check-drift.out"
  ansible_run playbook-check-drift "$check_out" "${pb[@]}" --check --diff
  expect check-reports-mode "the repository's mode change is not reported" \
    grep -Eq "changed: .*$D/repo " "$check_out"
  expect check-diffs-hba "the pg_hba.conf line is not in the diff" \
    grep -Eq "^\+host.*reject" "$check_out"
  expect check-changed-nothing "check mode repaired something" \
    bash -c "[ \"\$(stat -c %a '$D/repo')\" = 755 ] && [ \"\$(sha256sum '$hba')\" = '$hba_sum' ]"
  ansible_run playbook-repair "$D/repair.out" "${pb[@]}"
  expect repair-changed "the repair run changed nothing" [ "$(ansible_recap_changed "$D/repair.out")" -gt 0 ]
  step verify-after-repair "$tree/shell/verify.sh" --no-pgbackrest-check
  ansible_run playbook-after-repair "$D/after.out" "${pb[@]}"
  expect after-repair-changed-0 "run after the repair: changed=$(ansible_recap_changed "$D/after.out")" \
    [ "$(ansible_recap_changed "$D/after.out")" = 0 ]

  # --- the shell rollback undoes what the role did (same state directory) ---
  step rollback "$tree/shell/rollback.sh" --restart
  expect rollback-role-gone "role still exists" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c \"SELECT count(*) FROM pg_roles WHERE rolname = 'lab-ans {{ 7 * 6 }} bkp'\")\" = 0 ]"
  expect rollback-hba-block-gone "marker still in pg_hba.conf" bash -c "! grep -q 'pgbr-policy $cluster' '$hba' '$D/pg/data/pg_ident.conf'"
  expect rollback-mode-back "data_directory_mode not 0700" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SHOW data_directory_mode')\" = 0700 ]"

  # --- the other direction: after shell/apply.sh, the role finds nothing to change ---
  step apply-sh env PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --restart --start-tls-server || return
  ansible_run playbook-after-apply-sh "$D/after-apply-sh.out" "${pb[@]}"
  expect after-apply-sh-changed-0 "the role after apply.sh: changed=$(ansible_recap_changed "$D/after-apply-sh.out")" \
    [ "$(ansible_recap_changed "$D/after-apply-sh.out")" = 0 ]
  step rollback-again "$tree/shell/rollback.sh" --restart || return

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
  ansible_run playbook-scram "$D/scram.out" "${spb[@]}" || return
  step verify-scram "$D/out-scram/$cluster/shell/verify.sh"
  ansible_run playbook-scram-again "$D/scram-again.out" "${spb[@]}"
  expect scram-again-changed-0 "second scram run: changed=$(ansible_recap_changed "$D/scram-again.out")" \
    [ "$(ansible_recap_changed "$D/scram-again.out")" = 0 ]
  local hits
  hits=$(grep -rlF -- "$password" "$D/out-scram" "$D"/*.out "$LOG" "$D/pg/data.log" "/var/lib/pgbr-policy/$cluster" 2>/dev/null | wc -l)
  expect password-nowhere "the password was found in $hits file(s)" [ "$hits" = 0 ]
  expect pgpass-0600 ".pgpass is not 0600 $bkp" bash -c "[ \"\$(stat -c '%a %U' '$D/home-bkp/.pgpass')\" = '600 $bkp' ]"
  pg_stop "$owner" "$bin" "$D/pg/data"
}
