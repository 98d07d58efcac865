#!/usr/bin/env bash
# shellcheck shell=bash
#
# sqlonly.sh - PostgreSQL majors no installed pgBackRest supports (16-18 with Debian's
# 2.45): the database side alone. sql/apply.sql twice, the hba/ident snippets spliced
# and validated, sql/archive.sql, restart, sql/verify.sql passes; then, as the role in
# one session, the calls pgBackRest makes succeed, and the database "must not"s hold;
# `validate` names the pgBackRest version the major needs.
# Needs: SCENARIO LAB RESULTS LOG MAJOR PGBR ROOT (set by tests/lab/run).

# Puts a snippet at the top of a live file, as apply.sh does.
splice_snippet() {  # snippet live-file
  local tmp; tmp=$(mktemp)
  cat "$1" "$2" > "$tmp" && cat "$tmp" > "$2"
  rm -f "$tmp"
}

scenario_sqlonly() {
  local n=$MAJOR
  local D="$LAB/$SCENARIO" bin
  local owner="pgbrlab${n}o" bkp="pgbrlab${n}b" role="lab_sql_${n}" cluster="lab-pg${n}"
  local port=$((55400 + n))
  bin=$(pgbin_dir "$n" 2>>"$LOG") || { result FAIL binaries 0 "pgbin_dir $n failed"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  lab_user "$bkp"
  install -d -o "$owner" -g "$owner" -m 0750 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --allow-group-access --no-sync || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  step load-data "${q[@]}" postgres -c "CREATE DATABASE app" -c "CREATE TABLE secret AS SELECT 'do not read'::text AS s" || return

  cat > "$D/policy.yaml" <<YAML
version: 1
clusters:
  - name: $cluster
    postgres: {major: $n, data_directory: $D/pg/data, owner: $owner, socket_directory: $D/sock, port: $port, bin_directory: $bin}
    backup_user: {name: $bkp}
    role: {name: $role}
    pgbackrest: {stanza: lab$n, version: "2.45", repository: $D/repo}
YAML
  local needed
  case "$n" in 16) needed=2.46 ;; 17) needed=2.53.1 ;; *) needed=2.55 ;; esac
  local warning
  warning=$("$PGBR" validate "$D/policy.yaml" 2>&1); printf '%s\n' "$warning" >> "$LOG"
  expect validate-warns-pgbackrest-version "no warning naming pgBackRest $needed" grep -q "needs pgBackRest $needed or later" <<<"$warning"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  local tree="$D/out/$cluster"
  step apply-sql "${q[@]}" postgres --single-transaction -f "$tree/sql/apply.sql" || return
  step apply-sql-again "${q[@]}" postgres --single-transaction -f "$tree/sql/apply.sql" || return
  splice_snippet "$tree/hba/pg_hba.conf.snippet" "$D/pg/data/pg_hba.conf"
  splice_snippet "$tree/hba/pg_ident.conf.snippet" "$D/pg/data/pg_ident.conf"
  expect hba-valid "pg_hba_file_rules reports errors" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL')\" = 0 ]"
  expect ident-valid "pg_ident_file_mappings reports errors" \
    bash -c "[ \"\$(runuser -u $owner -- psql -X -At -h $D/sock -p $port -d postgres -c 'SELECT count(*) FROM pg_ident_file_mappings WHERE error IS NOT NULL')\" = 0 ]"
  step reload "${q[@]}" postgres -c "SELECT pg_reload_conf()"
  step archive-sql "${q[@]}" postgres -f "$tree/sql/archive.sql"
  pg_stop "$owner" "$bin" "$D/pg/data"
  step restart pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  step verify-sql "${q[@]}" postgres -f "$tree/sql/verify.sql"

  local r=(runuser -u "$bkp" -- psql -X -At -v ON_ERROR_STOP=1 -h "$D/sock" -p "$port" -U "$role")
  step role-backup-calls "${r[@]}" -d postgres \
    -c "SELECT pg_backup_start('pgbr-lab', true)" -c "SELECT pg_switch_wal()" \
    -c "SELECT pg_create_restore_point('pgbr-lab')" -c "SELECT lsn FROM pg_backup_stop(false)"
  step role-reads-data-directory-setting "${r[@]}" -d postgres -c "SELECT setting FROM pg_settings WHERE name = 'data_directory'"
  denied no-select-table 'permission denied for table secret' "${r[@]}" -d postgres -c "SELECT * FROM secret"
  denied no-other-database 'pg_hba.conf rejects connection' "${r[@]}" -d app -c "SELECT 1"
  denied no-tcp 'pg_hba.conf rejects connection|no pg_hba.conf entry|Connection refused|could not connect' \
    runuser -u "$bkp" -- psql -X -h 127.0.0.1 -p "$port" -U "$role" -d postgres -c "SELECT 1"
  denied no-create-in-public 'permission denied for schema public' "${r[@]}" -d postgres -c "CREATE TABLE public.x (i int)"
  denied no-pg-read-file 'permission denied for function pg_read_file' "${r[@]}" -d postgres -c "SELECT pg_read_file('PG_VERSION')"
  denied no-checkpoint 'permission denied|must be superuser|pg_checkpoint' "${r[@]}" -d postgres -c "CHECKPOINT"
  # archive_command fails on this major (pgBackRest 2.45): stop at once, not fast.
  runuser -u "$owner" -- "$bin/pg_ctl" -D "$D/pg/data" -m immediate stop >/dev/null 2>&1 || true
}
