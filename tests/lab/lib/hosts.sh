#!/usr/bin/env bash
# shellcheck shell=bash
#
# hosts.sh - several "hosts" on one machine for the lab: each host is its own network
# namespace (an address in a private /24, joined to the others through a bridge that
# lives in a switch namespace the lab made: nothing is added to the machine's own
# network) and its own persistent mount namespace, in which the host-private paths are
# its alone:
#   /etc            an overlay on the machine's /etc (what the host writes there —
#                   /etc/pgbackrest, systemd units, tmpfiles entries, /etc/group after
#                   usermod — lands in the host's upper directory); /etc/hosts names
#                   every lab host;
#   /usr/local      an overlay too (scripts installed there, e.g. Patroni's hooks);
#   /run, /tmp      fresh tmpfs (lock directories, sockets, /run/postgresql);
#   /var/log /var/spool /home /srv /var/lib/pgbackrest /var/lib/pgbr-policy
#   /var/lib/postgresql
#                   empty directories of the host's own (root 0755 at first).
# Users and groups: the overlay shows the machine's passwd/group until the host first
# writes them. Users made with lab_user BEFORE hosts_add exist on every host (unique
# UIDs, removed by lab_cleanup). Users made ON a host (useradd --system, e.g. by a
# generated apply.sh) are that host's alone and vanish with it; their UIDs come from
# the range hosts_add puts in the host's /etc/login.defs (SYS_UID_MIN..MAX = UIDBASE ..
# UIDBASE+49: far above the machine's system users, and the same base on two hosts
# gives the same UID to the same first user, as a fleet would).
#
#   hosts_init 10.213.7                # the switch namespace and its bridge
#   hosts_add repo 1 61400 repo.lab.test  # name, address .1, UID range, aliases
#   hosts_add db1 2 61450 && hosts_add db2 3 61450
#   hosts_finish                       # /etc/hosts of every host names every host
#   on_host repo runuser -u u -- cmd   # run in repo's network and mount namespaces
#   host_path repo /var/lib/pgbackrest # where that path lives, seen from the machine
#
# Everything is recorded under $LAB/hosts and torn down by hosts_cleanup (called from
# lab_cleanup, on success and on failure): every process inside a lab network namespace
# killed by PID, the mount namespace files unmounted, the namespaces deleted.
# Needs: LAB. Run as root.

HOSTS_DIR_NAME=hosts

hosts_dir() { echo "$LAB/$HOSTS_DIR_NAME"; }

# A short tag unique to this lab run: namespace names are machine-wide.
hosts_tag() { local b; b=$(basename "$LAB"); echo "pl${b##*.}"; }

hosts_netns() { echo "$(hosts_tag)-$1"; }

hosts_init() {  # SUBNET (three octets, e.g. 10.213.7)
  local H sw
  H=$(hosts_dir)
  install -d -m 0700 "$H" "$H/ns"
  echo "$1" > "$H/subnet"
  : > "$H/hosts"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$H/etc-hosts"
  sw=$(hosts_netns sw)
  ip netns add "$sw" || return
  echo "$sw" >> "$H/netns"
  ip -n "$sw" link set lo up
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
}

hosts_add() {  # NAME OCTET UIDBASE [ALIAS...] (more names for the address in /etc/hosts)
  local name=$1 octet=$2 uidbase=$3 H ns sw addr root mnt p
  shift 3
  H=$(hosts_dir)
  ns=$(hosts_netns "$name") sw=$(hosts_netns sw)
  addr="$(cat "$H/subnet").$octet"
  ip netns add "$ns" || return
  echo "$ns" >> "$H/netns"
  ip -n "$ns" link set lo up
  ip -n "$sw" link add "v-$name" type veth peer name eth0 netns "$ns" || return
  ip -n "$sw" link set "v-$name" master br0 up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  printf '%s\t%s\n' "$addr" "$*${*:+ }$name" >> "$H/etc-hosts"
  echo "$name $addr" >> "$H/hosts"

  # The persistent mount namespace, then the host-private paths inside it.
  root="$H/$name"
  install -d -m 0700 "$root"
  install -d -m 0755 "$root/etc-upper" "$root/etc-work" "$root/private"
  mnt="$H/ns/$name.mnt"
  touch "$mnt"
  echo "$mnt" >> "$H/mntns"
  unshare --mount="$mnt" --propagation private true || return
  # The copies of the machine's namespace files would keep the other hosts alive.
  # shellcheck disable=SC2016  # $1 belongs to the inner sh
  nsenter --mount="$mnt" -- sh -c 'umount -R -l /run/netns 2>/dev/null; for f in "$1"/*.mnt; do umount -l "$f" 2>/dev/null; done; true' sh "$H/ns"
  nsenter --mount="$mnt" -- mount -t overlay "overlay-$name" \
    -o "lowerdir=/etc,upperdir=$root/etc-upper,workdir=$root/etc-work" /etc || return
  install -d -m 0755 "$root/usr-local-upper" "$root/usr-local-work"
  nsenter --mount="$mnt" -- mount -t overlay "overlay-$name-usr-local" \
    -o "lowerdir=/usr/local,upperdir=$root/usr-local-upper,workdir=$root/usr-local-work" /usr/local || return
  nsenter --mount="$mnt" -- mount -t tmpfs -o mode=0755,nosuid,nodev "run-$name" /run || return
  nsenter --mount="$mnt" -- install -d -m 1777 /run/lock
  nsenter --mount="$mnt" -- mount -t tmpfs -o mode=1777,nosuid,nodev "tmp-$name" /tmp || return
  for p in /var/log /var/spool /home /srv /var/lib/pgbackrest /var/lib/pgbr-policy /var/lib/postgresql; do
    install -d -m 0755 "$root/private$p"
    nsenter --mount="$mnt" -- mount --bind "$root/private$p" "$p" || return
  done
  nsenter --mount="$mnt" -- sed -i -E \
    -e '/^#?[[:space:]]*SYS_(UID|GID)_(MIN|MAX)[[:space:]]/d' \
    -e "\$a SYS_UID_MIN $uidbase\nSYS_UID_MAX $((uidbase + 49))\nSYS_GID_MIN $uidbase\nSYS_GID_MAX $((uidbase + 49))" \
    /etc/login.defs || return
}

