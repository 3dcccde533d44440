#!/usr/bin/env bash
# A fresh Debian machine, thrown away after each use: tests/test_admin_guide_wiring.py follows
# the admin guide in one (issue 31).
#   scripts/fresh-root.sh SUITE build               the pristine root, once (cached)
#   scripts/fresh-root.sh SUITE run -- CMD...       a throwaway copy of it with this work tree in
#                                                   /srv/mailbook; CMD (cwd /srv/mailbook) as root
#   scripts/fresh-root.sh SUITE clean               remove the pristine root and its copy
# SUITE is bookworm (Debian 12) or trixie (Debian 13). The pristine root is
# `debootstrap --variant=minbase SUITE` from the mirror apt already uses, with its -updates and
# -security sources and `apt-get update` done: nothing else is installed (no Python, no
# PostgreSQL), as on a machine just installed. Each `run` copies it (cp -ax) to SUITE.run, so
# what CMD installs or changes is gone at the next run; the .debs apt downloaded there and
# pip's cache are copied back into the pristine root, so the next run downloads nothing again.
# CMD runs in a network namespace of its own (ip netns), reaching the outside through
# slirp4netns (user-mode NAT: nothing on the host's network changes), so the root's daemons
# may listen on 25, 143, 587 or 5432 while the host's tests, or the other release, do too.
# /proc, /sys, /dev, /dev/pts and a tmpfs /dev/shm are mounted only while CMD runs; every
# process whose root is the copy, every mount under it, the namespace and slirp4netns go on
# exit, failure included. Runs as root. MAILBOOK_FRESH_ROOTS moves the roots (default below).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

die() { echo "fresh-root.sh: $*" >&2; exit 1; }
suite=${1:-}
case "$suite" in bookworm|trixie) ;; *) die "usage: $0 bookworm|trixie build | run -- CMD... | clean" ;; esac
shift
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts, ip netns)"

