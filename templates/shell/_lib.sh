# ---- Helpers shared by apply.sh, rollback.sh and verify.sh.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ARTIFACTS=$(dirname "$HERE")
DRY_RUN=0
CHANGES=0
STEP=start

say() { printf '[%s] %s\n' "$STEP" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$STEP" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$STEP" "$*" >&2; exit 1; }

# Runs a changing command, or shows it under --dry-run.
change() {
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    printf '[%s] would run:' "$STEP"; printf ' %q' "$@"; printf '\n'
  else
    printf '[%s] changing:' "$STEP"; printf ' %q' "$@"; printf '\n'
    "$@"
  fi
}

as_user() { local user=$1; shift; runuser -u "$user" -- "$@"; }

psql_bin() {
  if [ -x "$PG_BIN/psql" ]; then printf '%s\n' "$PG_BIN/psql"; else command -v psql || die "psql not found in $PG_BIN or PATH"; fi
}

# psql reads -d as a connection string when the value holds `=` or starts with a URI
# scheme (a database named `dbname=postgres host=elsewhere` would send the connection,
# and a password, elsewhere): the name always goes inside one, quoted for libpq.
conninfo_db() { printf "dbname='%s'" "$(printf '%s' "$1" | sed -e "s/[\\\\']/\\\\&/g")"; }

# psql as the cluster owner over the Unix socket; extra arguments follow.
owner_psql() {
  local db=$1; shift
  as_user "$PG_OWNER" "$(psql_bin)" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET" -p "$PG_PORT" -d "$(conninfo_db "$db")" "$@"
}

# One value from the server, as the cluster owner.
owner_query() { owner_psql "$ROLE_DB" -At -c "$1"; }

server_running() { as_user "$PG_OWNER" "$PG_BIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; }

uid_of() { id -u "$1" 2>/dev/null; }
gid_of() { getent group "$1" | cut -d: -f3; }

# "uid gid mode" of a path (numeric, as facts.md advises: no name lookups per entry).
stat_of() { stat -c '%u %g %a' "$1" 2>/dev/null; }

# What differs between a path and its planned owner, group and mode: prints
# "owner", "group", "mode" words (nothing when it matches), or "missing".
path_drift() {  # path owner group mode
  local now uid gid mode
  now=$(stat_of "$1") || { echo missing; return; }
  read -r uid gid mode <<<"$now"
  [ "$uid" = "$(uid_of "$2")" ] || echo owner
  [ "$gid" = "$(gid_of "$3")" ] || echo group
  [ "$((8#$mode))" = "$((8#$4))" ] || echo mode
}

# The roots to walk for group read: PGDATA, plus tablespaces and a pg_wal symlinked
# elsewhere (pgBackRest follows both).
pgdata_roots() {
  printf '%s\n' "$PGDATA"
  local link
  for link in "$PGDATA"/pg_tblspc/* "$PGDATA"/pg_wal; do
    if [ -L "$link" ]; then readlink -f "$link"; fi
  done
}

# Entries in the data directory that lack group read (or search), or that grant group
# write or anything to others. One stat per entry, no fork per entry (facts.md §8).
pgdata_needing_fix() {
  local roots; mapfile -t roots < <(pgdata_roots)
  find "${roots[@]}" \( -type d \( ! -perm -g+rx -o -perm /g+w,o+rwx \) -print \) \
    -o \( -type f \( ! -perm -g+r -o -perm /g+w,o+rwx \) -print \) 2>/dev/null || true
}

# The marker-delimited block of this cluster removed from a file's content (stdout).
without_block() {
  awk -v begin="# BEGIN $HBA_MARKER" -v end="# END $HBA_MARKER" '
    function is_marker(line, m) { return substr(line, 1, length(m)) == m && (length(line) == length(m) || substr(line, length(m) + 1, 1) == " ") }
    is_marker($0, begin) { skipping = 1; next }
    skipping && is_marker($0, end) { skipping = 0; next }
    !skipping { print }
  ' "$1"
}

# A setting as the configuration files ask for it (ALTER SYSTEM included), even before a
# restart applies it; SHOW would print "(disabled)" for archive_command while archiving is off.
configured_setting() {
  owner_query "SELECT setting FROM pg_catalog.pg_file_settings WHERE name = '$1' AND error IS NULL ORDER BY seqno DESC LIMIT 1"
}

# What ALTER SYSTEM (postgresql.auto.conf) holds for a setting: "1 value", or "0" when unset.
auto_conf_setting() {
  owner_query "SELECT coalesce((SELECT '1 ' || setting FROM pg_catalog.pg_file_settings WHERE name = '$1' AND sourcefile LIKE '%/postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1), '0')"
}

live_file() {  # hba|ident -> the path the server reads
  local configured=$1 setting=$2
  if [ -n "$configured" ]; then printf '%s\n' "$configured"; else owner_query "SHOW $setting"; fi
}

hba_errors() {
  owner_query "SELECT line_number || ': ' || error FROM pg_catalog.pg_hba_file_rules WHERE error IS NOT NULL"
  if [ "$HAS_IDENT_VIEW" = 1 ]; then
    owner_query "SELECT 'pg_ident.conf line ' || line_number || ': ' || error FROM pg_catalog.pg_ident_file_mappings WHERE error IS NOT NULL"
  fi
}

# Replaces a file's content keeping its owner, group and mode; atomic (rename). On a
# failure the temporary file is removed (it sits next to the target, often in PGDATA).
replace_content() {  # target content-file
  local target=$1 content=$2 tmp
  tmp=$(mktemp "$(dirname "$target")/.pgbr-XXXXXX")
  if ! { cat "$content" > "$tmp" && chown --reference="$target" "$tmp" && chmod --reference="$target" "$tmp" && mv -f "$tmp" "$target"; }; then
    rm -f "$tmp"
    return 1
  fi
}

# pg_hba.conf and pg_ident.conf change together or not at all: between hba_pending and
# hba_settled, any exit (a failed write, a psql that dies, a validation error) puts both
# back from the copies in the state directory. Only SIGKILL escapes the trap; the next
# run then splices the block afresh (it strips any block it finds first).
HBA_PENDING=()
restore_hba_files() {
  [ "${#HBA_PENDING[@]}" = 2 ] || return 1
  cp -p "$STATE_DIR/pg_hba.conf.before" "${HBA_PENDING[0]}"
  cp -p "$STATE_DIR/pg_ident.conf.before" "${HBA_PENDING[1]}"
  HBA_PENDING=()
}
hba_pending() {  # hba ident (their copies are already in the state directory)
  HBA_PENDING=("$1" "$2")
  trap 'if restore_hba_files; then warn "stopped before the new pg_hba.conf/pg_ident.conf validated: both restored byte for byte, nothing reloaded"; fi' EXIT
}
hba_settled() { HBA_PENDING=(); trap - EXIT; }

pgbackrest_as_backup_user() { as_user "$BACKUP_USER" "$PGBACKREST" --config="$REPO_CONF" "$@"; }

# server-ping only proves that something listens (it skips certificate checks); a short
# io-timeout because a refused connection otherwise takes 2 x 60 s to report.
tls_server_ping() { pgbackrest_as_backup_user --tls-server-address="$TLS_HOST" --io-timeout=1 server-ping >/dev/null 2>&1; }

# The TLS server started by apply.sh --start-tls-server, from its pid file: printed
# only while that pid is still that server. A pid is reused once its process ends, and
# a `kill` of a stale one, as root, hits whatever runs under it now (a postmaster, say).
tls_server_pid() {
  local pid cmdline
  pid=$(cat "$STATE_DIR/tls-server.pid" 2>/dev/null) || return 1
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  case "$cmdline" in *" --config=$REPO_CONF server "*) printf '%s\n' "$pid" ;; *) return 1 ;; esac
}

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

need_root() { [ "$(id -u)" = 0 ] || die "run me as root (I create users, change modes and run commands as $PG_OWNER and $BACKUP_USER)"; }

# Restarts with pg_ctl, which reuses the postmaster's own options (postmaster.opts). Its
# output goes to a log in the state directory, not into PGDATA (it would be backed up).
pg_ctl_restart() {
  local log="$STATE_DIR/postgres-restart.log"
  if [ "$DRY_RUN" = 1 ]; then CHANGES=$((CHANGES + 1)); say "would restart PostgreSQL with pg_ctl (log: $log)"; return; fi
  mkdir -p "$STATE_DIR"; chmod 0711 "$STATE_DIR"
  touch "$log"; chown "$PG_OWNER" "$log"; chmod 0640 "$log"
  CHANGES=$((CHANGES + 1)); say "restarting PostgreSQL (pg_ctl restart -m fast; log: $log)"
  runuser -u "$PG_OWNER" -- "$PG_BIN/pg_ctl" restart -D "$PGDATA" -m fast -w -t 120 -l "$log" >/dev/null
}
{% if c.patroni %}
# ---- Patroni: patronictl with this cluster's configuration, and Patroni's own Python
# ---- (PyYAML is one of its dependencies) to read YAML.
patronictl_cfg() { patronictl -c "$PATRONI_CONFIG" "$@"; }

patroni_python() {  # code args...
  local code=$1 interpreter; shift
  read -r -a interpreter < <(sed -n '1s/^#![[:space:]]*//p' "$(command -v patronictl)")
  "${interpreter[@]}" -c "$code" "$@"
}

# "scope" and "name" of this member, one per line, from patroni.yml (a file, or a
# directory of YAML files merged in name order as Patroni does).
PY_IDENTITY='
import os, sys, yaml
path = sys.argv[1]
files = [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith((".yml", ".yaml"))] if os.path.isdir(path) else [path]
conf = {}
for name in files:
    with open(name) as f:
        conf.update(yaml.safe_load(f) or {})
print(conf.get("scope") or "")
print(conf.get("name") or "")
'
patroni_identity() { patroni_python "$PY_IDENTITY" "$PATRONI_CONFIG"; }

# From `patronictl show-config` on stdin: the patch that puts archive_mode and
# archive_command back as the dynamic configuration held them (null: absent).
PY_ARCHIVE_BEFORE='
import json, sys, yaml
conf = yaml.safe_load(sys.stdin) or {}
params = (conf.get("postgresql") or {}).get("parameters") or {}
print(json.dumps({"postgresql": {"parameters": {k: params.get(k) for k in ("archive_mode", "archive_command")}}}))
'

# True when FILE holds this cluster's block exactly as SNIPPET, with no rule before it
# (Patroni's own header comment may precede it).
block_is_first() {  # file snippet
  local block
  block=$(awk -v begin="# BEGIN $HBA_MARKER" -v end="# END $HBA_MARKER" '
    function is_marker(line, m) { return substr(line, 1, length(m)) == m && (length(line) == length(m) || substr(line, length(m) + 1, 1) == " ") }
    done { next }
    !inside && is_marker($0, begin) { inside = 1 }
    inside { print; if (is_marker($0, end)) { inside = 0; done = 1 }; next }
    $0 !~ /^[ \t]*(#|$)/ { exit 1 }
  ' "$1") || return 1
  [ -n "$block" ] && [ "$block" = "$(cat "$2")" ]
}

# Restarts this member through Patroni (which fires on_restart: the hook runs).
patroni_restart() {
  local scope member
  { read -r scope; read -r member; } < <(patroni_identity)
  if [ -z "$scope" ] || [ -z "$member" ]; then die "cannot read scope and name from $PATRONI_CONFIG"; fi
  if [ "$DRY_RUN" = 1 ]; then CHANGES=$((CHANGES + 1)); say "would run: patronictl -c $PATRONI_CONFIG restart $scope $member --force"; return; fi
  change patronictl -c "$PATRONI_CONFIG" restart "$scope" "$member" --force
  local tries=0
  until server_running && owner_query "SELECT 1" >/dev/null 2>&1; do
    tries=$((tries + 1)); [ "$tries" -lt 120 ] || die "PostgreSQL did not come back after patronictl restart"
    sleep 0.5
  done
}
{% endif %}