# ---- The repository's passphrase (pgbackrest.cipher_passphrase_file), as root. Read from
# ---- a root-only file at apply time, written for pgBackRest into a root-only directory
# ---- as `[global] repo1-cipher-pass=…` (root:<backup group> 0640): the backup user and
# ---- the TLS server's remotes read it. The passphrase is never an argument, never in the
# ---- environment of a child, never printed (printf is bash's builtin; cmp reads a pipe).

# The passphrase file passes secret_source_problem (root's, 0600 or stricter, in a
# directory only root can change). Prints the passphrase.
cipher_passphrase() {
  local file=$CIPHER_PASSPHRASE_FILE pass="" problem
  problem=$(secret_source_problem "$file")
  [ -z "$problem" ] || die "refusing to read the passphrase: $problem"
  IFS= read -r pass < "$file" || [ -n "$pass" ] || die "passphrase file $file is empty"
  case "$pass" in
    '') die "passphrase file $file is empty" ;;
    [[:space:]]*|*[[:space:]]) die "the passphrase in $file starts or ends with white space (pgBackRest would trim it)" ;;
    *[[:cntrl:]]*) die "the passphrase in $file holds a control character" ;;
  esac
  printf '%s' "$pass"
}

cipher_secret_content() { printf '[global]\nrepo1-cipher-pass=%s\n' "$1"; }

# Writes the secret file when it is missing; refuses to change a different one (a
# repository keeps the passphrase it was created with: a new one makes it unreadable).
cipher_secret() {
  [ -n "$CIPHER_PASSPHRASE_FILE" ] || return 0
  local pass drift
  pass=$(cipher_passphrase) || exit 1
  if [ -e "$CIPHER_SECRET" ] || [ -L "$CIPHER_SECRET" ]; then
    if [ ! -f "$CIPHER_SECRET" ] || [ -L "$CIPHER_SECRET" ]; then die "$CIPHER_SECRET is not a regular file: refused"; fi
    root_acts_in "$CIPHER_INCLUDE_DIR" "check $CIPHER_SECRET"
    cmp -s "$CIPHER_SECRET" <(cipher_secret_content "$pass") \
      || die "$CIPHER_SECRET holds another passphrase than $CIPHER_PASSPHRASE_FILE: refused (a repository keeps the passphrase it was created with; remove $CIPHER_SECRET yourself only if the repository is new or empty)"
    drift=$(path_drift "$CIPHER_SECRET" root "$BACKUP_GROUP" 0640)
    case "$drift" in *owner*|*group*) change chown -- "root:$BACKUP_GROUP" "$CIPHER_SECRET" ;; esac
    case "$drift" in *mode*) change chmod -- 0640 "$CIPHER_SECRET" ;; esac
    [ -n "$drift" ] || say "$CIPHER_SECRET holds the passphrase of $CIPHER_PASSPHRASE_FILE"
    return 0
  fi
  if [ "$DRY_RUN" = 1 ]; then
    CHANGES=$((CHANGES + 1)); say "would write the passphrase of $CIPHER_PASSPHRASE_FILE into $CIPHER_SECRET (root:$BACKUP_GROUP 0640; not shown)"
    return 0
  fi
  cipher_secret_content "$pass" | secret_write "$CIPHER_SECRET" root "$BACKUP_GROUP" 0640
  CHANGES=$((CHANGES + 1)); say "wrote the passphrase of $CIPHER_PASSPHRASE_FILE into $CIPHER_SECRET (root:$BACKUP_GROUP 0640; not shown)"
}
