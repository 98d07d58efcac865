# ---- The privilege model (README, "Security model"). Root acts by path only inside a
# ---- directory that no other user can change: every directory from / down to it is a
# ---- real directory owned by root and writable by nobody else, and every symbolic link
# ---- on the way is root's. Anything else runs as the user who owns it (who could do it
# ---- anyway), or is refused by name. Nothing that exists is adopted silently.

# Prints the first reason a path fails that test, walking from / down (nothing: it passes).
chain_problem() {  # path
  local path=$1 prefix="" part owner mode
  local -a parts
  IFS=/ read -r -a parts <<<"${path#/}"
  for part in "" "${parts[@]}"; do
    if [ -z "$part" ] && [ -n "$prefix" ]; then continue; fi
    prefix="${prefix%/}/$part"
    if [ -L "$prefix" ]; then
      owner=$(stat -c %u -- "$prefix") || { printf '%s cannot be read\n' "$prefix"; return; }
      # A link in a root-only directory is root's to change: follow it (checked below).
      [ "$owner" = 0 ] || { printf '%s is a symbolic link that belongs to %s\n' "$prefix" "$(stat -c %U -- "$prefix")"; return; }
      continue
    fi
    read -r owner mode < <(stat -c '%u %a' -- "$prefix" 2>/dev/null) || { printf '%s cannot be read\n' "$prefix"; return; }
    [ -d "$prefix" ] || { printf '%s is not a directory\n' "$prefix"; return; }
    [ "$owner" = 0 ] || { printf '%s belongs to %s\n' "$prefix" "$(stat -c %U -- "$prefix")"; return; }
    if (( 8#$mode & 8#022 )); then printf '%s is writable by group or others (mode %s)\n' "$prefix" "$mode"; return; fi
  done
}

# Why root may not act by path inside DIR (nothing: it may). Both the path as written
# (who could repoint a link on the way) and the path it resolves to.
untrusted_reason() {  # dir
  local problem resolved
  problem=$(chain_problem "$1")
  if [ -z "$problem" ]; then
    resolved=$(realpath -e -- "$1" 2>/dev/null) || { printf '%s does not resolve\n' "$1"; return; }
    problem=$(chain_problem "$resolved")
  fi
  [ -z "$problem" ] || printf '%s\n' "$problem"
}

# Dies unless root may act inside DIR.
root_acts_in() {  # dir what
  local problem
  problem=$(untrusted_reason "$1")
  [ -z "$problem" ] || die "refusing to $2 in $1: $problem (root acts only in directories no other user can write)"
}

# The nearest existing ancestor of a path (the path itself when it exists).
existing_ancestor() {
  local path=$1
  while [ ! -e "$path" ] && [ ! -L "$path" ]; do path=$(dirname -- "$path"); done
  printf '%s\n' "$path"
}

# Makes the parents of a path that do not exist yet: root 0755, each inside a directory
# root alone can write (checked on the nearest existing one).
make_parents() {  # path
  local parent
  parent=$(dirname -- "$1")
  [ -d "$parent" ] && [ ! -L "$parent" ] && return 0
  root_acts_in "$(existing_ancestor "$parent")" "create $parent"
  change mkdir -p -- "$parent"
}

# A planned directory, as root: created inside a directory root alone can write, or
# corrected there. An existing one must be a real directory (not a link) owned by its
# planned owner or root, or by ADOPT_FROM when the plan takes it over (the repository,
# which Debian's package gives to the cluster owner); anything else is refused by name.
ensure_dir() {  # path owner group mode [adopt-from-user]
  local path=$1 owner=$2 group=$3 mode=$4 adopt=${5:-} uid drift parent
  parent=$(dirname -- "$path")
  # Inside a directory of the planned owner itself: that user does it (it could anyway);
  # root does nothing there.
  if [ -d "$parent" ] && [ ! -L "$parent" ] && [ "$(stat -c %u -- "$parent")" = "$(uid_of "$owner")" ] && [ "$owner" != root ]; then
    if [ ! -e "$path" ] && [ ! -L "$path" ]; then
      change as_user "$owner" install -d -g "$group" -m "$mode" -- "$path"
      return
    fi
    if [ -L "$path" ] || [ ! -d "$path" ]; then die "$path exists and is not a directory: refused"; fi
    [ "$(stat -c %u -- "$path")" = "$(uid_of "$owner")" ] || die "$path belongs to $(stat -c %U -- "$path"), not $owner: refused"
    drift=$(path_drift "$path" "$owner" "$group" "$mode")
    case "$drift" in *group*) change as_user "$owner" chgrp -- "$group" "$path" ;; esac
    case "$drift" in *mode*) change as_user "$owner" chmod -- "$mode" "$path" ;; esac
    return
  fi
  if [ ! -e "$path" ] && [ ! -L "$path" ]; then
    make_parents "$path"
    [ "$DRY_RUN" = 1 ] || root_acts_in "$parent" "create $path"
    change new_dir "$path" "$owner" "$group" "$mode"
    return
  fi
  [ ! -L "$path" ] || die "$path is a symbolic link (to $(readlink -- "$path")): refused; make it a directory owned by $owner, or remove it"
  [ -d "$path" ] || die "$path exists and is not a directory: refused"
  root_acts_in "$parent" "change $path"
  uid=$(stat -c %u -- "$path")
  if [ "$uid" != "$(uid_of "$owner")" ] && [ "$uid" != 0 ] && { [ -z "$adopt" ] || [ "$uid" != "$(uid_of "$adopt")" ]; }; then
    die "$path belongs to $(stat -c %U -- "$path"), not $owner: refused (nothing is taken over silently; chown it yourself if that is right)"
  fi
  drift=$(path_drift "$path" "$owner" "$group" "$mode")
  case "$drift" in *owner*|*group*) change chown -- "$owner:$group" "$path" ;; esac
  case "$drift" in *mode*) change chmod -- "$mode" "$path" ;; esac
}

