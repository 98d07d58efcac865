#!/usr/bin/env bash
# shellcheck shell=bash
#
# safety.sh - apply.sh fails safe, on a PostgreSQL 15 cluster with real OS users:
#   (a) an invalid line already in pg_hba.conf (or pg_ident.conf): apply.sh stops before
#       touching either file; both are byte for byte what they were (sha256); the owner
#       still connects;
#   (b) a failure in the middle of the pg_hba step, after the new block was written:
#       validation forced to report an error (a PATH shim for runuser answers the
#       pg_hba_file_rules query), and a write that fails between the two files (a PATH
#       shim for mv); apply.sh stops, both files are back byte for byte, the owner still
#       connects, and the next run converges;
#   (c) apply.sh killed with SIGKILL right after each of its steps in turn (stopped by a
#       DEBUG trap at the first command after `STEP=<next>`), each time on a host just
#       rolled back: the next run converges and shell/verify.sh passes; and once inside
#       the pg_hba step, between writing pg_hba.conf and pg_ident.conf;
#   (d) a stale TLS-server pid file whose pid now belongs to the postmaster: apply.sh
#       starts its own server and rollback.sh kills nothing (they once sent it SIGTERM).
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

# The steps of apply.sh, in order, as its main() runs them (STEP=<name>).
SAFETY_STEPS=(preflight os-user ssh-key paths data-directory configs tls sql password pg_hba tls-server stanza archive finish)

safety_sha() { sha256sum "$1" | cut -d' ' -f1; }

# Runs apply.sh in its own process group and SIGKILLs the whole group right after the
# step before $1 ended: a DEBUG trap (installed through BASH_ENV, with functrace so it
# runs inside the step functions) stops the script with SIGSTOP at the first command
# after `STEP=$1`, before the step does anything, and writes a marker; then SIGKILL.
# With PGBR_LAB_KILL_CMD set (a pattern), it stops at the first command matching it.
# Prints "killed", or "finished"/"timeout" when the step was never reached.
safety_apply_killed_at() {  # next-step tree hook-file marker-file
  local next=$1 tree=$2 hook=$3 mark=$4 pid i
  cat > "$hook" <<'HOOK'
set -o functrace
trap 'if [ "${STEP:-}" = "$PGBR_LAB_KILL_AT" ] || { [ -n "${PGBR_LAB_KILL_CMD:-}" ] && [[ $BASH_COMMAND == $PGBR_LAB_KILL_CMD ]]; }; then : > "$PGBR_LAB_KILL_MARK"; kill -STOP $$; fi' DEBUG
HOOK
  rm -f "$mark"
  setsid env PGBR_POLICY="$PGBR" BASH_ENV="$hook" PGBR_LAB_KILL_AT="$next" PGBR_LAB_KILL_MARK="$mark" \
    PGBR_LAB_KILL_CMD="${PGBR_LAB_KILL_CMD:-}" \
    "$tree/shell/apply.sh" --start-tls-server >>"$LOG" 2>&1 </dev/null &
  pid=$!
  for ((i = 0; i < 3000; i++)); do
    if [ -e "$mark" ]; then
      kill -KILL -- "-$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo killed
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      echo finished
      return 0
    fi
    sleep 0.02
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  echo timeout
}

