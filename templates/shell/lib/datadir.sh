# ---- The data-directory rule (plan: datadir; facts.md §4). The backup user reads every
# ---- entry through the cluster's group and changes none. Every command here runs as
# ---- the cluster owner: it owns every entry of the data directory, its tablespaces and
# ---- a linked pg_wal, so a link planted there can point chmod only at files the owner
# ---- could change anyway, never at root's. Used by apply.sh, verify.sh, rollback.sh,
# ---- the Patroni hook and the Ansible role (through apply.sh); `check --deployed`
# ---- evaluates the same rule (src/plan/host.rs).

# DATADIR_ROOTS: the data directory, and the targets of a symlinked pg_wal and of every
# tablespace link (pgBackRest follows both). A target that is not the cluster owner's is
# refused (DATADIR_PROBLEM says which): the owner could otherwise aim this rule at
# another user's tree.
DATADIR_ROOTS=()
DATADIR_PROBLEM=""
datadir_load_roots() {
  local link target owner_uid
  DATADIR_ROOTS=("$PGDATA")
  DATADIR_PROBLEM=""
  owner_uid=$(id -u "$PG_OWNER")
  for link in "$PGDATA"/pg_wal "$PGDATA"/pg_tblspc/*; do
    [ -L "$link" ] || continue
    target=$(readlink -e -- "$link") || {
      DATADIR_PROBLEM="$link points at $(readlink -- "$link"), which does not exist or $(id -un) cannot reach: refused"
      return 1
    }
    if [ "$(stat -c %u -- "$target")" != "$owner_uid" ] || [ ! -d "$target" ]; then
      DATADIR_PROBLEM="$link points at $target, which is not a directory of $PG_OWNER: refused"
      return 1
    fi
    DATADIR_ROOTS+=("$target")
  done
}

# The find expression: directories lacking DD_DIR_NEEDS or holding DD_FORBIDS, files
# lacking DD_FILE_NEEDS or holding DD_FORBIDS. One stat per entry, no fork per entry.
datadir_find() {  # find-actions-for-dirs... -- find-actions-for-files...
  local dir_actions=() file_actions=()
  while [ "$1" != -- ]; do dir_actions+=("$1"); shift; done
  shift
  file_actions=("$@")
  as_owner find -P "${DATADIR_ROOTS[@]}" -ignore_readdir_race \
    \( -type d \( ! -perm "-$DD_DIR_NEEDS" -o -perm "/$DD_FORBIDS" \) "${dir_actions[@]}" \) \
    -o \( -type f \( ! -perm "-$DD_FILE_NEEDS" -o -perm "/$DD_FORBIDS" \) "${file_actions[@]}" \)
}

# Entries that break the rule, at most LIMIT of them (all without a limit).
datadir_breaking() {  # [limit]
  if [ -n "${1:-}" ]; then
    # find ends on SIGPIPE once head has its lines: that is the point, not a failure.
    { datadir_find -print -- -print 2>/dev/null || true; } | head -n "$1"
  else
    datadir_find -print -- -print 2>/dev/null || true
  fi
}

# Makes the rule hold. A first conversion changes nearly every entry: then one
# `chmod -R` is cheapest; otherwise (a re-run, a few new files) only the entries that
# need it are touched, in the same single walk (batched chmod). Sets DATADIR_FIXED (a
# count, or "all") and, on a failure other than an entry PostgreSQL removed meanwhile
# (an immutable file, a read-only mount), DATADIR_ERRORS, and returns 1.
DATADIR_FIXED=0
DATADIR_ERRORS=""
datadir_fix() {
  local count output
  DATADIR_FIXED=0 DATADIR_ERRORS=""
  datadir_load_roots || { DATADIR_ERRORS=$DATADIR_PROBLEM; return 1; }
  count=$(datadir_breaking "$DD_BULK_THRESHOLD" | wc -l)
  [ "$count" -gt 0 ] || return 0
  if [ "$count" -ge "$DD_BULK_THRESHOLD" ]; then
    output=$(as_owner chmod -R "$DD_TREE_FIX" -- "${DATADIR_ROOTS[@]}" 2>&1) || true
    DATADIR_FIXED=all
  else
    output=$(datadir_find -printf 'fix\n' -exec chmod "$DD_DIR_FIX" {} + -- -printf 'fix\n' -exec chmod "$DD_FILE_FIX" {} + 2>&1) || true
    DATADIR_FIXED=$(grep -cx fix <<<"$output" || true)
  fi
  DATADIR_ERRORS=$(grep -v -e '^fix$' -e '^$' -e 'No such file or directory' <<<"$output" | head -n 3 | tr '\n' ' ' || true)
  [ -z "$DATADIR_ERRORS" ]
}

# rollback.sh: every group bit taken back (PostgreSQL keeps 0700/0600 after its next start).
datadir_revoke() {
  datadir_load_roots || die "$DATADIR_PROBLEM"
  as_owner find -P "${DATADIR_ROOTS[@]}" -ignore_readdir_race \( -type d -o -type f \) -perm /070 -exec chmod "$DD_REVOKE" {} +
}