# Made 0700 by root first: nobody can enter it before it has its owner and mode.
new_dir() {  # path owner group mode
  mkdir -m 0700 -- "$1" && chown -- "$2:$3" "$1" && chmod -- "$4" "$1"
}

# The state directory /var/lib/pgbr-policy/<cluster>: root's (0711: the cluster owner's
# pg_ctl appends to the restart log there, and can do nothing else).
state_dir_ready() {
  if [ -d "$STATE_DIR" ] && [ ! -L "$STATE_DIR" ]; then
    [ "$(stat -c %u -- "$STATE_DIR")" = 0 ] || die "$STATE_DIR does not belong to root: refused"
    return 0
  fi
  [ ! -L "$STATE_DIR" ] || die "$STATE_DIR is a symbolic link: refused"
  root_acts_in "$(existing_ancestor "$STATE_DIR")" "create $STATE_DIR"
  (umask 022; mkdir -p -- "$(dirname -- "$STATE_DIR")")
  mkdir -m 0711 -- "$STATE_DIR"
}

# A small file in the state directory, written by root (umask 077).
state_write() {  # path (content on stdin)
  state_dir_ready
  (umask 077; cat > "$1.new") && mv -f -- "$1.new" "$1"
}

# ---- Secrets (S3 keys, the repository passphrase): read by root from a source file
# ---- only root can read, written where only their reader can read them. Never in argv,
# ---- the environment or a log.

# Why root may not read a secret's source file (nothing: it may): a regular file, not a
# link, root's, no group or other bits, in a directory chain no other user can change (so
# nobody can swap it for a link to /etc/shadow between the check and the read).
secret_source_problem() {  # path
  local path=$1 owner mode problem
  [ ! -L "$path" ] || { printf '%s is a symbolic link\n' "$path"; return; }
  [ -f "$path" ] || { printf '%s does not exist (or is not a regular file)\n' "$path"; return; }
  read -r owner mode < <(stat -c '%u %a' -- "$path")
  [ "$owner" = 0 ] || { printf '%s belongs to %s, not root\n' "$path" "$(stat -c %U -- "$path")"; return; }
  if (( 8#$mode & 8#077 )); then printf '%s is readable by other users (mode %s): chmod 0600 it, and replace the secret if others read it\n' "$path" "$mode"; return; fi
  problem=$(untrusted_reason "$(dirname -- "$path")")
  [ -z "$problem" ] || printf '%s: %s\n' "$path" "$problem"
}

# Standard input as FILE (OWNER:GROUP MODE), in its directory that root alone can change:
# a temporary file beside it (umask 077), then a rename; a link or non-file there refused.
secret_write() {  # file owner group mode (content on stdin)
  local file=$1 owner=$2 group=$3 mode=$4 tmp
  root_acts_in "$(dirname -- "$file")" "write $file"
  if [ -L "$file" ] || { [ -e "$file" ] && [ ! -f "$file" ]; }; then die "$file exists and is not a regular file: refused"; fi
  tmp=$(umask 077; mktemp "$(dirname -- "$file")/.pgbr-XXXXXX")
  if ! { cat > "$tmp" && chown -- "$owner:$group" "$tmp" && chmod -- "$mode" "$tmp" && mv -f -- "$tmp" "$file"; }; then
    rm -f -- "$tmp"; die "cannot write $file"
  fi
}