base=${MAILBOOK_FRESH_ROOTS:-/var/cache/mailbook}
pristine=$base/guide-$suite
root=$pristine.run          # the throwaway copy
netns=mailbook-guide-$suite-$$
slirp=""

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
security=${MAILBOOK_FRESH_SECURITY:-http://deb.debian.org/debian-security}

# -- cleanup: every process whose root is $1, then every mount under it ---------------------
kill_inside() {
    local dir=$1 sig pid left
    for sig in TERM KILL; do
        left=0
        for pid in $(ls /proc | grep -E '^[0-9]+$'); do
            [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$dir" ] || continue
            kill -s "$sig" "$pid" 2>/dev/null && left=1
        done
        [ "$left" -eq 1 ] || return 0
        for _ in $(seq 50); do  # up to 5 s for them to go
            left=0
            for pid in $(ls /proc | grep -E '^[0-9]+$'); do
                [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$dir" ] && { left=1; break; }
            done
            [ "$left" -eq 1 ] || return 0
            sleep 0.1
        done
    done
}
mounts_under() {  # deepest first (/proc/mounts escapes spaces; our paths have none)
    awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r
}
unmount_all() {  # round by round: a stacked mount lists a path twice
    local dir=$1 m i done
    for i in $(seq 20); do
        done=0
        for m in $(mounts_under "$dir"); do
            umount "$m" 2>/dev/null && done=1
        done
        [ -n "$(mounts_under "$dir")" ] || return 0
        [ "$done" -eq 1 ] || break
    done
    for m in $(mounts_under "$dir"); do umount -l "$m" 2>/dev/null || true; done
}
cleanup() {
    local rc=$? dir
    for dir in "$root" "$pristine"; do
        [ -d "$dir" ] || continue
        kill_inside "$dir"; unmount_all "$dir"
        [ -z "$(mounts_under "$dir")" ] || { echo "fresh-root.sh: mounts left under $dir" >&2; rc=1; }
    done
    [ -z "$slirp" ] || kill "$slirp" 2>/dev/null || true
    ip netns del "$netns" 2>/dev/null || true
    exit "$rc"
}
mkdir -p "$base"
exec 9>"$pristine.lock"   # one build or run per release at a time: a second would remove the first's copy
flock -n 9 || { echo "fresh-root.sh: another run uses $pristine (lock $pristine.lock); waiting for it" >&2
                flock -w 3600 9 || { echo "fresh-root.sh: $pristine still in use after an hour" >&2; exit 1; }; }
trap cleanup EXIT
trap 'exit 130' INT TERM
exec 3<&0 </dev/null   # the caller's stdin stays on 3, for CMD

mount_all() {
    local dir=$1 d
    for d in proc sys dev dev/pts; do
        mkdir -p "$dir/$d"
        mount --bind "/$d" "$dir/$d"
    done
    mkdir -p "$dir/dev/shm"   # PostgreSQL's dynamic shared memory: a tmpfs of the root's own
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dir/dev/shm"
}
environment=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root
             LOGNAME=root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive)

build() {
    [ -f "$pristine/.mailbook-fresh" ] && return 0
    command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/install.sh --test installs it)"
    local t0=$SECONDS
    unmount_all "$pristine"
    rm -rf "$pristine"
    mkdir -p "$base"
    echo "fresh-root.sh: debootstrap --variant=minbase $suite from $(mirror) into $pristine"
    debootstrap --variant=minbase "$suite" "$pristine" "$(mirror)" >"$pristine.debootstrap.log" 2>&1 \
        || { tail -20 "$pristine.debootstrap.log" >&2; die "debootstrap failed (log: $pristine.debootstrap.log)"; }
    local security_suite=$suite-security
    cat >"$pristine/etc/apt/sources.list" <<EOF
deb $(mirror) $suite main
deb $(mirror) $suite-updates main
deb $security $security_suite main
EOF
    echo "$suite-guide" >"$pristine/etc/hostname"
    cp /etc/resolv.conf "$pristine/etc/resolv.conf"
    mount_all "$pristine"
    env -i "${environment[@]}" chroot "$pristine" apt-get update -qq
    kill_inside "$pristine"; unmount_all "$pristine"
    touch "$pristine/.mailbook-fresh"
    echo "fresh-root.sh: $suite ready in $((SECONDS - t0)) s ($(du -shx "$pristine" | cut -f1))"
}

copy_tree() {  # the work tree as git sees it (tracked and new files, no .git/.venv/ignored ones)
    local dst=$root/srv/mailbook
    mkdir -p "$dst"
    git -C "$repo" ls-files -z -co --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar -C "$repo" --null -T - -cf - | tar -C "$dst" -xf -
}

save_caches() {  # what this run downloaded, for the next (a fresh machine would download it too)
    local d
    cp -an "$root/var/cache/apt/archives/." "$pristine/var/cache/apt/archives/" 2>/dev/null || true
    rm -f "$pristine/var/cache/apt/archives/lock"
    for d in root/.cache/pip; do
        [ -d "$root/$d" ] || continue
        mkdir -p "$pristine/$d"
        cp -an "$root/$d/." "$pristine/$d/"
    done
}

run() {
    build
    if [ -d "$root" ]; then
        kill_inside "$root"; unmount_all "$root"
        [ -z "$(mounts_under "$root")" ] || die "mounts left under $root: not removing it"
        rm -rf "$root"
    fi
    cp -ax "$pristine" "$root"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    # pip on this machine trusts the host's CA bundle (a proxy may sign); the root's own
    # ca-certificates arrive with its first apt-get install, too late for nothing else
    mkdir -p "$root/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/mailbook-host-ca.crt"
    printf '[global]\ncert = /etc/ssl/certs/mailbook-host-ca.crt\n' >"$root/etc/pip.conf"
    copy_tree
    mount_all "$root"
    ip netns add "$netns"
    slirp4netns --configure --mtu=65520 --disable-host-loopback --netns-type=path "/run/netns/$netns" tap0 \
        >"$root.slirp.log" 2>&1 &
    slirp=$!
    for _ in $(seq 50); do
        ip netns exec "$netns" ip -o -4 addr show tap0 2>/dev/null | grep -q inet && break
        sleep 0.1
    done
    ip netns exec "$netns" ip -o -4 addr show tap0 | grep -q inet || die "slirp4netns gave no network ($root.slirp.log)"
    ip netns exec "$netns" ip link set lo up
    # in the background, so that a TERM or INT reaches our trap at once; stdin is the caller's
    # (a terminal when the test answers prompts through one)
    local rc=0
    ip netns exec "$netns" env -i "${environment[@]}" ${http_proxy:+http_proxy=$http_proxy} \
        ${https_proxy:+https_proxy=$https_proxy} ${no_proxy:+no_proxy=$no_proxy} \
        chroot "$root" bash -c 'cd /srv/mailbook && exec "$@"' fresh-root "$@" <&3 &
    wait $! || rc=$?
    kill_inside "$root"; unmount_all "$root"
    save_caches
    return "$rc"
}

case "${1:-}" in
    build) build ;;
    run) shift; [ "${1:-}" = "--" ] && shift; [ $# -gt 0 ] || die "run -- CMD..."; run "$@" ;;
    clean) unmount_all "$root"; unmount_all "$pristine"
           rm -rf "$root" "$pristine" "$pristine.debootstrap.log" "$root.slirp.log" ;;
    *) die "usage: $0 bookworm|trixie build | run -- CMD... | clean" ;;
esac
