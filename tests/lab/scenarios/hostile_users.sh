#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2016,SC2094  # sh -c scripts take their values as "$1"...; the sentinel list is read, never written, while it is walked
#
# hostile_users.sh - the confined users attack root's artifacts (issue 12, "Tests").
# A PostgreSQL 15 cluster with every path moved (hba_file/ident_file in a directory of
# the cluster owner, as Debian's /etc/postgresql/<v>/<c>), scram-sha-256 with a root-only
# password file (shell and Ansible), backup_user.ssh_key, and a peer policy for the
# Patroni hook. With fs.protected_symlinks=0 and fs.protected_hardlinks=0 (restored at
# the end, also on failure) so that the kernel's guard hides no bug.
#
# Root-only sentinels (files 0600 and directories 0700 under /etc and /root, random
# content; one directory 0750/0640 for rollback's g-rwx; one of the cluster owner's for
# the hook) are the targets. The confined users (cluster owner, backup user, an unrelated
# user) plant symlinks, hardlinks and pre-created entries where they can write (the
# backup user's home, the repository, lock/log/spool directories, /tmp, the hba
# directory, PGDATA's pg_tblspc and pg_wal), and racers (runuser, bounded in time,
# stopped by PID) swap path components while root runs: apply.sh stage by stage (one
# plant group per stage, in the order of apply.sh's steps, so that a refusal of one
# does not hide the next), verify.sh, rollback.sh, apply.sh again, the Ansible role,
# and the Patroni hook as the cluster owner. A client holding the owner's TLS
# certificate tries to read the backup user's home through the TLS server.
#
# Each run: one line "run:<name>" (succeeded, or refused with an error naming a path);
# then one line per sentinel (owner, group, mode, sha256 of it and of every entry in it,
# and no new entry) and one line "no-leak" (no sentinel's content in a file a confined
# user can read). The sentinels are put back after each check, so each line speaks of
# one run.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

# --- the kernel's guards off for the scenario, and back afterwards ---
hu_sysctl_off() {
  printf '%s %s\n' "$(sysctl -n fs.protected_symlinks)" "$(sysctl -n fs.protected_hardlinks)" > "$LAB/hostile-sysctl.before"
  sysctl -qw fs.protected_symlinks=0 fs.protected_hardlinks=0
}
hu_sysctl_restore() {
  local s h
  [ -f "$LAB/hostile-sysctl.before" ] || return 0
  read -r s h < "$LAB/hostile-sysctl.before"
  sysctl -qw fs.protected_symlinks="$s" fs.protected_hardlinks="$h" && rm -f "$LAB/hostile-sysctl.before"
}

# --- sentinels: "kind path owner group mode" lines in $D/sentinels; files get a token ---
hu_sentinel() {  # kind path owner group mode
  printf '%s %s %s %s %s\n' "$@" >> "$D/sentinels"
}
# Puts every sentinel back as specified (in place: a hardlink planted to one stays one).
hu_sentinels_reset() {
  local kind path owner group mode token dir
  while read -r kind path owner group mode; do
    case "$kind" in
      dir)
        if [ -L "$path" ] || { [ -e "$path" ] && [ ! -d "$path" ]; }; then rm -f "$path"; fi
        mkdir -p "$path"
        # Entries that are not sentinels (ssh-keygen's, a plant's) go.
        find "$path" -mindepth 1 -maxdepth 1 -print0 | while IFS= read -r -d '' e; do
          grep -qF " $e " "$D/sentinels" || rm -rf "$e"
        done ;;
      file)
        if [ -L "$path" ] || { [ -e "$path" ] && [ ! -f "$path" ]; }; then rm -rf "$path"; fi
        token=$(sed -n "s|^$path ||p" "$D/sentinel-tokens")
        dir=$(dirname "$path")
        [ -d "$dir" ] || mkdir -p "$dir"
        printf 'pgbr-lab sentinel %s %s\n' "$path" "$token" > "$path" ;;
    esac
    chown -h "$owner:$group" "$path"
    chmod "$mode" "$path"
  done < "$D/sentinels"
}
# Owner, group, mode (and content) of a path and, for a directory, of every entry in it.
hu_sentinel_state() {
  local p=$1 e
  if [ -L "$p" ]; then printf 'symlink->%s' "$(readlink "$p")"; return; fi
  [ -e "$p" ] || { printf missing; return; }
  stat -c '%U:%G:%a' "$p" | tr -d '\n'
  if [ -f "$p" ]; then printf ':%s' "$(sha256sum < "$p" | cut -c1-16)"; fi
  if [ -d "$p" ]; then
    for e in "$p"/* "$p"/.[!.]*; do
      if [ -e "$e" ] || [ -L "$e" ]; then printf ' %s=' "${e##*/}"; hu_sentinel_state "$e"; fi
    done
  fi
}

