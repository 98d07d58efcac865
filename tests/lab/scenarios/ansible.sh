#!/usr/bin/env bash
# shellcheck shell=bash
#
# ansible.sh - the generated Ansible collection, built with `ansible-galaxy collection
# build` and installed from its tarball (the raw tree's copy of the collection is then
# deleted, so only the installed one can run), applied with the real ansible-playbook to
# localhost (connection: local) on a fresh PostgreSQL 15 cluster without group access,
# with a policy that moves every path off its defaults onto parents that do not exist yet
# (two users' lock directories under one new parent, their log directories under
# another), an SSH key for the backup user and scram-sha-256. Connection and privileges
# come from an existing inventory (group_vars), never from the plays. Two scenarios:
# - `ansible`, become with sudo: ansible-playbook runs as an unprivileged controller
#   user whose sudoers rule lets it become root. --check on the untouched host reports
#   changes (the SSH key and the moved paths included) and changes nothing (a snapshot of
#   owners, modes and contents of everything the plan touches, new parents included, the
#   users, the server's roles and settings); playbook.yml makes shell/verify.sh pass,
#   leaves every new parent root 0755 (as apply.sh's install -d does), and pgbackrest
#   check + a full backup work as the backup user; verify.yml passes with changed=0;
#   apply.sh of the host's copy finds nothing to change; a second run reports changed=0;
#   one mode and one hba line changed by hand make verify.yml fail naming the path and
#   --check report exactly those two steps with the hba diff (both change nothing); a
#   real run repairs them; rollback.yml undoes it, checked like rollback.sh's own runs.
# - `ansible-su`, become with su (root's own controller): the user's own site.yml in an
#   existing inventory (the role from the installed collection, the generated cluster
#   variables and artifacts named, no generated file edited), the password from
#   ansible-playbook's environment: without pgbr-policy on the host (pgbr_policy_tool)
#   the password step fails naming it (no_log hides nothing of apply.sh's message); with
#   it the plan applies, the password reaches .pgpass and nothing else, verify.yml
#   passes, a second run reports changed=0.
# The role name holds `{{ }}`: the runs prove Ansible never evaluates it.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

# ansible_recap_changed LOGFILE: the changed= count of the PLAY RECAP line(s), summed.
ansible_recap_changed() {
  sed -n 's/^.* : ok=[0-9]* *changed=\([0-9]*\) .*$/\1/p' "$1" | awk '{ s += $1 } END { print s + 0 }'
}

# ansible_task_changed LOGFILE TASK: the task whose name starts with TASK reported changed.
ansible_task_changed() {
  awk -v task="TASK [pgbr.policy.pgbr_policy : $2" 'index($0, task) == 1 { inside = 1; next }
    inside && /^(ok|changed|fatal|skipping):/ { found = ($0 ~ /^changed:/); inside = 0 } END { exit !found }' "$1"
}

# ansible_run NAME OUTFILE EXPECT ARGS...: one ansible-playbook run as a step (EXPECT ok:
# it must succeed; fail: it must fail); ARGS start with the command that runs it (the
# controller user's or root's). Output in OUTFILE (and the log), the recap's changed
# count in the step's detail.
ansible_run() {
  local name=$1 out=$2 want=$3 start status; shift 3
  start=$(now)
  echo "--- $name: $*" >> "$LOG"
  if "$@" > "$out" 2>&1; then status=ok; else status=fail; fi
  cat "$out" >> "$LOG"
  if [ "$status" = "$want" ]; then
    result ok "$name" "$(elapsed "$start")" "changed=$(ansible_recap_changed "$out")"
  else
    result FAIL "$name" "$(elapsed "$start")" "expected the run to $want, it did not (changed=$(ansible_recap_changed "$out"))"
    return 1
  fi
}

