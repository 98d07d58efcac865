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