# Stops the TLS server apply.sh started, by the pid in its pid file, only if that pid
# is still that server (its command line names this scenario's configuration).
safety_stop_tls_server() {  # pid-file repository-config
  local pid i
  pid=$(cat "$1" 2>/dev/null) || return 0
  if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--config=$2 server"; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}

scenario_safety() {
  local D="$LAB/$SCENARIO" bin
  local owner=pgbrlabso bkp=pgbrlabsb cluster=lab-safety port=55495 tls_port=18695
  local role="lab safety's role" stanza=labsafety
  bin=$(pgbin_dir 15 2>>"$LOG") || { result FAIL binaries 0 "pgbin_dir 15 failed"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  install -d -o "$owner" -g "$owner" -m 0700 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"

  # --- a cluster with group access and archiving on from the start, so that no step
  # --- needs a restart and the rollback/apply cycles below stay quick ---
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --no-sync --allow-group-access || return
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" "-c archive_mode=on" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  step owner-connects "${q[@]}" postgres -c "SELECT 1" || return

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
      tls: {port: $tls_port, directory: $D/tls}
      config: {repository_side: $D/etc/repository.conf, database_side: $D/etc/database.conf}
      backup_user_paths: {lock: /run/pgbr-lab-safety-bkp, log: $D/log-bkp}
      owner_paths: {lock: $D/lock-owner, log: $D/log-owner, spool: $D/spool}
YAML
  register_cluster "$cluster"
  echo "/run/pgbr-lab-safety-bkp" >> "$LAB/tmp-paths"
  echo "$bkp" >> "$LAB/users"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  local tree="$D/out/$cluster"
  local hba="$D/pg/data/pg_hba.conf" ident="$D/pg/data/pg_ident.conf"
  cp -p "$hba" "$D/pg_hba.conf.pristine"
  cp -p "$ident" "$D/pg_ident.conf.pristine"
  local apply=(env PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --start-tls-server)
  local hba_sum ident_sum

  # --- (a) an invalid line already present: apply.sh stops, nothing touched ---
  printf 'local all all no-such-method\n' >> "$hba"
  hba_sum=$(safety_sha "$hba"); ident_sum=$(safety_sha "$ident")
  denied a-invalid-hba-line-stops-apply 'already have errors; fix them first, nothing was changed' "${apply[@]}"
  expect a-hba-unchanged "pg_hba.conf changed" [ "$(safety_sha "$hba")" = "$hba_sum" ]
  expect a-ident-unchanged "pg_ident.conf changed" [ "$(safety_sha "$ident")" = "$ident_sum" ]
  expect a-owner-connects "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"
  cp -p "$D/pg_hba.conf.pristine" "$hba"

  printf 'pgbr_lab_broken\tsomeone\n' >> "$ident"   # two fields: an invalid mapping
  hba_sum=$(safety_sha "$hba"); ident_sum=$(safety_sha "$ident")
  denied a-invalid-ident-line-stops-apply 'already have errors; fix them first, nothing was changed' "${apply[@]}"
  expect a-hba-unchanged-2 "pg_hba.conf changed" [ "$(safety_sha "$hba")" = "$hba_sum" ]
  expect a-ident-unchanged-2 "pg_ident.conf changed" [ "$(safety_sha "$ident")" = "$ident_sum" ]
  expect a-owner-connects-2 "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"
  cp -p "$D/pg_ident.conf.pristine" "$ident"

  # --- (b) a failure after the new block was written (from the files initdb wrote) ---
  expect b-starts-pristine "pg_hba.conf/pg_ident.conf are not what initdb wrote" \
    bash -c "cmp -s '$hba' '$D/pg_hba.conf.pristine' && cmp -s '$ident' '$D/pg_ident.conf.pristine'"
  local shim="$D/shim"
  install -d -m 0755 "$shim/validate" "$shim/mv"
  # Validation forced to fail: the pg_hba_file_rules query, once the block is in the
  # file on disk, answers with an error line (what a server would print).
  cat > "$shim/validate/runuser" <<SHIM
#!/bin/bash
case "\$*" in
  *"pg_hba_file_rules WHERE error IS NOT NULL"*)
    if grep -q 'BEGIN pgbr-policy $cluster' '$hba'; then echo "1: forced by the lab (an option the server rejects)"; exit 0; fi ;;
esac
exec /usr/sbin/runuser "\$@"
SHIM
  # A write that fails between the two files: pg_hba.conf is replaced, pg_ident.conf not.
  cat > "$shim/mv/mv" <<SHIM
#!/bin/bash
case "\${*: -1}" in '$ident') echo "mv: cannot move: No space left on device (forced by the lab)" >&2; exit 1 ;; esac
exec /bin/mv "\$@"
SHIM
  chmod 0755 "$shim/validate/runuser" "$shim/mv/mv"

  hba_sum=$(safety_sha "$hba"); ident_sum=$(safety_sha "$ident")
  denied b-forced-validation-failure-stops-apply 'do not validate; both were restored byte for byte' \
    env PATH="$shim/validate:$PATH" "${apply[@]}"
  expect b-hba-restored "pg_hba.conf differs from before" [ "$(safety_sha "$hba")" = "$hba_sum" ]
  expect b-ident-restored "pg_ident.conf differs from before" [ "$(safety_sha "$ident")" = "$ident_sum" ]
  expect b-owner-connects "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"

  denied b-failed-write-stops-apply 'No space left on device' env PATH="$shim/mv:$PATH" "${apply[@]}"
  expect b-hba-restored-after-failed-write "pg_hba.conf differs from before (left half-applied)" [ "$(safety_sha "$hba")" = "$hba_sum" ]
  expect b-ident-restored-after-failed-write "pg_ident.conf differs from before" [ "$(safety_sha "$ident")" = "$ident_sum" ]
  expect b-no-temporary-file-left "a .pgbr-* temporary file was left next to the live files" \
    bash -c "[ -z \"\$(find '$D/pg/data' -maxdepth 1 -name '.pgbr-*' -print -quit)\" ]"
  expect b-owner-connects-2 "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"

  step b-next-run-converges "${apply[@]}" || return
  step b-verify "$tree/shell/verify.sh" || return

  # --- (c) SIGKILL right after each step, on a freshly rolled-back host each time ---
  local i next how killed=0
  for ((i = 1; i < ${#SAFETY_STEPS[@]}; i++)); do
    next=${SAFETY_STEPS[i]}
    step "c-rollback-before-${SAFETY_STEPS[i-1]}" "$tree/shell/rollback.sh" || return
    how=$(safety_apply_killed_at "$next" "$tree" "$D/kill-hook.sh" "$D/kill-mark")
    echo "--- apply.sh $how at the start of step $next" >> "$LOG"
    if [ "$how" = killed ]; then killed=$((killed + 1)); fi
    expect "c-killed-after-${SAFETY_STEPS[i-1]}" "apply.sh was not killed there ($how)" [ "$how" = killed ]
    expect "c-owner-connects-after-${SAFETY_STEPS[i-1]}" "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"
    step "c-converges-after-${SAFETY_STEPS[i-1]}" "${apply[@]}" || return
    step "c-verify-after-${SAFETY_STEPS[i-1]}" "$tree/shell/verify.sh" || return
  done
  expect c-killed-at-every-step "killed $killed times for $((${#SAFETY_STEPS[@]} - 1)) step boundaries" \
    [ "$killed" = "$((${#SAFETY_STEPS[@]} - 1))" ]
  # Inside the pg_hba step, between the two files: pg_hba.conf has the new block,
  # pg_ident.conf not yet (the half state the EXIT trap cannot cover under SIGKILL).
  step c-rollback-before-ident-write "$tree/shell/rollback.sh" || return
  # shellcheck disable=SC2016 # a pattern for BASH_COMMAND, which is unexpanded text
  how=$(PGBR_LAB_KILL_CMD='hba_write "$ident_user" "$ident"*' safety_apply_killed_at none "$tree" "$D/kill-hook.sh" "$D/kill-mark")
  expect c-killed-between-hba-and-ident "apply.sh was not killed there ($how)" [ "$how" = killed ]
  expect c-half-state "expected the block in pg_hba.conf only" \
    bash -c "grep -q 'BEGIN pgbr-policy $cluster' '$hba' && ! grep -q 'BEGIN pgbr-policy $cluster' '$ident'"
  expect c-owner-connects-half-state "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"
  step c-converges-after-half-state "${apply[@]}" || return
  step c-verify-after-half-state "$tree/shell/verify.sh" || return

  local second
  second=$("${apply[@]}" 2>&1); printf '%s\n' "$second" >> "$LOG"
  expect c-apply-again-no-change "a last apply.sh reported changes" grep -q "no change: the host already matches the plan" <<<"$second"
  # --- (d) a stale pid file: the TLS server died and its pid now belongs to another
  # --- process (here the postmaster): apply.sh and rollback.sh must not kill it ---
  local pidfile="/var/lib/pgbr-policy/$cluster/tls-server.pid" postmaster
  postmaster=$(head -n 1 "$D/pg/data/postmaster.pid")
  safety_stop_tls_server "$pidfile" "$D/etc/repository.conf"
  echo "$postmaster" > "$pidfile"
  step d-apply-with-stale-pid "${apply[@]}"
  expect d-postmaster-alive-after-apply "apply.sh killed the process of a stale pid file (the postmaster)" kill -0 "$postmaster"
  step d-verify "$tree/shell/verify.sh"
  safety_stop_tls_server "$pidfile" "$D/etc/repository.conf"
  echo "$postmaster" > "$pidfile"
  step d-rollback-with-stale-pid "$tree/shell/rollback.sh"
  expect d-postmaster-alive-after-rollback "rollback.sh killed the process of a stale pid file (the postmaster)" kill -0 "$postmaster"
  expect d-owner-connects "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"

  step rollback "$tree/shell/rollback.sh"
  expect rollback-hba-pristine "pg_hba.conf is not back to what initdb wrote" cmp -s "$hba" "$D/pg_hba.conf.pristine"
  expect rollback-ident-pristine "pg_ident.conf is not back to what initdb wrote" cmp -s "$ident" "$D/pg_ident.conf.pristine"
  expect rollback-owner-connects "the owner cannot connect" "${q[@]}" postgres -c "SELECT 1"
  pg_stop "$owner" "$bin" "$D/pg/data"
}
