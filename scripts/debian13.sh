#!/usr/bin/env bash
# A Debian 13 "trixie" root on this machine, to prove mailbook there (issue 30).
#   scripts/debian13.sh build          build the root once (cached: a stamp records the packages)
#   scripts/debian13.sh run -- CMD...  build if needed, copy this work tree to /srv/mailbook in the
#                                      root, run scripts/install.sh --test there, then CMD (cwd
#                                      /srv/mailbook) as root
#   scripts/debian13.sh clean          remove the cached root
# Built with `debootstrap --variant=minbase trixie` from the mirror apt already uses, plus
# trixie-updates and trixie-security; /usr/sbin/policy-rc.d keeps daemons from starting during
# apt. /proc, /sys, /dev and /dev/pts are bind-mounted only while something runs, and every mount
# under the root and every process running in it are removed on exit, failure included.
# Runs as root, reads no stdin. MAILBOOK_TRIXIE_ROOT moves the root (default below).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

root=${MAILBOOK_TRIXIE_ROOT:-/var/cache/mailbook/trixie}
stamp=$root/.mailbook-stamp
# The root itself: what scripts/install.sh needs to run (apt, Python for the venv, CAs for
# pip); `run` then runs `scripts/install.sh --test` inside, which installs the rest as on a
# fresh Debian 13 machine (PostgreSQL 17, Postfix, Dovecot 2.4, Roundcube, Patroni...).
packages=(python3 python3-venv ca-certificates
          man-db git)   # on every real machine: systemd-analyze verify reads man pages, test_demo clones

die() { echo "debian13.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts)"
exec </dev/null

mirror() {  # the Debian mirror the host's apt uses (deb822 first, then one-line sources.list)
    local m=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}
security=${MAILBOOK_TRIXIE_SECURITY:-http://deb.debian.org/debian-security}

# -- cleanup: every process whose root is ours, then every mount under it -----------------
kill_inside() {
    local sig pid left
    for sig in TERM KILL; do
        left=0
        for pid in $(ls /proc | grep -E '^[0-9]+$'); do
            [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] || continue
            kill -s "$sig" "$pid" 2>/dev/null && left=1
        done
        [ "$left" -eq 1 ] || return 0
        for _ in $(seq 50); do  # up to 5 s for them to go
            left=0
            for pid in $(ls /proc | grep -E '^[0-9]+$'); do
                [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && { left=1; break; }
            done
            [ "$left" -eq 1 ] || return 0
            sleep 0.1
        done
    done
}
mounts_under() {  # mount points under the root, deepest first (/proc/mounts escapes spaces; our paths have none)
    awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r
}
unmount_all() {  # deepest first, reading the table again after each round: a stacked mount
    local m i done          # lists a path twice, and one under a covering mount cannot go first
    for i in $(seq 20); do
        done=0
        for m in $(mounts_under); do
            umount "$m" 2>/dev/null && done=1
        done
        [ -n "$(mounts_under)" ] || return 0
        [ "$done" -eq 1 ] || break
    done
    for m in $(mounts_under); do umount -l "$m" 2>/dev/null || true; done
}
cleanup() {
    local rc=$?
    [ -d "$root" ] && { kill_inside; unmount_all; }
    if [ -n "$(mounts_under)" ]; then
        echo "debian13.sh: mounts left under $root" >&2; rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_all() {
    local d
    for d in proc sys dev dev/pts; do
        mkdir -p "$root/$d"
        mount --bind "/$d" "$root/$d"
    done
    # POSIX shared memory and semaphores (PostgreSQL's dynamic shared memory, Python's
    # multiprocessing in Patroni): a tmpfs of the root's own, as /dev/shm is on a machine
    mkdir -p "$root/dev/shm"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
}
inside() {  # run a command in the root, with a clean environment
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive PIP_CERT=/etc/ssl/certs/mailbook-host-ca.crt \
        ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
        ${no_proxy:+no_proxy=$no_proxy} \
        chroot "$root" "$@"
}

build() {
    local want; want=$(printf '%s\n' "${packages[@]}")
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    local t0=$SECONDS
    if [ ! -f "$root/.mailbook-debootstrapped" ]; then
        command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/install.sh --test installs it)"
        unmount_all
        rm -rf "$root"
        mkdir -p "$(dirname "$root")"
        echo "debian13.sh: debootstrap trixie from $(mirror) into $root"
        debootstrap --variant=minbase trixie "$root" "$(mirror)" >"$root.debootstrap.log" 2>&1 \
            || { tail -20 "$root.debootstrap.log" >&2; die "debootstrap failed (log: $root.debootstrap.log)"; }
        cat >"$root/etc/apt/sources.list" <<EOF
deb $(mirror) trixie main
deb $(mirror) trixie-updates main
deb $security trixie-security main
EOF
        printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
        chmod 0755 "$root/usr/sbin/policy-rc.d"
        touch "$root/.mailbook-debootstrapped"
    fi
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount_all
    echo "debian13.sh: apt-get install ${packages[*]}"
    inside apt-get update -qq
    inside apt-get install -y -qq --no-install-recommends "${packages[@]}" >"$root.apt.log" 2>&1 \
        || { tail -20 "$root.apt.log" >&2; die "apt-get install failed (log: $root.apt.log)"; }
    inside apt-get clean
    kill_inside; unmount_all
    echo "$want" >"$stamp"
    echo "debian13.sh: root ready in $((SECONDS - t0)) s ($(du -shx "$root" | cut -f1))"
}

copy_tree() {  # the work tree as git sees it (tracked and new files, no .git/.venv/ignored ones)
    local dst=$root/srv/mailbook
    mkdir -p "$dst"
    find "$dst" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +   # keep the venv: pip is slow
    git -C "$repo" ls-files -z -co --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar -C "$repo" --null -T - -cf - | tar -C "$dst" -xf -
    chmod -R a+rX "$dst"   # the fixtures' servers run as `postgres`
}

run() {
    build
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/mailbook-host-ca.crt"
    # pip as a new user would run it (demo.sh) trusts the host's CA bundle without PIP_CERT too
    printf '[global]\ncert = /etc/ssl/certs/mailbook-host-ca.crt\n' >"$root/etc/pip.conf"
    copy_tree
    mount_all
    # the README's install step, as on a fresh Debian 13 machine: every package the tests
    # need (apt only the first time: the root is cached), then the venv
    inside bash -c 'cd /srv/mailbook && scripts/install.sh --test'
    # in the background, so that a TERM or INT reaches our trap at once (bash defers traps
    # while a foreground child runs); the trap then kills everything inside
    local rc=0
    inside bash -c 'cd /srv/mailbook && exec "$@"' debian13 "$@" &
    wait $! || rc=$?
    return "$rc"
}

case "${1:-}" in
    build) build ;;
    run) shift; [ "${1:-}" = "--" ] && shift; [ $# -gt 0 ] || die "run -- CMD..."; run "$@" ;;
    clean) unmount_all; rm -rf "$root" "$root.debootstrap.log" "$root.apt.log" ;;
    *) die "usage: $0 build | run -- CMD... | clean" ;;
esac
