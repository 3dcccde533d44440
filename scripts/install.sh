#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for mailbook, and mailbook itself into
# ./.venv (editable). `scripts/install.sh --test` adds what the test suite needs:
# pgTAP and pg_prove, Postfix and Dovecot (IMAP, LMTP, Sieve) with their PostgreSQL drivers,
# swaks, PgBouncer, PostfixAdmin (with PHP's CLI and pgsql driver) and vmm, Roundcube with
# its password plugin, chromium and chromedriver, Patroni and etcd, OpenDKIM with OpenDBX's
# PostgreSQL driver, unbound (the loopback DNS server of tests/test_dns.py);
# debootstrap (the Debian 13 root of tests/test_debian13.py), slirp4netns (the fresh roots of
# tests/test_admin_guide_wiring.py);
# `--bench` what benchmarks/ needs: Postfix (postmap, smtp-source), PostfixAdmin with PHP's
# CLI and pgsql driver (the end-to-end peer), matplotlib.
set -euo pipefail
cd "$(dirname "$0")/.."

# `postgresql` pulls in the release's server (15 on Debian 12, 17 on 13), contrib modules
# included: no `postgresql-contrib` (a virtual package on 13, never "installed").
packages=(postgresql python3 python3-venv)
extra=""
if [ "${1:-}" = "--test" ]; then
    packages+=(pgtap libtap-parser-sourcehandler-pgtap-perl   # pgtap: for the server's major, below
               postfix postfix-pgsql dovecot-core dovecot-imapd dovecot-pgsql dovecot-lmtpd dovecot-sieve dovecot-managesieved
               swaks pgbouncer
               postfixadmin php-cli php-pgsql vmm   # the move-in tests build their databases with them
               roundcube-core roundcube-sqlite3 roundcube-plugins chromium chromium-driver   # the webmail tests
               postfix-lmdb   # `mailbook maps compile` writes lmdb: tables
               opendkim libopendbx1-pgsql   # tests/test_dkim.py: OpenDKIM reading its keys from PostgreSQL (OpenDBX)
               unbound   # tests/test_dns.py: a private DNS server on loopback serving the test zone (local-data)
               patroni python3-etcd etcd-server   # tests/test_patroni.py starts its own etcd and nodes;
                                                   # Patroni 4 (Debian 13) imports python3-etcd for etcd3
               debootstrap    # tests/test_debian13.py builds a Debian 13 root (scripts/debian13.sh)
               slirp4netns)   # tests/test_admin_guide_wiring.py: the fresh roots' own network (scripts/fresh-root.sh)
    extra="[test]"
elif [ "${1:-}" = "--bench" ]; then
    packages+=(postfix postfix-pgsql    # postmap, smtp-source, Postfix's own pgsql client
               dovecot-core dovecot-pgsql dovecot-lmtpd dovecot-sieve   # e2e.py's LMTP delivery and quota-status
               postfixadmin php-cli php-pgsql   # benchmarks/e2e.py builds PostfixAdmin's schema with them
               postfix-lmdb)   # e2e.py's and compiled.py's compiled-maps instance
    extra="[bench]"
fi

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
pg_major() {  # the installed server's major (the newest), else the one `postgresql` would install
    local v
    v=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sed 's|^/usr/lib/postgresql/\([0-9]*\)/.*|\1|' | sort -n | tail -1 || true)
    [ -n "$v" ] || v=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -1 || true)
    echo "$v"
}
for i in "${!packages[@]}"; do
    [ "${packages[$i]}" = pgtap ] || continue
    major=$(pg_major)
    if [ -z "$major" ]; then  # a fresh machine whose apt has no package lists yet
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        major=$(pg_major)
    fi
    [ -n "$major" ] || { echo "install.sh: cannot tell which PostgreSQL major to install pgTAP for" >&2; exit 1; }
    packages[$i]=postgresql-$major-pgtap
done

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    # Postfix asks how to configure itself; the tests write their own main.cf. Only when this
    # script installs Postfix (--test, --bench): on a mail server the admin's answer stands
    if [[ " ${missing[*]} " == *" postfix "* ]]; then
        echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    fi
    # PostfixAdmin would ask for a database to set up; the tests give it their own
    echo "postfixadmin postfixadmin/dbconfig-install boolean false" | $sudo debconf-set-selections
    # PostfixAdmin and Roundcube pull in a web server, etcd-server its own etcd on port 2379,
    # opendkim its system milter, unbound its system resolver: keep them from starting during the install (the Patroni
    # test starts a private etcd, tests/test_dkim.py a private OpenDKIM, tests/test_dns.py a private unbound)
    policy=""
    if [[ " ${missing[*]} " == *" postfixadmin "* || " ${missing[*]} " == *" roundcube-core "* || " ${missing[*]} " == *" etcd-server "* || " ${missing[*]} " == *" opendkim "* || " ${missing[*]} " == *" unbound "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod 0755 /usr/sbin/policy-rc.d
        policy=/usr/sbin/policy-rc.d
    fi
    # Roundcube's tests build their own database and configuration: no dbconfig-common
    echo "roundcube-core roundcube/dbconfig-install boolean false" | $sudo debconf-set-selections
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ -z "$policy" ] || $sudo rm -f "$policy"
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
