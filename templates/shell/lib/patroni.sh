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
# archive_command back as the dynamic configuration held them (null: absent){% if c.archive.restore_command %}, and
# restore_command (recovery_conf) for a repository-host cluster's members{% endif %}.
PY_ARCHIVE_BEFORE='
import json, sys, yaml
conf = yaml.safe_load(sys.stdin) or {}
params = (conf.get("postgresql") or {}).get("parameters") or {}
{% if c.archive.restore_command %}recovery = (conf.get("postgresql") or {}).get("recovery_conf") or {}
print(json.dumps({"postgresql": {"parameters": {k: params.get(k) for k in ("archive_mode", "archive_command")},
                                 "recovery_conf": {"restore_command": recovery.get("restore_command")}}}))
{% else %}print(json.dumps({"postgresql": {"parameters": {k: params.get(k) for k in ("archive_mode", "archive_command")}}}))
{% endif %}'

{% if c.archive.restore_command %}# From `patronictl show-config` on stdin: the restore_command the dynamic configuration
# holds (recovery_conf), empty when none.
PY_RESTORE_COMMAND='
import sys, yaml
conf = yaml.safe_load(sys.stdin) or {}
print(((conf.get("postgresql") or {}).get("recovery_conf") or {}).get("restore_command") or "")
'
dynamic_restore_command() { patronictl_cfg show-config | patroni_python "$PY_RESTORE_COMMAND"; }

{% endif %}# True when FILE holds this cluster's block exactly as SNIPPET, with no rule before it
# (Patroni's own header comment may precede it). Patroni's files are read as the owner.
block_is_first() {  # file snippet
  local block
  block=$(hba_block "$PG_OWNER" first "$1") || return 1
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
