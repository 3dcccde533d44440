#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for mailbook, and mailbook itself into
# ./.venv (editable). `scripts/install.sh --test` adds what the test suite needs:
# pgTAP and pg_prove, Postfix and Dovecot (IMAP, LMTP, Sieve) with their PostgreSQL drivers,
# swaks, PgBouncer;
# `--bench` what benchmarks/run.py needs: postmap and matplotlib.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(postgresql postgresql-contrib python3 python3-venv)
extra=""
if [ "${1:-}" = "--test" ]; then
    packages+=(postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
               postfix postfix-pgsql dovecot-core dovecot-imapd dovecot-pgsql dovecot-lmtpd dovecot-sieve dovecot-managesieved
               swaks pgbouncer)
    extra="[test]"
elif [ "${1:-}" = "--bench" ]; then
    packages+=(postfix postfix-pgsql)   # postmap, Postfix's own pgsql client
    extra="[bench]"
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # Postfix asks how to configure itself; mailbook and its tests write their own main.cf
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