# ansible_snapshot: what the role (through apply.sh) may change on this host, as text:
# owners and modes of every planned path and of the new parents, contents of the files
# root installs or keeps, users and groups, the server's roles, settings and
# hba/ident/auto.conf files, whether any data-directory entry has (or lacks) group read,
# scratch directories left in /run. Directories other processes write into (repository,
# logs, locks, spool) by their own owner and mode only. Uses scenario_ansible's variables.
ansible_snapshot() {
  local p
  stat -c '%n %U %G %a' "$D" "$D/pg" "$D/pg/data" "$D/sock"
  for p in "${parents[@]}" "$repo" "$lock_bkp" "$lock_owner" "$log_bkp" "$log_owner" "$spool"; do
    if [ -e "$p" ]; then stat -c '%n %U %G %a %F' "$p"; else echo "$p absent"; fi
  done
  [ ! -d "$repo" ] || find -P "$repo" -mindepth 1 -maxdepth 2 -printf '%p %u %g %m %y\n' | sort
  if [ -e /var/lib/pgbr-policy-ansible ]; then stat -c '%n %U %G %a %F' /var/lib/pgbr-policy-ansible; else echo "no tree root"; fi
  for p in "$D/etc" "$D/srv/pgbr/tls" "$home" "/var/lib/pgbr-policy/$cluster" "/var/lib/pgbr-policy-ansible/$cluster" \
           "/etc/systemd/system/pgbr-tls-$cluster.service" "/etc/tmpfiles.d/pgbr-$cluster.conf"; do
    [ -e "$p" ] || { echo "$p absent"; continue; }
    find -P "$p" -printf '%p %u %g %m %y\n' | sort
    # The server's own log (pg_ctl restart's) grows with every statement: not the plan's.
    find -P "$p" -type f ! -name postgres-restart.log -exec sha256sum {} + | sort
  done
  sha256sum "$D/pg/data/pg_hba.conf" "$D/pg/data/pg_ident.conf" "$D/pg/data/postgresql.auto.conf"
  echo "group-readable: $(find "$D/pg/data" -perm -g+r -print -quit | wc -l)"
  echo "lacking group read: $(find "$D/pg/data" ! -perm -g+r -print -quit | wc -l)"
  getent passwd "$bkp" || echo "no user $bkp"
  getent group "$bkp" "$owner" || true
  "${q[@]}" postgres -At -c "SELECT r.rolname, r.rolcanlogin, r.rolpassword IS NULL,
      ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid ORDER BY 1)
      FROM pg_authid r WHERE r.rolname !~ '^pg_' ORDER BY 1" \
    -c "SELECT name, setting FROM pg_settings WHERE name IN ('data_directory_mode', 'archive_mode', 'archive_command') ORDER BY 1" \
    -c "SELECT p.oid::regprocedure, p.proacl FROM pg_proc p WHERE p.proacl IS NOT NULL AND p.pronamespace = 'pg_catalog'::regnamespace ORDER BY 1"
}

nothing_printed() { [ -z "$("$@")" ]; }

# ansible_scratch_ours: scratch directories in /run that hold a copy of this cluster's
# tree (other runs on this machine may have scratch directories of their own meanwhile).
ansible_scratch_ours() {
  local d
  for d in /run/pgbr-policy-check.* /run/pgbr-policy-verify.*; do
    [ -d "$d" ] && cmp -s "$d/shell/lib.sh" "$tree/shell/lib.sh" && echo "$d"
  done
  return 0
}

# The checks rollback.sh's own lab runs make after it (role, hba block, data directory
# mode back), here after rollback.yml.
ansible_rolled_back() {
  expect "$1-role-gone" "role still exists" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c \"SELECT count(*) FROM pg_roles WHERE rolname = 'lab-ans {{ 7 * 6 }} bkp'\")\" = 0 ]"
  expect "$1-hba-block-gone" "marker still in pg_hba.conf" bash -c "! grep -q 'pgbr-policy $cluster' '$hba' '$D/pg/data/pg_ident.conf'"
  expect "$1-mode-back" "data_directory_mode not 0700" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SHOW data_directory_mode')\" = 0700 ]"
  # (SHOW archive_command says "(disabled)" while archive_mode is off: ask the files.)
  expect "$1-archive-back" "archive settings still in postgresql.auto.conf, or archive_mode still on" \
    bash -c "! grep -q '^archive' '$D/pg/data/postgresql.auto.conf' && [ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SHOW archive_mode')\" = off ]"
  expect "$1-configs-gone" "a pgBackRest configuration file is still there" \
    bash -c "[ ! -e '$D/etc/pgbr/repo/repository.conf' ] && [ ! -e '$D/etc/pgbr/db/database.conf' ]"
  expect "$1-repository-kept" "the repository was deleted" [ -d "$repo" ]
}

