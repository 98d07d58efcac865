# ---- The backup user's .pgpass (scram-sha-256), written by the backup user itself: root
# ---- never acts in its home. The line holds the password, so it travels on stdin only,
# ---- never in a command's arguments.

# libpq's .pgpass escaping: `:` and `\` inside a field are backslash-escaped.
pgpass_field() { printf '%s' "$1" | sed -e 's/[\\:]/\\&/g'; }

# The line's first four fields (not secret): which server, database and role it is for.
pgpass_prefix() { printf '%s:%s:%s:%s:' "$(pgpass_field "$PG_SOCKET")" "$PG_PORT" "$(pgpass_field "$ROLE_DB")" "$(pgpass_field "$ROLE_NAME")"; }

# True when .pgpass is a regular file holding exactly this line (on stdin), 0600.
pgpass_holds() {
  # shellcheck disable=SC2016  # the program's variables belong to the inner bash
  as_user "$BACKUP_USER" bash -c '[ -f "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %a -- "$1")" = 600 ] && grep -qxF -f - -- "$1"' pgbr-pgpass "$BACKUP_HOME/.pgpass"
}

# Puts this line (on stdin) in .pgpass in place of any line for the same server, database
# and role: a temporary file next to it, 0600, renamed into place.
pgpass_write() {
  # shellcheck disable=SC2016  # the program's variables belong to the inner bash
  as_user "$BACKUP_USER" bash -c '
    set -eu
    umask 077
    file=$1
    export PREFIX=$2
    [ ! -L "$file" ] || { echo "$file is a symbolic link: refused" >&2; exit 1; }
    IFS= read -r line
    tmp=$(mktemp "$file.XXXXXX")
    trap '\''rm -f -- "$tmp"'\'' EXIT
    { if [ -f "$file" ]; then awk '\''index($0, ENVIRON["PREFIX"]) != 1'\'' "$file"; fi; printf "%s\n" "$line"; } > "$tmp"
    chmod 0600 "$tmp"
    mv -f -- "$tmp" "$file"
    trap - EXIT
  ' pgbr-pgpass "$BACKUP_HOME/.pgpass" "$(pgpass_prefix)"
}