# One line per top-level sentinel, one for leaks; then every sentinel is put back.
hu_check() {  # run-name
  local run=$1 name path now
  while read -r name path; do
    now=$(hu_sentinel_state "$path")
    if [ "$now" = "${HU_BASE[$name]}" ]; then
      result ok "$run:sentinel-$name" 0
    else
      printf -- '--- sentinel %s (%s) after %s\n    before: %s\n    after:  %s\n' "$name" "$path" "$run" "${HU_BASE[$name]}" "$now" >> "$LOG"
      result FAIL "$run:sentinel-$name" 0 "$path changed: now $(cut -c1-180 <<<"$now")"
    fi
  done < "$D/sentinel-roots"
  # The live pg_hba.conf: a regular file of the cluster owner, without a sentinel's
  # content (root once wrote it root-only 0600 from a sentinel it had read).
  local hba_state
  hba_state=$(stat -c '%F %U:%G %a' "$H/pg_hba.conf" 2>&1)
  if [ "$hba_state" = "symbolic link $HU_OWNER:$HU_OWNER 777" ]; then
    result ok "$run:hba-file-intact" 0 "still the planted symlink"
  elif [ "$hba_state" = "regular file $HU_OWNER:$HU_OWNER 640" ] && ! grep -qF -f "$D/tokens" "$H/pg_hba.conf"; then
    result ok "$run:hba-file-intact" 0
  else
    result FAIL "$run:hba-file-intact" 0 "$H/pg_hba.conf: $hba_state$(grep -qF -f "$D/tokens" "$H/pg_hba.conf" 2>/dev/null && echo ", holds a sentinel's content")"
  fi
  # A sentinel's content in a file that a confined user owns or that is group/other
  # readable, in any place they can reach (a hardlink planted to a sentinel is the
  # sentinel itself: same inode, skipped).
  local leaks
  leaks=$(hu_leaks)
  if [ -z "$leaks" ]; then
    result ok "$run:no-leak" 0
  else
    printf -- '--- leaks after %s:\n%s\n' "$run" "$leaks" >> "$LOG"
    result FAIL "$run:no-leak" 0 "sentinel content in: $(tr '\n' ' ' <<<"$leaks" | cut -c1-200)"
  fi
  hu_sentinels_reset
}
hu_leaks() {
  local inodes areas=() a f
  inodes=$(while read -r _ path _; do stat -c '%d:%i' "$path" 2>/dev/null; done < "$D/sentinels" | sort -u)
  for a in "$D/home-bkp" "$D/repo" "$D/var" "$D/owner-var" "$D/bkp-var" "$D/hba" "$D/pg" "$D/owner-wal" "$D/tls" "$D/conf" \
    "$HU_TMP_LOCK" "$HU_TMP_LOCK.lab-aside"; do
    if [ -d "$a" ] && [ ! -L "$a" ]; then areas+=("$a"); fi
  done
  [ "${#areas[@]}" -gt 0 ] || return 0
  find "${areas[@]}" -xdev -type f \( ! -user root -o -perm /044 \) -print0 2>/dev/null |
    xargs -0 -r grep -lF -f "$D/tokens" 2>/dev/null |
    while IFS= read -r f; do
      grep -qxF "$(stat -c '%d:%i' "$f")" <<<"$inodes" || printf '%s (%s)\n' "$f" "$(stat -c '%U:%G %a' "$f")"
    done
}