# ansible_lab_setup: the cluster, the policy (every path moved), the generated tree, the
# collection installed from its tarball, an inventory whose group_vars say how to become
# root ($inv: sudo or su). Sets the caller's variables (see scenario_ansible).
ansible_lab_setup() {
  local missing=() p
  command -v ansible-playbook >/dev/null || missing+=(ansible)
  command -v sudo >/dev/null || missing+=(sudo)
  if [ "${#missing[@]}" -gt 0 ]; then
    step install-ansible-sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || return
  fi
  [ -x "$bin/initdb" ] || { result FAIL binaries 0 "$bin/initdb missing (postgresql-15)"; return 1; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"
  echo "$run_parent" >> "$LAB/tmp-paths"

  # --- a fresh cluster, without group access ---
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --no-sync || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  step load-data "${q[@]}" postgres -c "CREATE TABLE secret AS SELECT 'do not read'::text AS s" \
    -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 10000) g" || return
  step log-every-statement "${q[@]}" postgres -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()"

  mkdir -p "$D/policy"
  cat > "$D/policy/policy.yaml" <<YAML
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
      home: $home
      ssh_key: true
    role:
      name: "$role"
      auth: scram-sha-256
      $password_source
    pgbackrest:
      stanza: $stanza
      version: "2.45"
      repository: $repo
      retention_full: 2
      tls: {port: $tls_port, directory: $D/srv/pgbr/tls}
      config: {repository_side: $D/etc/pgbr/repo/repository.conf, database_side: $D/etc/pgbr/db/database.conf}
      backup_user_paths: {lock: $lock_bkp, log: $log_bkp}
      owner_paths: {lock: $lock_owner, log: $log_owner, spool: $spool}
    ansible:
      host_group: $group
YAML
  register_cluster "$cluster"
  echo "$bkp" >> "$LAB/users"
  step generate "$PGBR" generate "$D/policy/policy.yaml" --out "$D/out" || return
  echo "$host_tree" >> "$LAB/tmp-paths"

  # --- the collection: built, installed from the tarball, the raw copy deleted ---
  step collection-build ansible-galaxy collection build "$D/out/ansible/collections/ansible_collections/pgbr/policy" --output-path "$D/dist" || return
  step collection-install ansible-galaxy collection install "$D"/dist/pgbr-policy-*.tar.gz -p "$coll" || return
  rm -rf "$D/out/ansible/collections"
  expect collection-installed "the installed collection has no role" [ -f "$coll/ansible_collections/pgbr/policy/roles/pgbr_policy/tasks/main.yml" ]
  chmod -R a+rX "$coll"

  # --- an existing inventory: the group's connection and privilege settings in group_vars ---
  mkdir -p "$D/inventory/group_vars"
  printf 'all:\n  children:\n    %s:\n      hosts:\n        localhost:\n' "$group" > "$D/inventory/hosts.yml"
  cat > "$D/inventory/group_vars/$group.yml" <<YAML
ansible_connection: local
ansible_python_interpreter: /usr/bin/python3
ansible_pipelining: true
ansible_become_method: ansible.builtin.$inv
pgbr_policy_restart: true
pgbr_policy_start_tls_server: true
pgbr_policy_tool: $PGBR
YAML
  chmod -R a+rX "$D/inventory"
}

