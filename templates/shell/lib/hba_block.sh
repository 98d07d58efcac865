# ---- The managed block of pg_hba.conf and pg_ident.conf (`# BEGIN <marker>` ...
# ---- `# END <marker>`, first in the file: first match wins). Its grammar is this one awk
# ---- program (src/plan/hba.rs holds the same for the drift checks): a marker line is the
# ---- marker alone or followed by a space (cluster `c` never matches `c-2`), a trailing
# ---- carriage return is ignored (CRLF files), and a BEGIN without its END is an error —
# ---- never "the block runs to the end of the file", which would delete every rule after it.
#
# MODE=strip prints the file without the block; MODE=first prints the block when it comes
# before every rule (comments and blank lines may precede it) and fails otherwise.
# Exit 3: BEGIN without END.
HBA_BLOCK_AWK='
function is_marker(line, m) { sub(/\r$/, "", line); return line == m || substr(line, 1, length(m) + 1) == m " " }
BEGIN { b = "# BEGIN " marker; e = "# END " marker }
MODE == "strip" {
  if (inside) { if (is_marker($0, e)) inside = 0; next }
  if (is_marker($0, b)) { inside = 1; next }
  print; next
}
MODE == "first" {
  if (done) next
  if (inside) { print; if (is_marker($0, e)) { inside = 0; done = 1 }; next }
  if (is_marker($0, b)) { inside = 1; print; next }
  if ($0 !~ /^[ \t\r]*(#|$)/) { failed = 1; exit }
  next
}
END { if (inside) exit 3; if (MODE == "first" && (failed || !done)) exit 1 }
'

# Who may rewrite a live file: the owner of its directory when that is the cluster owner
# (Debian's /etc/postgresql/<v>/<c>, RHEL's PGDATA), root when no other user can write the
# directory; anyone else is refused. The file itself must be a regular file, not a link
# (rewriting a link's target by its name would write wherever the link points).
hba_user_of() {  # file
  local file=$1 dir problem
  dir=$(dirname -- "$file")
  [ ! -L "$file" ] || die "$file is a symbolic link (to $(readlink -- "$file")): refused; set postgres.hba_file / ident_file to the real file"
  [ -f "$file" ] || die "$file is not a regular file: refused"
  if [ "$(stat -c %u -- "$dir")" = "$(uid_of "$PG_OWNER")" ]; then
    printf '%s\n' "$PG_OWNER"
    return
  fi
  problem=$(untrusted_reason "$dir")
  [ -z "$problem" ] || die "refusing to rewrite $file: $problem (neither root's alone nor $PG_OWNER's)"
  printf 'root\n'
}

# As USER: run a command (root runs it directly).
as_who() { local who=$1; shift; if [ "$who" = root ]; then "$@"; else runuser -u "$who" -- "$@"; fi; }

# The block of this cluster: MODE strip|first over FILE, read as USER (see hba_user_of).
hba_block() {  # user mode file
  as_who "$1" awk -v MODE="$2" -v marker="$HBA_MARKER" "$HBA_BLOCK_AWK" "$3"
}

# FILE's new content from stdin, written by USER: a temporary file next to it, its mode,
# then a rename (atomic). Root never creates or renames inside the owner's directory.
hba_write() {  # user file
  # shellcheck disable=SC2016  # the program's variables belong to the inner bash
  as_who "$1" bash -c '
    set -eu
    file=$1
    [ ! -L "$file" ] || { echo "$file became a symbolic link: refused" >&2; exit 1; }
    mode=$(stat -c %a -- "$file")
    tmp=$(mktemp "$(dirname -- "$file")/.pgbr-XXXXXX")
    trap '\''rm -f -- "$tmp"'\'' EXIT
    cat > "$tmp"
    chmod -- "$mode" "$tmp"
    mv -f -- "$tmp" "$file"
    trap - EXIT
  ' pgbr-hba-write "$2" || die "could not rewrite $2 as $1 (it changed under us, or is no longer a regular file)"
}

# pg_hba.conf and pg_ident.conf change together or not at all: between hba_pending and
# hba_settled, any exit (a failed write, a psql that dies, a validation error) puts both
# back from the copies in the state directory, through hba_write as the files' user.
# Only SIGKILL escapes the trap; the next run then splices the block afresh (it strips
# any block it finds first).
HBA_PENDING=()
restore_hba_files() {
  [ "${#HBA_PENDING[@]}" = 4 ] || return 1
  hba_write "${HBA_PENDING[0]}" "${HBA_PENDING[1]}" < "$STATE_HBA_BEFORE"
  hba_write "${HBA_PENDING[2]}" "${HBA_PENDING[3]}" < "$STATE_IDENT_BEFORE"
  HBA_PENDING=()
}
hba_pending() {  # hba-user hba ident-user ident (their copies are already in the state directory)
  HBA_PENDING=("$1" "$2" "$3" "$4")
  trap 'if restore_hba_files; then warn "stopped before the new pg_hba.conf/pg_ident.conf validated: both restored byte for byte, nothing reloaded"; fi' EXIT
}
hba_settled() { HBA_PENDING=(); trap - EXIT; }

# Dies when FILE has this cluster's BEGIN marker without its END: the block cannot be told
# from the rules after it (stripping it would delete them all).
hba_check_grammar() {  # user file
  local rc=0
  hba_block "$1" strip "$2" >/dev/null || rc=$?
  [ "$rc" != 3 ] || die "$2 has '# BEGIN $HBA_MARKER' without its '# END $HBA_MARKER': fix the file by hand (nothing was changed)"
  [ "$rc" = 0 ] || die "cannot read $2 as $1"
}

# What FILE should hold: the snippet (from the artifact tree), then the file without any
# block of this cluster.
hba_spliced_content() {  # user file snippet
  cat -- "$ARTIFACTS/$3"
  hba_block "$1" strip "$2"
}

# True when FILE already holds exactly that.
hba_spliced() {  # user file snippet
  cmp -s <(as_who "$1" cat -- "$2") <(hba_spliced_content "$@")
}

# A live file's content into a state file (root's directory), read as the file's user;
# dies naming the file when it cannot be read (swapped for a link meanwhile, say).
hba_copy_to_state() {  # user file state-file
  state_dir_ready
  if ! (umask 077; as_who "$1" cat -- "$2" > "$3.next") 2>/dev/null; then
    rm -f -- "$3.next"; die "cannot read $2 as $1 (it changed under us, or is no longer a regular file): nothing was changed"
  fi
  mv -f -- "$3.next" "$3"
}

# The file's next content (the snippet first, when given, then the file without this
# cluster's block) into a state file, whole, before anything is written: a read that
# fails half-way never reaches the live file.
hba_next_into() {  # user file snippet-or-empty state-file
  local rc=0
  state_dir_ready
  (umask 077; { if [ -n "$3" ]; then cat -- "$ARTIFACTS/$3"; fi; hba_block "$1" strip "$2"; } > "$4") 2>/dev/null || rc=$?
  [ "$rc" = 0 ] && return 0
  rm -f -- "$4"
  [ "$rc" != 3 ] || die "$2 has '# BEGIN $HBA_MARKER' without its '# END $HBA_MARKER': fix the file by hand (nothing was changed)"
  die "cannot read $2 as $1 (it changed under us, or is no longer a regular file): nothing was changed"
}

hba_has_block() { ! cmp -s <(as_who "$1" cat -- "$2") <(hba_block "$1" strip "$2"); }
