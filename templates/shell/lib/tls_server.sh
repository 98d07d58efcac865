# ---- The TLS server without systemd, confined as the unit confines it.
# `pgbackrest server` loads the options its client sends: whoever holds the client
# certificate (the cluster owner) can pass --repo1-path=/any/dir and the server reads and
# writes there as the backup user. Only the OS can keep it inside the repository. Under
# systemd the unit's sandbox does (ProtectSystem=strict, ReadWritePaths=, …); here
# bubblewrap builds the same view from TLS_SANDBOX (shell/_plan.sh, decided in the plan):
# the whole file system read-only, the repository and the backup user's lock and log
# directories writable, the configuration, the server's certificate and key and the CA
# certificate readable, the backup user's home, the data directory, the state
# directories, the TLS directory (CA key, client key) and home directories out of view,
# /tmp and /var/tmp private. Then setpriv drops to the backup user with no
# supplementary group (the server needs none; the cluster's group would only add what
# the cluster owner can read anyway), no capability, no_new_privs, and a clean
# environment (root's, with any password variable, stays out).
#
# No PID namespace: pgBackRest writes its PID into lock files and `pgbackrest stop
# --force` signals that PID, which must be the host's. No --die-with-parent: it would
# kill the server when apply.sh exits. The PID to record is the server's own (bwrap
# reports it): killing it stops the server, and bwrap exits with it.

tls_server_need_bwrap() {
  command -v bwrap >/dev/null || die "bwrap not found: install the bubblewrap package (apt-get install bubblewrap / dnf install bubblewrap); without systemd, --start-tls-server confines the TLS server with it, and an unconfined server lets the cluster owner read and write every file of $BACKUP_USER"
  command -v setpriv >/dev/null || die "setpriv not found: install util-linux (it drops the TLS server to $BACKUP_USER inside the sandbox)"
}

# Starts the server in the background; prints the PID to record.
tls_server_start_confined() {
  tls_server_need_bwrap
  local uid gid
  uid=$(id -u "$BACKUP_USER") || die "user $BACKUP_USER does not exist"
  gid=$(getent group "$BACKUP_GROUP" | cut -d: -f3) || gid=""
  [ -n "$gid" ] || die "group $BACKUP_GROUP does not exist"
  local args=(--ro-bind / / --dev /dev --proc /proc --unshare-ipc --unshare-uts --unshare-cgroup-try
    --new-session --clearenv --setenv PATH /usr/sbin:/usr/bin:/sbin:/bin --setenv LANG C --chdir /)
  local i kind path required real rest parent
  for ((i = 0; i < ${#TLS_SANDBOX[@]}; i += 3)); do
    kind=${TLS_SANDBOX[i]} path=${TLS_SANDBOX[i + 1]} required=${TLS_SANDBOX[i + 2]}
    # bwrap makes a missing mount point's parents 0700 (inside a tmpfs: a lock directory
    # under the private /tmp); the server must be able to walk to what it is shown.
    case "$kind" in
      empty|read-write|read-only)
        rest=${path#/} parent=""
        while [[ $rest == */* ]]; do
          parent+="/${rest%%/*}" rest=${rest#*/}
          args+=(--perms 0755 --dir "$parent")
        done ;;
    esac
    case "$kind" in
      hidden)
        if [ -d "$path" ]; then args+=(--perms 0000 --tmpfs "$path")
        elif [ -e "$path" ]; then args+=(--ro-bind /dev/null "$path")
        fi ;;
      empty) args+=(--perms 0755 --tmpfs "$path") ;;
      private) args+=(--perms 1777 --tmpfs "$path") ;;
      read-write|read-only)
        if [ ! -e "$path" ] && [ ! -L "$path" ]; then
          [ "$required" = 0 ] || die "$path does not exist: the TLS server needs it (run apply.sh without --start-tls-server first, or see the plan)"
          continue
        fi
        # Mounted by path as root: a link anywhere in it would mount what it points to.
        real=$(realpath -e -- "$path") || real=""
        if [ "$real" != "$path" ]; then
          die "$path is or goes through a symbolic link (to ${real:-nowhere}): refusing to mount it into the TLS server's sandbox"
        fi
        if [ "$kind" = read-write ]; then
          if [ ! -d "$path" ] || [ "$(stat -c %u -- "$path")" != "$uid" ]; then
            die "$path is not a directory owned by $BACKUP_USER: refusing to make it writable for the TLS server"
          fi
          args+=(--bind "$path" "$path")
        else
          # A file, or a directory of root's (the passphrase's include path, listed by pgBackRest).
          if [ -d "$path" ]; then
            [ "$(stat -c %u -- "$path")" = 0 ] || die "$path is a directory that does not belong to root: refusing to mount it into the TLS server's sandbox"
          else
            [ -f "$path" ] || die "$path is not a regular file: the TLS server reads it"
          fi
          args+=(--ro-bind "$path" "$path")
        fi ;;
      *) die "unknown sandbox entry kind '$kind' for $path" ;;
    esac
  done
{% if c.host_role == "database" %}  # A database host of a repository-host cluster: the server reads PGDATA for the
  # repository host's backup, so it keeps the backup user's groups (setpriv
  # --init-groups: the cluster's group, read only).
{% endif %}  local info="$STATE_TLS_SERVER_INFO" log="$STATE_TLS_SERVER_LOG"
  : > "$info"
  touch "$log"; chmod 0600 "$log"
  # Only stdin/out/err and the info descriptor reach bwrap: nothing root has open leaks
  # into the server.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      case "$fd" in 0|1|2) ;; *[!0-9]*) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
    done
    exec setsid bwrap --info-fd 3 "${args[@]}" -- \
      setpriv --reuid="$uid" --regid="$gid" {% if c.host_role == "database" %}--init-groups{% else %}--clear-groups{% endif %} --no-new-privs --bounding-set=-all --inh-caps=-all -- \
      "$PGBACKREST" --config="$REPO_CONF" server 3>"$info" </dev/null >/dev/null 2>>"$log"
  ) &
  local launcher=$! pid="" tries
  for ((tries = 0; tries < 100; tries++)); do
    pid=$(sed -n 's/.*"child-pid": *\([0-9][0-9]*\).*/\1/p' "$info" 2>/dev/null) || pid=""
    [ -z "$pid" ] || break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$info"
  [ -n "$pid" ] || die "bwrap did not start the TLS server: $(tail -n 5 "$log" 2>/dev/null | tr '\n' ' ')"
  printf '%s\n' "$pid"
}
