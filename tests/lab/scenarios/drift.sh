#!/usr/bin/env bash
# shellcheck shell=bash
#
# drift.sh - `pgbr-policy check --deployed --db` on a real host and database: a clean
# deployment (shell/apply.sh) is in sync (exit 0); then one change at a time on the
# real host or database (a mode, a pg_hba line, a grant, a configuration line, a file
# PostgreSQL's umask did not cover) is reported with exit 1, and undone.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

# drift_reported NAME PATTERN: check exits 1 and prints a line matching PATTERN.
drift_reported() {
  local name=$1 pattern=$2 output code=0 start
  start=$(now)
  output=$("$PGBR" check "$DRIFT_POLICY" --deployed --db 2>&1) || code=$?
  printf -- '--- %s (exit %s)\n%s\n' "$name" "$code" "$output" >> "$LOG"
  if [ "$code" = 1 ] && grep -Eq -- "$pattern" <<<"$output"; then
    result ok "$name" "$(elapsed "$start")"
  else
    result FAIL "$name" "$(elapsed "$start")" "exit $code, no line matching /$pattern/"
  fi
}

scenario_drift() {
  local D="$LAB/$SCENARIO" bin owner=pgbrlabdo bkp=pgbrlabdb port=55485 cluster=lab-drift
  bin=$(pgbin_dir 15 2>>"$LOG") || { result FAIL binaries 0 "pgbin_dir 15 failed"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0750 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --allow-group-access --no-sync || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  DRIFT_POLICY="$D/policy.yaml"
  cat > "$DRIFT_POLICY" <<YAML
version: 1
clusters:
  - name: $cluster
    postgres: {major: 15, data_directory: $D/pg/data, owner: $owner, socket_directory: $D/sock, port: $port, bin_directory: $bin}
    backup_user: {name: $bkp, home: $D/home-bkp}
    role: {name: drift_role}
    pgbackrest:
      stanza: drift
      version: "2.45"
      repository: $D/repo
      tls: {port: 18685, directory: $D/tls}
      config: {repository_side: $D/etc/repository.conf, database_side: $D/etc/database.conf}
      backup_user_paths: {lock: /run/pgbr-lab-drift-bkp, log: $D/log-bkp}
      owner_paths: {lock: $D/lock-owner, log: $D/log-owner, spool: $D/spool}
YAML
  register_cluster "$cluster"
  echo "/run/pgbr-lab-drift-bkp" >> "$LAB/tmp-paths"
  echo "$bkp" >> "$LAB/users"
  step generate "$PGBR" generate "$DRIFT_POLICY" --out "$D/out" || return
  step apply "$D/out/$cluster/shell/apply.sh" --restart --start-tls-server || return
  step clean-host-in-sync "$PGBR" check "$DRIFT_POLICY" --deployed --db || return

  chmod 0770 "$D/repo"
  drift_reported mode-reported "$D/repo: mode: expected 0750, found 0770"
  chmod 0750 "$D/repo"

  cp -p "$D/pg/data/pg_hba.conf" "$D/hba.saved"
  sed -i 's/^local\tall\tdrift_role\treject$/local\tall\tdrift_role\ttrust/' "$D/pg/data/pg_hba.conf"
  drift_reported hba-line-reported "pg_hba.conf: managed block differs from the plan|pg_hba.conf rule 2: rule differs"
  cp -p "$D/hba.saved" "$D/pg/data/pg_hba.conf"

  "${q[@]}" postgres -c "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) TO drift_role" >> "$LOG" 2>&1
  drift_reported extra-grant-reported "EXECUTE beyond the plan: expected not granted, found pg_ls_dir\(text\)"
  "${q[@]}" postgres -c "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_backup_stop(boolean) FROM drift_role" >> "$LOG" 2>&1
  drift_reported missing-grant-reported "EXECUTE missing: expected pg_backup_stop\(boolean\)"
  "${q[@]}" postgres -c "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) FROM drift_role" \
    -c "GRANT EXECUTE ON FUNCTION pg_catalog.pg_backup_stop(boolean) TO drift_role" >> "$LOG" 2>&1

  cp -p "$D/etc/repository.conf" "$D/conf.saved"
  sed -i 's/^repo1-retention-full=2$/repo1-retention-full=30/' "$D/etc/repository.conf"
  drift_reported config-line-reported "repository.conf: content differs from the plan: .*repo1-retention-full=30"
  cp -p "$D/conf.saved" "$D/etc/repository.conf"

  ( umask 077; echo x > "$D/pg/data/pgbr-lab-stray" )
  drift_reported unreadable-file-reported "entries of the data directory lack group read: expected none, found 1"
  rm -f "$D/pg/data/pgbr-lab-stray"

  step host-in-sync-again "$PGBR" check "$DRIFT_POLICY" --deployed --db
  runuser -u "$owner" -- "$bin/pg_ctl" -D "$D/pg/data" -m fast -w stop >/dev/null 2>&1 || true
}
