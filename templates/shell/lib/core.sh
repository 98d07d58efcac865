# ---- Output, dry run, and running as the cluster's users.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ARTIFACTS=$(dirname "$HERE")
DRY_RUN=0
CHANGES=0
STEP=start

say() { printf '[%s] %s\n' "$STEP" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$STEP" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$STEP" "$*" >&2; exit 1; }
{% if c.host %}# Work that waits for another host or the CA (a repository-host cluster): said now,
# repeated at the end, and apply.sh exits 3.
PENDING=()
pending() { PENDING+=("[$STEP] $*"); printf '[%s] PENDING: %s\n' "$STEP" "$*"; }
{% if c.host_role == "database" %}# archive_command only once the stanza exists in the one repository (stanza-create runs
# on the repository host): asked through the repository host's TLS server as the cluster
# owner (`info`: status 0 ok, 2 no backup yet).
# STANZA_WAIT says why not.
stanza_ready_remote() {
  local out
  if ! out=$(as_user "$PG_OWNER" "$PGBACKREST" --config="$DB_CONF" --stanza="$STANZA" --io-timeout=5 --log-level-console=off --output=json info 2>/dev/null); then
    STANZA_WAIT="the repository host's TLS server does not answer $PG_OWNER (start it: apply.sh there; its certificate and this host's client certificate must be signed)"
    return 1
  fi
  case "$out" in
    *'"status":{"code":0,'*|*'"status":{"code":2,'*) return 0 ;;
    *'"status":{"code":1,'*|*'"status":{"code":3,'*)
      STANZA_WAIT="archive_command waits for the stanza $STANZA in the repository (run apply.sh on the repository host: step stanza)" ;;
    *) STANZA_WAIT="the repository host answered $PG_OWNER with an error ($(printf '%s' "$out" | grep -o '"message":"[^"]*"' | head -n 1)): is this host's client certificate in its tls-server-auth?" ;;
  esac
  return 1
}
{% endif %}{% endif %}
{% include "shell/lib/change.sh" %}
as_user() { local user=$1; shift; runuser -u "$user" -- "$@"; }

# As the cluster owner: directly when this already is the owner (the Patroni hook),
# through runuser otherwise (root).
as_owner() {
  if [ "$(id -u)" = "$(id -u "$PG_OWNER" 2>/dev/null)" ]; then "$@"; else runuser -u "$PG_OWNER" -- "$@"; fi
}

need_root() { [ "$(id -u)" = 0 ] || die "run me as root (I create users, change modes and run commands as $PG_OWNER and $BACKUP_USER)"; }

uid_of() { id -u "$1" 2>/dev/null; }
gid_of() { getent group "$1" | cut -d: -f3; }

# "uid gid mode" of a path, not following a symlink (numeric, as facts.md advises: no
# name lookups per entry).
stat_of() { stat -c '%u %g %a' -- "$1" 2>/dev/null; }

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

# ---- The database, as the cluster owner over the Unix socket.
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

# What still needs a restart, from the server's own state (so a run of one step, or a
# re-run, knows it as well as the run that made the change).
pending_restart_reasons() {
  RESTART_REASONS=()
  local mode
  mode=$(owner_query "SHOW data_directory_mode")
  if [ "$mode" != "$DD_MODE" ]; then
    RESTART_REASONS+=("data_directory_mode is $mode: PostgreSQL applies the data directory's group access only at start; until then new files stay unreadable to $BACKUP_USER")
  fi
  # archive_mode changes only at start: pg_settings.pending_restart says the file asks
  # for another value than the server runs with (pg_file_settings marks such a line
  # "could not be applied"). Under --dry-run it is not set yet: it will be.
  if [ "$ARCHIVE_MANAGED" = 1 ] && [ "$(owner_query "SHOW archive_mode")" = off ]; then
    if [ "$DRY_RUN" = 1 ] || [ "$(owner_query "SELECT pending_restart FROM pg_catalog.pg_settings WHERE name = 'archive_mode'")" = t ]; then
      RESTART_REASONS+=("archive_mode is off in the running server: it changes only at start; until then no WAL is archived and backups cannot complete")
    fi
  fi
}