# --- runs: succeeded, or refused with an error that names a path ---
hu_run() {  # name command...
  local name=$1 start out rc line; shift
  start=$(now)
  echo "--- run $name: $*" >> "$LOG"
  out=$("$@" 2>&1 </dev/null); rc=$?
  printf '%s\n--- exit %s\n' "$out" "$rc" >> "$LOG"
  if [ "$rc" = 0 ]; then
    result ok "run:$name" "$(elapsed "$start")" "succeeded"
    return 0
  fi
  # Ansible: the failed task's stderr and message, from its JSON.
  local fatal
  fatal=$(grep -m1 '^fatal: .*=> {' <<<"$out" | sed 's/^[^{]*//')
  if [ -n "$fatal" ]; then
    out=$(python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("stderr") or ""); print(d.get("msg") or "")' <<<"$fatal" 2>/dev/null) || out=$fatal
  fi
  # A refusal first, then the script's own error ([step] ERROR: ...), then the first
  # error-like line.
  line=$(grep -Ei 'refus' <<<"$out" | grep -v -e '] changing:' -e '] would run:' | grep / | head -n 1)
  [ -n "$line" ] || line=$(grep -E '^\[[^]]*\] ERROR:' <<<"$out" | head -n 1)
  [ -n "$line" ] || line=$(grep -E 'ERROR|error:|fatal:|FAILED|Permission denied' <<<"$out" | head -n 1)
  [ -n "$line" ] || line=$(tail -n 1 <<<"$out")
  # Ansible: the message, not the JSON around it.
  case "$line" in *'"msg": "'*) line=$(sed -e 's/.*"msg": "//' -e 's/", ".*//' <<<"$line") ;; esac
  line=${line//$'\t'/ }
  if [[ "$line" == */* ]]; then
    result ok "run:$name" "$(elapsed "$start")" "stopped (exit $rc): ${line:0:220}"
  else
    result FAIL "run:$name" "$(elapsed "$start")" "failed (exit $rc) without naming a path: ${line:0:220}"
  fi
}

# --- racers: a loop of a confined user, bounded in time, stopped by PID ---
hu_racer_start() {  # name user seconds directory target names...
  local name=$1 user=$2 i; shift 2
  local dir="$D/racer-$name"
  install -d -o "$user" -g "$user" -m 0700 "$dir"
  register_pidfile "$dir/pid"
  setsid runuser -u "$user" -- sh -c 'echo $$ > "$1/pid"; shift; exec "$@"' sh "$dir" /usr/bin/python3 -c "$HU_RACER_PY" "$@" \
    </dev/null >>"$D/racer-$name.log" 2>&1 &
  for ((i = 0; i < 50; i++)); do [ -s "$dir/pid" ] && return 0; sleep 0.1; done
  result FAIL "racer-$name" 0 "the racer did not start"
}
hu_racer_stop() {  # name
  stop_pidfile "$D/racer-$1/pid" 10
  echo "--- racer $1: $(tail -n 1 "$D/racer-$1.log" 2>/dev/null)" >> "$LOG"
}

# A racer: the confined user exchanges each NAME in DIR with a symlink to TARGET and
# back, atomically (renameat2 RENAME_EXCHANGE: never a moment without the name), at
# random moments, for up to SECONDS or until SIGTERM; then puts everything back. When
# root replaced a NAME meanwhile (a new file where the symlink was), root's file stays.
HU_RACER_PY='
import ctypes, os, random, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def xchg(a, b):
    return libc.renameat2(-100, a.encode(), -100, b.encode(), 2) == 0
secs, d, target, names = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
os.chdir(d)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
def link(name): return name + ".lab-link"
for name in names:
    if not os.path.lexists(link(name)):
        os.symlink(target, link(name))
swapped, n, end = set(), 0, time.time() + secs
def back(name):
    if os.path.islink(name):
        xchg(name, link(name))
    else:  # root replaced the symlink: its file stays, the old one goes
        os.remove(link(name)); os.symlink(target, link(name))
    swapped.discard(name)
while not stop and time.time() < end:
    name = random.choice(names)
    if name in swapped:
        back(name)
    elif os.path.lexists(name) and not os.path.islink(name) and xchg(name, link(name)):
        swapped.add(name); n += 1
    time.sleep(random.uniform(0.0002, 0.002))
for name in list(swapped):
    back(name)
for name in names:
    if os.path.islink(link(name)):
        os.remove(link(name))
print("racer: %d swaps of %s" % (n, " ".join(names)))
'

# --- plants, as the user who can write there ---
as() { local u=$1; shift; runuser -u "$u" -- "$@"; }
# USER puts a symlink at LINK to TARGET; whatever was there is kept as LINK.lab-aside.
hu_plant_link() {  # user link target
  as "$1" sh -c 'if [ -e "$1" ] || [ -L "$1" ]; then mv -T "$1" "$1.lab-aside"; fi; ln -s "$2" "$1"' sh "$2" "$3"
}
hu_unplant_link() {  # user link
  as "$1" sh -c 'if [ -L "$1" ]; then rm -f "$1"; fi; if [ -e "$1.lab-aside" ] || [ -L "$1.lab-aside" ]; then mv -T "$1.lab-aside" "$1"; fi' sh "$2"
}

scenario_hostile_users() {
  hu_sysctl_off || { result FAIL sysctl 0 "cannot set fs.protected_symlinks/hardlinks"; return; }
  result ok sysctl-guards-off 0 "fs.protected_symlinks=0 fs.protected_hardlinks=0 (was $(cat "$LAB/hostile-sysctl.before"))"
  trap 'hu_sysctl_restore' EXIT
  trap 'exit 130' INT TERM
  hu_main
  hu_sysctl_restore
  expect sysctl-restored "fs.protected_* not restored" [ ! -e "$LAB/hostile-sysctl.before" ]
  trap - EXIT
}

# --- plants and the policy (they read hu_main's locals: D, H, PGD, owner, bkp, ...) ---
hu_policy() {  # backup user lock, log; cluster owner lock, log, spool
  cat <<YAML
version: 1
clusters:
  - name: $cluster
    postgres:
      major: 15
      data_directory: $PGD
      owner: $owner
      socket_directory: $D/sock
      port: $port
      bin_directory: $bin
      hba_file: $H/pg_hba.conf
      ident_file: $H/pg_ident.conf
    backup_user: {name: $bkp, home: $D/home-bkp, ssh_key: true}
    role: {name: $role, auth: scram-sha-256, password_file: $D/password}
    pgbackrest:
      stanza: $stanza
      version: "2.45"
      repository: $D/repo
      tls: {port: $tls_port, directory: $D/tls}
      config: {repository_side: $D/conf/repository.conf, database_side: $D/conf/database.conf}
      backup_user_paths: {lock: $1, log: $2}
      owner_paths: {lock: $3, log: $4, spool: $5}
YAML
}

# B. paths: lock/log/spool directories pre-created as symlinks to a root directory,
# by their owners; the one under /tmp by an unrelated user.
hu_plant_paths() {
  hu_plant_link "$owner" "$D/owner-var/lock" "$D4" && hu_plant_link "$owner" "$D/owner-var/log" "$D4" &&
    hu_plant_link "$owner" "$D/owner-var/spool" "$D4" && hu_plant_link "$bkp" "$D/bkp-var/log" "$D4" || return 1
  if [ "$paths_lock" = "$HU_TMP_LOCK" ]; then
    if [ -e "$HU_TMP_LOCK" ]; then as "$bkp" mv -T "$HU_TMP_LOCK" "$HU_TMP_LOCK.lab-aside" || return 1; fi
    as "$other" ln -s "$D4" "$HU_TMP_LOCK"
  else
    hu_plant_link "$bkp" "$paths_lock" "$D4"
  fi
}

hu_unplant_paths() {
  hu_unplant_link "$owner" "$D/owner-var/lock"; hu_unplant_link "$owner" "$D/owner-var/log"
  hu_unplant_link "$owner" "$D/owner-var/spool"; hu_unplant_link "$bkp" "$D/bkp-var/log"
  if [ "$paths_lock" != "$HU_TMP_LOCK" ]; then hu_unplant_link "$bkp" "$paths_lock"; fi
  if [ -L "$HU_TMP_LOCK" ]; then as "$other" rm -f "$HU_TMP_LOCK"; fi
  if [ -d "$HU_TMP_LOCK.lab-aside" ]; then as "$bkp" mv -T "$HU_TMP_LOCK.lab-aside" "$HU_TMP_LOCK"; fi
}

# C. the repository as a previous layout left it (the article's: archive/ of the
# cluster owner, backup/ of the backup user). The owner plants a symlink and a
# hardlink to root files; the backup user races a directory holding the owner's files.
hu_repo_layout() {
  install -d -o "$bkp" -g "$bkp" -m 0755 "$D/repo" "$D/repo/backup"
  install -d -o "$owner" -g "$owner" -m 0750 "$D/repo/archive"
  chown "$bkp:$bkp" "$D/repo" "$D/repo/backup"; chmod 0755 "$D/repo" "$D/repo/backup"
  chown "$owner:$owner" "$D/repo/archive"
}

HU_RACE_DIRS=(lab-race1 lab-race2 lab-race3 lab-race4 lab-race5 lab-race6 lab-race7 lab-race8)
hu_plant_repo() {
  hu_repo_layout
  as "$owner" sh -c 'rm -f "$1/lab-link" "$1/lab-hardlink"; ln -s "$2" "$1/lab-link" && ln "$2" "$1/lab-hardlink"' sh "$D/repo/archive" "$F1" || return 1
  # Directories of the backup user (open to the owner) holding files of the owner named
  # like the sentinel directory's: root hands them over by path, the racer swaps the
  # directories with symlinks to the sentinel directory.
  as "$bkp" sh -c 'cd "$1" && rm -rf lab-race* && shift && mkdir "$@" && chmod 0777 "$@"' sh "$D/repo/backup" "${HU_RACE_DIRS[@]}" || return 1
  as "$owner" sh -c 'cd "$1" && shift && for d in "$@"; do for f in secret key; do echo "the owner'"'"'s $f" > "$d/$f"; done; done' sh "$D/repo/backup" "${HU_RACE_DIRS[@]}"
}
# The harness (root) takes the repository's plants away between stages.
hu_unplant_repo() {
  rm -rf "$D/repo/archive/lab-link" "$D/repo/archive/lab-hardlink" "$D/repo/backup/lab-hardlink-bkp" "$D/repo/backup"/lab-race*
}
hu_plant_pgdata() {
  as "$owner" sh -c 'ln -sfn "$2" "$1/99999" && ln -sfn "$3" "$1/99998"' sh "$PGD/pg_tblspc" "$D1" "$D6"
}

hu_unplant_pgdata() { as "$owner" rm -f "$PGD/pg_tblspc/99999" "$PGD/pg_tblspc/99998"; }

# F. pg_hba: files named like the splice's temporary files pre-created (symlinks to a
# root file) in the hba directory, and the owner racing pg_hba.conf with a symlink.
hu_plant_hba_tmp() {
  as "$owner" sh -c 'cd "$1" && for n in .pgbr-XXXXXX .pgbr-tmp pg_hba.conf.new pg_hba.conf.tmp .pg_hba.conf.pgbr pg_ident.conf.new; do ln -sfn "$2" "$n"; done' sh "$H" "$F3"
}

hu_unplant_hba_tmp() {
  as "$owner" sh -c 'cd "$1" && for n in .pgbr-XXXXXX .pgbr-tmp pg_hba.conf.new pg_hba.conf.tmp .pg_hba.conf.pgbr pg_ident.conf.new; do if [ -L "$n" ]; then rm -f "$n"; fi; done' sh "$H"
}

# After the symlink plant: the owner's own pg_hba.conf back (whatever the run left there).
hu_hba_restore() {
  as "$owner" sh -c 'cd "$1" && if [ -L pg_hba.conf ] || [ ! -O pg_hba.conf ]; then rm -f pg_hba.conf; fi; if [ -e pg_hba.conf.lab-aside ]; then mv -fT pg_hba.conf.lab-aside pg_hba.conf; fi' sh "$H"
}
# pg_hba.conf back to a regular file of the owner (from the last good copy when the
# run left it unreadable), and reloaded.
hu_hba_sane() {
  as "$owner" sh -c 'cd "$1" && if [ -L pg_hba.conf ] || [ ! -f pg_hba.conf ] || [ ! -O pg_hba.conf ]; then cp .lab-good .lab-new && mv -fT .lab-new pg_hba.conf; fi' sh "$H"
  "${q[@]}" postgres -c "SELECT pg_reload_conf()" >/dev/null
}

hu_main() {
  local D="$LAB/$SCENARIO" bin=/usr/lib/postgresql/15/bin
  local owner=pgbrlabho bkp=pgbrlabhb other=pgbrlabhx role=lab_hostile_bkp stanza=labhostile cluster=lab-hostile
  local port=55460 tls_port=18660 tag
  [ -x "$bin/initdb" ] || { result FAIL binaries 0 "$bin/initdb missing (postgresql-15)"; return; }
  if ! command -v ansible-playbook >/dev/null || ! /usr/bin/python3 -c 'import psycopg2' 2>/dev/null; then
    step install-ansible env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible python3-psycopg2 || return
  fi
  install -d -m 0755 "$D"
  tag=$(basename "$LAB" | tr -dc 'A-Za-z0-9')
  HU_TMP_LOCK=/tmp/pgbr-lab-hostile-bkp
  local H="$D/hba" PGD="$D/pg/data"
  HU_OWNER=$owner
  printf '%s\n' "$HU_TMP_LOCK" "$HU_TMP_LOCK.lab-aside" "/run/pgbr-lab-hostile-bkp" >> "$LAB/tmp-paths"

  # --- users: the cluster owner, the backup user (exists, its home its own), another ---
  lab_user "$owner"
  lab_user "$bkp" --home-dir "$D/home-bkp"
  lab_user "$other"
  install -d -o "$bkp" -g "$bkp" -m 0750 "$D/home-bkp"
  install -d -o "$owner" -g "$owner" -m 0750 "$D/pg"
  install -d -o "$owner" -g "$owner" -m 0755 "$D/sock" "$D/owner-var" "$D/owner-wal" "$H"
  install -d -o "$bkp" -g "$bkp" -m 0755 "$D/bkp-var"
  install -d -m 0755 "$D/var"

  # --- sentinels ---
  local F1="/etc/pgbr-sentinel-$tag.conf" F2="/etc/pgbr-sentinel-$tag.pgpass" F3="/etc/pgbr-sentinel-$tag.hba"
  local F4="/etc/pgbr-sentinel-$tag.bkp" D1="/etc/pgbr-sentinel-$tag.d" D2="/etc/pgbr-sentinel-$tag.race"
  local D3="/etc/pgbr-sentinel-$tag.ssh" D4="/root/pgbr-sentinel-$tag.locks" D5="$D/owner-private"
  local D6="/etc/pgbr-sentinel-$tag.grp" F5="/etc/pgbr-sentinel-$tag.key"
  printf '%s\n' "$F1" "$F2" "$F3" "$F4" "$F5" "$D1" "$D2" "$D3" "$D4" "$D6" >> "$LAB/tmp-paths"
  : > "$D/sentinels"
  hu_sentinel file "$F1" root root 0600; hu_sentinel file "$F2" root root 0600
  hu_sentinel file "$F3" root root 0600; hu_sentinel file "$F4" root root 0600; hu_sentinel file "$F5" root root 0600
  hu_sentinel dir "$D1" root root 0700; hu_sentinel file "$D1/secret" root root 0600
  hu_sentinel dir "$D2" root root 0700; hu_sentinel file "$D2/secret" root root 0600; hu_sentinel file "$D2/key" root root 0600
  hu_sentinel dir "$D3" root root 0700; hu_sentinel file "$D3/authorized_keys" root root 0600
  hu_sentinel dir "$D4" root root 0700; hu_sentinel file "$D4/data" root root 0600
  hu_sentinel dir "$D5" "$owner" "$owner" 0700; hu_sentinel file "$D5/private" "$owner" "$owner" 0600
  hu_sentinel dir "$D6" root root 0750; hu_sentinel file "$D6/shadow" root root 0640
  printf '%s\n' "hardlink $F1" "pgpass $F2" "hba $F3" "bkp-hardlink $F4" "tblspc $D1" "race $D2" "ssh $D3" \
    "locks $D4" "owner-private $D5" "group-read $D6" "tls-key $F5" > "$D/sentinel-roots"
  local kind path
  : > "$D/sentinel-tokens"
  while read -r kind path _; do
    if [ "$kind" = file ]; then printf '%s %s\n' "$path" "$(openssl rand -hex 16)" >> "$D/sentinel-tokens"; fi
  done < "$D/sentinels"
  cut -d' ' -f2 "$D/sentinel-tokens" > "$D/tokens"
  local bkp_token; bkp_token=$(openssl rand -hex 16)
  hu_sentinels_reset
  declare -gA HU_BASE=()
  local name
  while read -r name path; do HU_BASE[$name]=$(hu_sentinel_state "$path"); done < "$D/sentinel-roots"
  expect sentinels-made "a sentinel is missing: $(grep -c missing <<<"${HU_BASE[*]}")" bash -c '! grep -q missing <<<"$1"' sh "${HU_BASE[*]}"
  # A secret of the backup user's own, for the TLS client below.
  ( umask 077; echo "pgbr-lab backup user's secret $bkp_token" > "$D/home-bkp/bkp-secret" )
  chown "$bkp:$bkp" "$D/home-bkp/bkp-secret"

  # --- the cluster: group access, pg_wal linked (as initdb -X does), hba files in a
  # --- directory of the owner, archive_mode on from the start (no restart needed) ---
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$PGD" -X "$D/owner-wal/wal" -A peer -U "$owner" --no-sync --allow-group-access || return
  as "$owner" cp -p "$PGD/pg_hba.conf" "$PGD/pg_ident.conf" "$H/"
  as "$owner" cp -p "$H/pg_hba.conf" "$H/.lab-good"
  step start pg_start "$owner" "$bin" "$PGD" "$port" "$D/sock" \
    "-c archive_mode=on -c hba_file=$H/pg_hba.conf -c ident_file=$H/pg_ident.conf" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  step owner-connects "${q[@]}" postgres -c "SELECT 1" || return
  # The data directory 0700 on disk (the running server keeps 0750): apply.sh records
  # it and rollback.sh takes group access back (its find over the tablespaces).
  chmod 0700 "$PGD"

  # --- the policy: every path moved; scram with a root-only password file ---
  ( umask 077; printf 'lab-%s-pw\n' "$(openssl rand -hex 12)" > "$D/password" )
  # The main policy: pgBackRest's lock/log/spool directories in a root directory.
  hu_policy "$D/var/lock-bkp" "$D/var/log-bkp" "$D/var/lock-owner" "$D/var/log-owner" "$D/var/spool-owner" > "$D/policy.yaml"
  register_cluster "$cluster"
  step generate "$PGBR" generate "$D/policy.yaml" --out "$D/out" || return
  # The paths policy (same cluster, for the paths stages only): lock/log/spool in
  # directories their users own, the backup user's lock under /tmp if validation lets it.
  local paths_lock=$HU_TMP_LOCK gen_out
  hu_policy "$paths_lock" "$D/bkp-var/log" "$D/owner-var/lock" "$D/owner-var/log" "$D/owner-var/spool" > "$D/policy-paths.yaml"
  if gen_out=$("$PGBR" generate "$D/policy-paths.yaml" --out "$D/out-paths" 2>&1); then
    result ok generate-paths 0 "accepted the lock directory $paths_lock under /tmp"
  else
    printf '%s\n' "$gen_out" >> "$LOG"
    paths_lock=$D/bkp-var/lock
    hu_policy "$paths_lock" "$D/bkp-var/log" "$D/owner-var/lock" "$D/owner-var/log" "$D/owner-var/spool" > "$D/policy-paths.yaml"
    step generate-paths-no-tmp "$PGBR" generate "$D/policy-paths.yaml" --out "$D/out-paths" || return
    result ok generate-paths 0 "refused the lock directory under /tmp ($(grep -m1 error <<<"$gen_out" | cut -c1-160)); $paths_lock instead"
  fi
  local tree="$D/out/$cluster"
  # Validation: root-managed paths inside a directory another user can write.
  local bad what
  while IFS='|' read -r what bad; do
    sed -e "s|^      ${bad%%:*}: .*|      $bad|" "$D/policy.yaml" > "$D/policy-bad.yaml"
    if cmp -s "$D/policy.yaml" "$D/policy-bad.yaml"; then result FAIL "validation-refuses-$what" 0 "the lab's sed changed nothing"; continue; fi
    denied "validation-refuses-$what" 'home|repositor|writ|owned|another user|inside|overlaps' \
      "$PGBR" generate "$D/policy-bad.yaml" --out "$D/out-bad"
  done <<LIST
tls-dir-in-backup-home|tls: {port: $tls_port, directory: $D/home-bkp/tls}
config-in-repository|config: {repository_side: $D/repo/etc/repository.conf, database_side: $D/conf/database.conf}
config-in-data-directory|config: {repository_side: $D/conf/repository.conf, database_side: $PGD/conf/database.conf}
LIST

  local apply=(env PGBR_POLICY="$PGBR" "$tree/shell/apply.sh" --start-tls-server)

  # === apply.sh, one plant group per stage, in the order of its steps ===
  # A. ssh-key: ~/.ssh a symlink to a root directory.
  step plant:ssh hu_plant_link "$bkp" "$D/home-bkp/.ssh" "$D3"
  hu_run apply-ssh "${apply[@]}"
  hu_check apply-ssh
  hu_unplant_link "$bkp" "$D/home-bkp/.ssh"

  step plant:paths hu_plant_paths
  hu_run apply-paths env PGBR_POLICY="$PGBR" "$D/out-paths/$cluster/shell/apply.sh" --start-tls-server
  hu_check apply-paths
  hu_unplant_paths

  step plant:repository hu_plant_repo
  hu_racer_start repo "$bkp" 60 "$D/repo/backup" "$D2" "${HU_RACE_DIRS[@]}"
  hu_run apply-repository "${apply[@]}"
  hu_racer_stop repo
  hu_check apply-repository
  hu_unplant_repo

  step plant:pgdata hu_plant_pgdata
  hu_run apply-pgdata "${apply[@]}"
  hu_check apply-pgdata
  hu_unplant_pgdata

  # E. password: ~/.pgpass a symlink to a root file.
  step plant:pgpass hu_plant_link "$bkp" "$D/home-bkp/.pgpass" "$F2"
  hu_run apply-pgpass "${apply[@]}"
  hu_check apply-pgpass
  hu_unplant_link "$bkp" "$D/home-bkp/.pgpass"

  step plant:hba-temporary-names hu_plant_hba_tmp
  hu_racer_start hba "$owner" 60 "$H" "$F3" pg_hba.conf
  hu_run apply-hba-race "${apply[@]}"
  hu_racer_stop hba
  hu_check apply-hba-race
  hu_hba_sane

  # G. pg_hba.conf replaced by a symlink to a root file after the server started.
  step plant:hba-symlink hu_plant_link "$owner" "$H/pg_hba.conf" "$F3"
  hu_run apply-hba-symlink "${apply[@]}"
  hu_check apply-hba-symlink
  hu_hba_restore
  hu_hba_sane
  hu_unplant_hba_tmp

  # H. the TLS directory in a directory of the cluster owner (validation may refuse it):
  # the owner makes it first, with the key and certificate names linked to a root file.
  sed -e "s|^      tls: .*|      tls: {port: $tls_port, directory: $D/owner-var/tls}|" "$D/policy.yaml" > "$D/policy-tls.yaml"
  if gen_out=$("$PGBR" generate "$D/policy-tls.yaml" --out "$D/out-tls" 2>&1); then
    result ok generate-tls-in-owner-directory 0 "accepted"
    step plant:tls-directory as "$owner" sh -c 'mkdir -m 0755 "$1" && cd "$1" && for n in ca.key ca.crt server.key.new server.crt.new client.key.new client.crt.new .pgbr-request.csr; do ln -s "$2" "$n"; done' sh "$D/owner-var/tls" "$F5"
    hu_run apply-tls-directory env PGBR_POLICY="$PGBR" "$D/out-tls/$cluster/shell/apply.sh" --start-tls-server
    hu_check apply-tls-directory
    rm -rf "$D/owner-var/tls"
  else
    printf '%s\n' "$gen_out" >> "$LOG"
    result ok generate-tls-in-owner-directory 0 "refused: $(grep -m1 error <<<"$gen_out" | cut -c1-160)"
  fi

  # --- nothing planted: apply.sh must converge (the baseline for what follows) ---
  step apply-clean "${apply[@]}"
  hu_check apply-clean

  # === verify.sh (read-only) with the tablespace links and .pgpass planted ===
  hu_plant_pgdata
  hu_plant_link "$bkp" "$D/home-bkp/.pgpass" "$F2"
  local vout vrc
  vout=$("$tree/shell/verify.sh" 2>&1); vrc=$?
  printf -- '--- run verify\n%s\n--- exit %s\n' "$vout" "$vrc" >> "$LOG"
  result ok run:verify 0 "exit $vrc: $(grep '^FAIL' <<<"$vout" | tr '\n' ';' | cut -c1-200)"
  hu_check verify
  hu_unplant_link "$bkp" "$D/home-bkp/.pgpass"

  # === the TLS server: a client with the owner's certificate reads outside the repository ===
  if [ ! -f "$D/conf/database.conf" ]; then
    result FAIL tls-client-cannot-read-backup-home 0 "not tested: $D/conf/database.conf is missing (apply-clean failed)"
  else
    local tout
    tout=$(as "$owner" pgbackrest --config="$D/conf/database.conf" --stanza="$stanza" --log-level-console=warn \
      --repo1-path="$D/home-bkp" repo-get bkp-secret 2>&1)
    printf -- '--- TLS client repo-get with --repo1-path=%s:\n%s\n' "$D/home-bkp" "$tout" >> "$LOG"
    if grep -qF "$bkp_token" <<<"$tout"; then
      result FAIL tls-client-cannot-read-backup-home 0 "the cluster owner read $D/home-bkp/bkp-secret through the TLS server (repo-get --repo1-path)"
    else
      result ok tls-client-cannot-read-backup-home 0 "$(tail -n 1 <<<"$tout" | cut -c1-150)"
    fi

    # ... and writes outside it: stanza-create with the repository path of its choice.
    tout=$(as "$owner" pgbackrest --config="$D/conf/database.conf" --stanza="$stanza" --log-level-console=warn \
      --repo1-path="$D/home-bkp/lab-tls-write" stanza-create 2>&1)
    printf -- '--- TLS client stanza-create with --repo1-path=%s:\n%s\n' "$D/home-bkp/lab-tls-write" "$tout" >> "$LOG"
    if [ -e "$D/home-bkp/lab-tls-write" ]; then
      result FAIL tls-client-cannot-write-outside-repository 0 "the cluster owner made $D/home-bkp/lab-tls-write ($(find "$D/home-bkp/lab-tls-write" -type f | wc -l) files) through the TLS server (stanza-create --repo1-path)"
      rm -rf "$D/home-bkp/lab-tls-write"
    else
      result ok tls-client-cannot-write-outside-repository 0 "$(tail -n 1 <<<"$tout" | cut -c1-150)"
    fi
  fi

  # === rollback.sh: tablespace links (0700 and 0750/0640 targets) and the hba racer ===
  hu_racer_start hba "$owner" 60 "$H" "$F3" pg_hba.conf
  hu_run rollback "$tree/shell/rollback.sh"
  hu_racer_stop hba
  hu_check rollback
  hu_hba_sane
  hu_unplant_pgdata

  # === apply.sh again: the backup user hardlinks a root file into its repository ===
  as "$bkp" ln "$F4" "$D/repo/backup/lab-hardlink-bkp"
  hu_racer_start hba "$owner" 60 "$H" "$F3" pg_hba.conf
  hu_run apply-again "${apply[@]}"
  hu_racer_stop hba
  hu_check apply-again
  hu_hba_sane
  hu_unplant_repo

  # === the Ansible role, one plant group per run, as for apply.sh ===
  cat > "$D/inventory.yml" <<YAML
all:
  children:
    pgbr_${cluster//-/_}:
      hosts:
        localhost:
          ansible_connection: local
YAML
  local pb=(env ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ansible-playbook "$D/out/ansible/playbook.yml"
    -i "$D/inventory.yml" -e pgbr_policy_start_tls_server=true -e "pgbr_policy_tool=$PGBR")
  step plant:ansible-ssh hu_plant_link "$bkp" "$D/home-bkp/.ssh" "$D3"
  hu_run ansible-ssh "${pb[@]}"
  hu_check ansible-ssh
  hu_unplant_link "$bkp" "$D/home-bkp/.ssh"

  step plant:ansible-paths hu_plant_paths
  hu_run ansible-paths env ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ansible-playbook "$D/out-paths/ansible/playbook.yml" \
    -i "$D/inventory.yml" -e pgbr_policy_start_tls_server=true -e "pgbr_policy_tool=$PGBR"
  hu_check ansible-paths
  hu_unplant_paths

  step plant:ansible-repository hu_plant_repo
  as "$bkp" ln -f "$F4" "$D/repo/backup/lab-hardlink-bkp" 2>>"$LOG"
  hu_racer_start repo "$bkp" 90 "$D/repo/backup" "$D2" "${HU_RACE_DIRS[@]}"
  hu_run ansible-repository "${pb[@]}"
  hu_racer_stop repo
  hu_check ansible-repository
  hu_unplant_repo

  step plant:ansible-pgdata hu_plant_pgdata
  hu_run ansible-pgdata "${pb[@]}"
  hu_check ansible-pgdata
  hu_unplant_pgdata

  step plant:ansible-pgpass hu_plant_link "$bkp" "$D/home-bkp/.pgpass" "$F2"
  hu_run ansible-pgpass "${pb[@]}"
  hu_check ansible-pgpass
  hu_unplant_link "$bkp" "$D/home-bkp/.pgpass"

  step plant:ansible-hba-symlink hu_plant_link "$owner" "$H/pg_hba.conf" "$F3"
  hu_run ansible-hba-symlink "${pb[@]}"
  hu_check ansible-hba-symlink
  hu_hba_restore
  hu_hba_sane

  # === the Patroni hook (peer policy), as the cluster owner, server stopped, pg_wal
  # === repointed at a directory of root's, a tablespace at root's. (A pg_wal or a
  # === tablespace in a directory of the owner's own is a legitimate layout, given group
  # === read like the rest of the data directory: the owner chose to put it there.) ===
  sed -e "s|^    role: .*|    role: {name: $role, auth: peer}|" -e "s|^  - name: $cluster|  - name: $cluster-pt|" "$D/policy.yaml" > "$D/policy-patroni.yaml"
  cat >> "$D/policy-patroni.yaml" <<YAML
    patroni:
      enabled: true
      config_file: $D/patroni.yml
      version: "3.0.2"
      scripts_directory: $D/pt-scripts
      hook_log: $D/owner-var/hook.log
      pg_hba_after: ["local all $owner peer"]
YAML
  if step generate-patroni "$PGBR" generate "$D/policy-patroni.yaml" --out "$D/out-pt"; then
    pg_stop "$owner" "$bin" "$PGD"
    local hook=(bash -c 'runuser -u "$1" -- bash "$2" on_start primary "$3"; rc=$?; tail -n 1 "$4"; exit $rc'
      sh "$owner" "$D/out-pt/$cluster-pt/patroni/patroni-hook.sh" "$cluster-pt" "$D/owner-var/hook.log")
    # The hook logs to hook_log, not to its output: each run shows that line.
    step plant:pg_wal as "$owner" sh -c 'mv -T "$1/pg_wal" "$1/pg_wal.lab-aside" && ln -s "$2" "$1/pg_wal"' sh "$PGD" "$D4"
    hu_run patroni-hook-pg_wal "${hook[@]}"
    hu_check patroni-hook-pg_wal
    as "$owner" sh -c 'rm -f "$1/pg_wal" && mv -T "$1/pg_wal.lab-aside" "$1/pg_wal"' sh "$PGD"
    step plant:hook-tablespaces hu_plant_pgdata
    hu_run patroni-hook-tablespaces "${hook[@]}"
    hu_check patroni-hook-tablespaces
    hu_unplant_pgdata
  fi
  pg_stop "$owner" "$bin" "$PGD"
}
