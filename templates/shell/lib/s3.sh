# ---- A repository in a bucket (plan: s3): each side's key, read by root from a
# ---- root-only source file, written as a pgBackRest include file that only the user of
# ---- that side can read, inside a directory root alone can write. The key travels in a
# ---- pipe and a shell variable, never in argv, the environment or a log.

# The include file's text from a key source file: AWS's credentials-file lines
# (aws_access_key_id, aws_secret_access_key, optional aws_session_token; `[profile]`
# headers and # comments ignored). Prints nothing when a value is missing or malformed.
s3_key_include() {  # source
  awk -F '=' '
    /^[[:space:]]*(#|;|\[|$)/ { next }
    {
      k = $1; v = substr($0, index($0, "=") + 1)
      gsub(/^[[:space:]]+|[[:space:]]+$/, "", k); gsub(/^[[:space:]]+|[[:space:]]+$/, "", v)
      if (k == "aws_access_key_id") id = v
      else if (k == "aws_secret_access_key") secret = v
      else if (k == "aws_session_token") token = v
    }
    END {
      if (id !~ /^[A-Za-z0-9]+$/ || secret !~ /^[A-Za-z0-9\/+=]+$/) exit 1
      if (token != "" && token !~ /^[A-Za-z0-9\/+=]+$/) exit 1
      print "[global]"
      print "repo1-s3-key=" id
      print "repo1-s3-key-secret=" secret
      if (token != "") print "repo1-s3-token=" token
    }' "$1"
}

# One side's key: SOURCE (root-only) -> DIR/s3-key.conf, USER:GROUP 0600. DIR is root's
# 0755 (step paths made it); root writes only there, after checking the chain again.
s3_key_install() {  # source dir file user group
  local source=$1 dir=$2 file=$3 user=$4 group=$5 problem text
  problem=$(secret_source_problem "$source")
  [ -z "$problem" ] || die "refusing to read the key: $problem"
  text=$(s3_key_include "$source") || die "$source does not hold aws_access_key_id and aws_secret_access_key lines (letters, digits and / + = only)"
  if [ "$DRY_RUN" = 1 ] && [ ! -d "$dir" ]; then CHANGES=$((CHANGES + 1)); say "would write $file ($user:$group 0600)"; return; fi
  root_acts_in "$dir" "write $file"
  if [ -L "$file" ] || { [ -e "$file" ] && [ ! -f "$file" ]; }; then die "$file exists and is not a regular file: refused"; fi
  if [ -f "$file" ] && printf '%s\n' "$text" | cmp -s -- - "$file"; then
    local drift
    drift=$(path_drift "$file" "$user" "$group" 0600)
    case "$drift" in *owner*|*group*) change chown -- "$user:$group" "$file" ;; esac
    case "$drift" in *mode*) change chmod -- 0600 "$file" ;; esac
    return 0
  fi
  if [ "$DRY_RUN" = 1 ]; then CHANGES=$((CHANGES + 1)); say "would write $file ($user:$group 0600, the key from $source)"; return; fi
  printf '%s\n' "$text" | secret_write "$file" "$user" "$group" 0600
  CHANGES=$((CHANGES + 1)); say "wrote $file ($user:$group 0600) from $source"
}

# pgBackRest as each side, with its own key.
pgbackrest_database_side() { as_user "$PG_OWNER" "$PGBACKREST" --config="$DB_CONF" --config-include-path="$S3_DB_KEY_DIR" "$@"; }

# Whether the stanza exists in the bucket: prints `missing` (info's status 1, "missing
# stanza path") or `present`; fails, printing pgBackRest's error, when the backup-side key
# cannot read the bucket (an unreachable bucket must not pass for an existing stanza).
s3_stanza_state() {
  local out
  if out=$(pgbackrest_as_backup_user --stanza="$STANZA" --output=json info 2>&1) || [[ "$out" == *'"status":{"code":1,'* ]]; then
    case "$out" in *'"status":{"code":1,'*) echo missing ;; *) echo present ;; esac
    return 0
  fi
  printf '%s\n' "$out" >&2
  return 1
}

# verify.sh: the database-side key must not be able to delete. The backup side puts a
# probe object where the database side may not write (under backup/); the database side
# tries to remove it with its own key; the backup side removes it. Prints what happened.
s3_delete_probe() {
  local out
  printf 'pgbr-policy delete probe\n' | pgbackrest_as_backup_user --stanza="$STANZA" --log-level-console=error repo-put "$S3_PROBE" >/dev/null 2>&1 ||
    { echo "could not put the probe object $S3_PROBE with the backup-side key"; return 2; }
  if out=$(pgbackrest_database_side --stanza="$STANZA" --log-level-console=error repo-rm "$S3_PROBE" 2>&1); then
    echo "the database-side key DELETED $S3_PROBE: it can destroy backups"
    return 1
  fi
  pgbackrest_as_backup_user --stanza="$STANZA" --log-level-console=error repo-rm "$S3_PROBE" >/dev/null 2>&1 || true
  case "$out" in *403*|*AccessDenied*|*FORBIDDEN*) return 0 ;; esac
  echo "the delete failed, but not as denied: ${out:0:300}"
  return 2
}