# Restarts with pg_ctl, which reuses the postmaster's own options (postmaster.opts). Its
# output goes to a log in the state directory, not into PGDATA (it would be backed up).
pg_ctl_restart() {
  local log="$STATE_RESTART_LOG"
  if [ "$DRY_RUN" = 1 ]; then CHANGES=$((CHANGES + 1)); say "would restart PostgreSQL with pg_ctl (log: $log)"; return; fi
  state_dir_ready
  # Root's directory; the log file itself is the owner's (pg_ctl, as the owner, appends).
  rm -f -- "$log"; touch -- "$log"; chown -- "$PG_OWNER" "$log"; chmod 0640 -- "$log"
  CHANGES=$((CHANGES + 1)); say "restarting PostgreSQL (pg_ctl restart -m fast; log: $log)"
  runuser -u "$PG_OWNER" -- "$PG_BIN/pg_ctl" restart -D "$PGDATA" -m fast -w -t 120 -l "$log" >/dev/null
}

# ---- pgBackRest and its TLS server.

# True when version $1 is $2 or later (major.minor[.patch], numerically: 2.9 < 2.45).
version_at_least() {
  local -a a b
  local i
  IFS=. read -r -a a <<<"$1"
  IFS=. read -r -a b <<<"$2"
  for i in 0 1 2; do
    if (( 10#${a[i]:-0} != 10#${b[i]:-0} )); then (( 10#${a[i]:-0} > 10#${b[i]:-0} )); return; fi
  done
}

# The installed pgBackRest against the plan: older than the policy's pgbackrest.version
# (the artifacts rely on what that release does) or than the oldest release that can
# back up this major stops apply.sh, naming both versions. `pgbackrest version` runs as
# root: every release allows it (2.59 refuses other commands as root).
pgbackrest_version_check() {
  local out installed
  out=$("$PGBACKREST" version 2>&1) || die "$PGBACKREST version failed: $out"
  installed=${out#pgBackRest }
  [[ "$installed" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || die "$PGBACKREST version printed '$out', not a pgBackRest version"
  version_at_least "$installed" "$PGBACKREST_MIN" \
    || die "$PGBACKREST is pgBackRest $installed, but PostgreSQL $PG_MAJOR with this layout needs pgBackRest $PGBACKREST_MIN or later: install it and set pgbackrest.binary"
  if [ -n "$PGBACKREST_VERSION" ]; then
    version_at_least "$installed" "$PGBACKREST_VERSION" \
      || die "$PGBACKREST is pgBackRest $installed, older than the policy's pgbackrest.version $PGBACKREST_VERSION: install $PGBACKREST_VERSION, or regenerate with version: \"$installed\""
  fi
  PGBACKREST_INSTALLED=$installed
}

# The include path holds the backup side's S3 key or the repository's cipher passphrase
# (validation refuses both at once: pgBackRest takes one include path).
pgbackrest_as_backup_user() {
{% if c.s3 %}  set -- --config-include-path="$S3_BACKUP_KEY_DIR" "$@"
{% else %}  if [ -n "$CIPHER_INCLUDE_DIR" ]; then set -- --config-include-path="$CIPHER_INCLUDE_DIR" "$@"; fi
{% endif %}  as_user "$BACKUP_USER" "$PGBACKREST" --config="$REPO_CONF" "$@"
}
# server-ping only proves that something listens (it skips certificate checks); a short
# io-timeout because a refused connection otherwise takes 2 x 60 s to report.
tls_server_ping() { pgbackrest_as_backup_user --tls-server-address="$TLS_HOST" --io-timeout=1 server-ping >/dev/null 2>&1; }

# The TLS server started by apply.sh --start-tls-server, from its pid file: printed
# only while that pid is still that server. A pid is reused once its process ends, and
# a `kill` of a stale one, as root, hits whatever runs under it now (a postmaster, say).
tls_server_pid() {
  local pid cmdline
  pid=$(cat "$STATE_TLS_SERVER_PID" 2>/dev/null) || return 1
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  case "$cmdline" in *" --config=$REPO_CONF server "*) printf '%s\n' "$pid" ;; *) return 1 ;; esac
}

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# The password of a scram-sha-256 role, read once at start from the file or variable the
# policy names, then the variable is removed from the environment: no process this
# script starts (psql as the owner, the TLS server) inherits it.
PASSWORD_VALUE=""
take_password() {
  [ "$ROLE_AUTH" = scram-sha-256 ] || return 0
  if [ -n "$PASSWORD_ENV" ]; then
    PASSWORD_VALUE=${!PASSWORD_ENV:-}
    unset "$PASSWORD_ENV"
  fi
}
