# ---- Generated files installed on the host (plan: installed_files), as root: each goes
# ---- into a directory no other user can write (checked on the real host before the
# ---- first byte), as a temporary file renamed into place, then its owner and mode.

# Calls FUNCTION step source target owner group mode for each installed file of STEP
# (every file without a step).
for_installed_files() {  # function [step]
  local i
  for ((i = 0; i < ${#INSTALLED_FILES[@]}; i += 6)); do
    if [ -n "${2:-}" ] && [ "${INSTALLED_FILES[i]}" != "$2" ]; then continue; fi
    "$1" "${INSTALLED_FILES[@]:i:6}" || return
  done
}

# One installed file: written when its content differs, then owner, group and mode.
install_file() {  # step source target owner group mode
  local src="$ARTIFACTS/$2" target=$3 owner=$4 group=$5 mode=$6 dir tmp drift
  dir=$(dirname -- "$target")
  if [ ! -d "$dir" ]; then
    make_parents "$dir"
    change mkdir -m 0755 -- "$dir"
  fi
  if [ "$DRY_RUN" = 0 ] || [ -d "$dir" ]; then root_acts_in "$dir" "install $target"; fi
  if [ -L "$target" ] || { [ -e "$target" ] && [ ! -f "$target" ]; }; then
    die "$target exists and is not a regular file: refused"
  fi
  if [ ! -f "$target" ] || ! cmp -s -- "$src" "$target"; then
    if [ "$DRY_RUN" = 1 ]; then
      CHANGES=$((CHANGES + 1)); say "would install $target"
      if [ -f "$target" ]; then diff -u -- "$target" "$src" | sed 's/^/    /' || true; fi
      return 0
    fi
    tmp=$(mktemp "$dir/.pgbr-XXXXXX")
    if ! { cat -- "$src" > "$tmp" && chown -- "$owner:$group" "$tmp" && chmod -- "$mode" "$tmp" && mv -f -- "$tmp" "$target"; }; then
      rm -f -- "$tmp"; die "cannot install $target"
    fi
    CHANGES=$((CHANGES + 1)); say "installed $target"
    FILES_CHANGED+=("$target")
    return 0
  fi
  drift=$(path_drift "$target" "$owner" "$group" "$mode")
  case "$drift" in *owner*|*group*) change chown -- "$owner:$group" "$target" ;; esac
  case "$drift" in *mode*) change chmod -- "$mode" "$target" ;; esac
  return 0
}
FILES_CHANGED=()

# rollback.sh: an installed file removed (its directory is root's: checked first).
remove_installed_file() {  # step source target owner group mode
  local target=$3
  [ -e "$target" ] || [ -L "$target" ] || return 0
  root_acts_in "$(dirname -- "$target")" "remove $target"
  change rm -f -- "$target"
}

# verify.sh: content and owner/mode of an installed file.
verify_installed_file() {  # step source target owner group mode
  check "$3 is the generated one ($4:$5 $6)" installed_file_matches "$@"
}
installed_file_matches() {
  [ -f "$3" ] && [ ! -L "$3" ] && cmp -s -- "$ARTIFACTS/$2" "$3" && [ -z "$(path_drift "$3" "$4" "$5" "$6")" ]
}