scenario_ansible() {
  local D="$LAB/$SCENARIO" bin=/usr/lib/postgresql/15/bin inv=sudo
  local owner=pgbrlabano bkp=pgbrlabanb ctl=pgbrlabanc role='lab-ans {{ 7 * 6 }} bkp' stanza=labans cluster=lab-ansible
  local port=55490 tls_port=18690 group=pgbr_lab_ansible
  local q=(psql_as "$owner" "$D/sock" "$port")
  # Every path moved, onto parents that do not exist yet.
  local home="$D/homes/backup/$bkp" repo="$D/srv/pgbr/repo" run_parent=/run/pgbr-lab-ans
  local lock_bkp=/run/pgbr-lab-ans/bkp lock_owner=/run/pgbr-lab-ans/owner
  local log_bkp="$D/var/log/pgbr/bkp" log_owner="$D/var/log/pgbr/owner" spool="$D/var/spool/pgbr/owner"
  local parents=("$D/homes" "$D/homes/backup" "$D/srv" "$D/srv/pgbr" "$D/etc" "$D/etc/pgbr"
    "$D/var" "$D/var/log" "$D/var/log/pgbr" "$D/var/spool" "$D/var/spool/pgbr" "$run_parent")
  local password
  password="lab-$(openssl rand -hex 12)-pw"
  local password_source="password_file: $D/password"
  local coll="$D/collections" hba="$D/pg/data/pg_hba.conf" host_tree="/var/lib/pgbr-policy-ansible/$cluster"
  local tree="$D/out/$cluster" pb="$D/out/ansible" p
  install -d -m 0755 "$D"
  ( umask 077; printf '%s\n' "$password" > "$D/password" )
  ansible_lab_setup || return

  # The controller: an unprivileged user that becomes root with sudo. Its home holds
  # Ansible's temporary files on both sides (local connection).
  lab_user "$ctl" --home-dir "$D/ctl-home"
  install -d -o "$ctl" -g "$ctl" -m 0700 "$D/ctl-home"
  printf '%s ALL=(root) NOPASSWD: ALL\n' "$ctl" > /etc/sudoers.d/pgbr-lab-ans
  chmod 0440 /etc/sudoers.d/pgbr-lab-ans
  echo /etc/sudoers.d/pgbr-lab-ans >> "$LAB/tmp-paths"
  local as_ctl=(runuser -u "$ctl" -- env ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_COLLECTIONS_PATH="$coll"
    ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks HOME="$D/ctl-home" ansible-playbook -i "$D/inventory")
  expect controller-unprivileged "the controller user is root" [ "$(id -u "$ctl")" != 0 ]

  # --- check mode on the untouched host reports changes, and changes nothing ---
  ansible_snapshot > "$D/snap-fresh.before" 2>&1
  ansible_run playbook-check-fresh "$D/check-fresh.out" ok "${as_ctl[@]}" "$pb/playbook.yml" --check
  ansible_snapshot > "$D/snap-fresh.after" 2>&1
  expect check-fresh-changed-nothing "check mode changed the host: $(diff "$D/snap-fresh.before" "$D/snap-fresh.after" | head -5 | tr '\n' ' ')" \
    diff "$D/snap-fresh.before" "$D/snap-fresh.after"
  expect check-fresh-no-scratch-left "check mode left its scratch directory" nothing_printed ansible_scratch_ours
  expect check-fresh-reports-changes "check mode reported no change on an untouched host" \
    [ "$(ansible_recap_changed "$D/check-fresh.out")" -gt 0 ]
  expect check-fresh-ssh-key "check mode did not say it would make the SSH key" \
    grep -q "would make .*id_ed25519" "$D/check-fresh.out"
  expect check-fresh-new-parents "check mode did not say it would create the moved paths" grep -qF "would create $repo" "$D/check-fresh.out"

  # --- the real run, through sudo ---
  ansible_run playbook-sudo "$D/apply.out" ok "${as_ctl[@]}" "$pb/playbook.yml" || return
  expect tree-root-only "the host's copy of the tree is not root's alone, or apply.sh lost its mode" \
    bash -c "[ \"\$(stat -c '%U %a' /var/lib/pgbr-policy-ansible)\" = 'root 700' ] && [ \"\$(stat -c '%U %a' '$host_tree/shell/apply.sh')\" = 'root 755' ] && diff -r -x .pgbr-tree.sha256 '$tree' '$host_tree'"
  local bad=()
  for p in "${parents[@]}"; do
    [ "$(stat -c '%U %G %a' "$p" 2>/dev/null)" = "root root 755" ] || bad+=("$p=$(stat -c '%U:%G:%a' "$p" 2>/dev/null || echo absent)")
  done
  expect new-parents-root-0755 "parents not root 0755: ${bad[*]}" [ "${#bad[@]}" = 0 ]
  expect ssh-key-made "no SSH key of $bkp" bash -c "[ \"\$(stat -c '%U %a' '$home/.ssh/id_ed25519')\" = '$bkp 600' ]"
  step verify "$tree/shell/verify.sh" || return
  local b=(runuser -u "$bkp" -- pgbackrest --config="$D/etc/pgbr/repo/repository.conf" --stanza="$stanza" --log-level-console=warn)
  step check "${b[@]}" check
  step backup-full "${b[@]}" --type=full backup
  expect role-name-not-evaluated "a role named after Ansible's evaluation of {{ }} exists" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c \"SELECT count(*) FROM pg_roles WHERE rolname = 'lab-ans 42 bkp'\")\" = 0 ]"
  local hits
  hits=$(grep -rlF -- "$password" "$D/out" "$D"/*.out "$LOG" "$D/pg/data.log" "/var/lib/pgbr-policy/$cluster" "$host_tree" 2>/dev/null | wc -l)
  expect password-nowhere "the password was found in $hits file(s)" [ "$hits" = 0 ]
  expect pgpass-0600 ".pgpass is not 0600 $bkp" bash -c "[ \"\$(stat -c '%a %U' '$home/.pgpass')\" = '600 $bkp' ]"
  ansible_run verify-yml "$D/verify.out" ok "${as_ctl[@]}" "$pb/verify.yml"
  expect verify-yml-changed-0 "verify.yml: changed=$(ansible_recap_changed "$D/verify.out")" [ "$(ansible_recap_changed "$D/verify.out")" = 0 ]
  expect verify-yml-says-passed "verify.yml did not show verify.sh's summary" grep -q "verify: [0-9]* passed, 0 failed" "$D/verify.out"

  # --- converged: apply.sh (the host's copy) finds nothing to change, nor the role ---
  local dry
  dry=$(PGBR_POLICY="$PGBR" bash "$host_tree/shell/apply.sh" --dry-run 2>&1); printf '%s\n' "$dry" >> "$LOG"
  expect apply-sh-finds-no-change "apply.sh --dry-run after the playbook wants changes" \
    grep -q '^\[finish\] no change' <<<"$(tail -n 1 <<<"$dry")"
  ansible_run playbook-again "$D/again.out" ok "${as_ctl[@]}" "$pb/playbook.yml"
  expect again-changed-0 "second run: changed=$(ansible_recap_changed "$D/again.out")" \
    [ "$(ansible_recap_changed "$D/again.out")" = 0 ]

  # --- drift: one mode and one hba line changed by hand ---
  chmod 0755 "$repo"
  sed -i "s/^\(host\t.*\t\)reject$/\1trust/" "$hba"
  ansible_snapshot > "$D/snap-drift.before" 2>&1
  ansible_run verify-yml-drift "$D/verify-drift.out" fail "${as_ctl[@]}" "$pb/verify.yml" -e pgbr_policy_verify_pgbackrest_check=false
  expect verify-yml-names-drift "verify.yml's failure does not name the repository's mode" grep -q "FAIL .*$repo" "$D/verify-drift.out"
  local check_out="$D/check-drift.out"
  ansible_run playbook-check-drift "$check_out" ok "${as_ctl[@]}" "$pb/playbook.yml" --check
  ansible_snapshot > "$D/snap-drift.after" 2>&1
  expect drift-no-scratch-left "verify.yml or check mode left a scratch directory" nothing_printed ansible_scratch_ours
  expect drift-checks-changed-nothing "verify.yml or check mode changed something: $(diff "$D/snap-drift.before" "$D/snap-drift.after" | head -5 | tr '\n' ' ')" \
    diff "$D/snap-drift.before" "$D/snap-drift.after"
  expect check-reports-mode "the repository's mode is not reported by the paths step" \
    ansible_task_changed "$check_out" "Step paths "
  expect check-names-repo "the dry-run lines shown do not name the repository" grep -qF "$repo" "$check_out"
  expect check-reports-hba "the pg_hba.conf line is not reported by the pg_hba step" \
    ansible_task_changed "$check_out" "Step pg_hba "
  expect check-shows-hba-diff "check mode does not show the hba diff" grep -qF -- "--- $hba" "$check_out"
  expect check-drift-only-those "steps other than paths and pg_hba report changes" \
    [ "$(ansible_recap_changed "$check_out")" = 2 ]
  ansible_run playbook-repair "$D/repair.out" ok "${as_ctl[@]}" "$pb/playbook.yml"
  expect repair-changed "the repair run changed nothing" [ "$(ansible_recap_changed "$D/repair.out")" -gt 0 ]
  expect repair-repaired "the repository's mode or the hba line is still wrong" \
    bash -c "[ \"\$(stat -c %a '$repo')\" != 755 ] && grep -qP '^host\t.*\treject$' '$hba'"
  step verify-after-repair "$tree/shell/verify.sh" --no-pgbackrest-check

  # --- rollback.yml: what rollback.sh does, checked the same way ---
  ansible_run rollback-yml "$D/rollback.out" ok "${as_ctl[@]}" "$pb/rollback.yml"
  ansible_rolled_back rollback-yml
  pg_stop "$owner" "$bin" "$D/pg/data"
  rm -rf "$host_tree"; rmdir /var/lib/pgbr-policy-ansible 2>/dev/null || true
}

scenario_ansible_su() {
  local D="$LAB/$SCENARIO" bin=/usr/lib/postgresql/15/bin inv=su
  local owner=pgbrlabaso bkp=pgbrlabasb role='lab-ans-su {{ 7 * 6 }}' stanza=labanssu cluster=lab-ansible-su
  local port=55491 tls_port=18691 group=lab_databases
  local q=(psql_as "$owner" "$D/sock" "$port")
  local home="$D/homes/backup/$bkp" repo="$D/srv/pgbr/repo" run_parent=/run/pgbr-lab-ans-su
  local lock_bkp=/run/pgbr-lab-ans-su/bkp lock_owner=/run/pgbr-lab-ans-su/owner
  local log_bkp="$D/var/log/pgbr/bkp" log_owner="$D/var/log/pgbr/owner" spool="$D/var/spool/pgbr/owner"
  local password_source="password_env: PGBR_LAB_ANS_PW"
  local coll="$D/collections" host_tree="/var/lib/pgbr-policy-ansible/$cluster"
  local tree="$D/out/$cluster" pb="$D/out/ansible"
  ansible_lab_setup || return
  local as_root=(env ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_COLLECTIONS_PATH="$coll"
    ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook -i "$D/inventory")

  # --- the user's own site.yml: the installed role, the generated variables and
  # artifacts named where they are, no generated file edited ---
  mkdir -p "$D/site"
  cat > "$D/site/site.yml" <<YAML
- name: Least-privilege backups for the lab cluster
  hosts: $group
  become: true
  vars_files:
    - $pb/clusters/$cluster.yml
  roles:
    - role: pgbr.policy.pgbr_policy
      vars:
        pgbr_policy_artifacts: $tree
YAML
  local password_env
  password_env="lab-$(openssl rand -hex 12)-env"
  PGBR_LAB_ANS_PW=$password_env ansible_run site-no-tool "$D/no-tool.out" fail "${as_root[@]}" "$D/site/site.yml" \
    -e pgbr_policy_tool=/nonexistent/pgbr-policy
  expect no-tool-says-why "the failure does not name pgbr-policy" grep -q "pgbr-policy is needed on this host" "$D/no-tool.out"
  PGBR_LAB_ANS_PW=$password_env ansible_run site-su "$D/site.out" ok "${as_root[@]}" "$D/site/site.yml" || return
  expect password-step-changed "the password step did not change the password" ansible_task_changed "$D/site.out" "Step password "
  expect pgpass-from-env "the password from the environment is not in .pgpass" grep -qF -- "$password_env" "$home/.pgpass"
  step verify "$tree/shell/verify.sh" || return
  ansible_run verify-yml "$D/verify.out" ok "${as_root[@]}" "$pb/verify.yml" -e pgbr_policy_verify_pgbackrest_check=false
  PGBR_LAB_ANS_PW=$password_env ansible_run site-su-again "$D/again.out" ok "${as_root[@]}" "$D/site/site.yml"
  expect again-changed-0 "second run: changed=$(ansible_recap_changed "$D/again.out")" \
    [ "$(ansible_recap_changed "$D/again.out")" = 0 ]
  local hits
  hits=$(grep -rlF -- "$password_env" "$D/out" "$D"/*.out "$LOG" "$D/pg/data.log" "/var/lib/pgbr-policy/$cluster" "$host_tree" 2>/dev/null | wc -l)
  expect password-nowhere "the password from the environment was found in $hits file(s)" [ "$hits" = 0 ]
  pg_stop "$owner" "$bin" "$D/pg/data"
  rm -rf "$host_tree"; rmdir /var/lib/pgbr-policy-ansible 2>/dev/null || true
}