# Every host's /etc/hosts names every host (written in its own /etc overlay).
hosts_finish() {
  local H name addr
  H=$(hosts_dir)
  while read -r name addr; do
    # shellcheck disable=SC2016  # $1 belongs to the inner sh
    nsenter --mount="$H/ns/$name.mnt" -- sh -c 'cat "$1" > /etc/hosts' sh "$H/etc-hosts" || return
  done < "$H/hosts"
}

host_addr() { awk -v n="$1" '$1 == n { print $2 }' "$(hosts_dir)/hosts"; }

# on_host HOST COMMAND...: COMMAND in HOST's network and mount namespaces, from / .
on_host() {
  local name=$1 H; shift
  H=$(hosts_dir)
  [ -e "$H/ns/$name.mnt" ] || { echo "on_host: no host '$name'" >&2; return 2; }
  nsenter --net="/run/netns/$(hosts_netns "$name")" --mount="$H/ns/$name.mnt" --wd=/ -- "$@"
}

# Where a host-private path lives, seen from the machine (for the lab's own checks
# and for copying artifacts in): /etc/… is the overlay's upper directory.
host_path() {  # HOST PATH
  local root
  root="$(hosts_dir)/$1"
  case "$2" in
    /etc/*) echo "$root/etc-upper${2#/etc}" ;;
    *) echo "$root/private$2" ;;
  esac
}

# A daemon in a host, in the background, with a clean environment, as USER; its PID
# (the exec'd program's) in PIDFILE, registered for the lab's clean-up.
host_daemon() {  # HOST USER PIDFILE LOG UMASK COMMAND...
  local host=$1 user=$2 pidfile=$3 log=$4 mask=$5 home; shift 5
  home=$(getent passwd "$user" | cut -d: -f6)
  register_pidfile "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner sh
  setsid nsenter --net="/run/netns/$(hosts_netns "$host")" --mount="$(hosts_dir)/ns/$host.mnt" --wd=/ -- \
    runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME="${home:-/}" \
    sh -c 'umask "$1"; echo $$ > "$2"; shift 2; exec "$@"' sh "$mask" "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
}

# Every process in a lab network namespace (all started by the lab), by PID: TERM,
# then KILL after a grace time; then the mount namespace files and the namespaces.
hosts_cleanup() {
  local H ns pids i f
  H=$(hosts_dir)
  [ -d "$H" ] || return 0
  if [ -f "$H/netns" ]; then
    pids=$(while read -r ns; do ip netns pids "$ns" 2>/dev/null; done < "$H/netns")
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill $pids 2>/dev/null
      for ((i = 0; i < 50; i++)); do
        pids=$(while read -r ns; do ip netns pids "$ns" 2>/dev/null; done < "$H/netns")
        [ -z "$pids" ] && break
        sleep 0.1
      done
      # shellcheck disable=SC2086
      [ -n "$pids" ] && kill -9 $pids 2>/dev/null
      sleep 0.2
    fi
  fi
  if [ -f "$H/mntns" ]; then
    while read -r f; do umount "$f" 2>/dev/null; done < "$H/mntns"
  fi
  if [ -f "$H/netns" ]; then
    while read -r ns; do ip netns delete "$ns" 2>/dev/null; done < <(tac "$H/netns")
  fi
  rm -f "$H/netns" "$H/mntns"
  return 0
}
