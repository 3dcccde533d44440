#!/usr/bin/env bash
# Benchmarks (not tests): installs what is missing, then runs them on a private PostgreSQL.
# Each runs as a module from the checkout (python -m benchmarks.NAME), so that mailbook and
# the tests' harness (tests.harness: the same Postfix, Dovecot and PgBouncer) import as packages.
#   scripts/bench.sh [--mailboxes 1000,100000,1000000] [--out DIR]   lookups, import, migrate
#   scripts/bench.sh --e2e [--rounds 3] [--out DIR]                  through a real Postfix (root)
#   scripts/bench.sh --compiled [--rounds 3] [--out DIR]             compiled maps: speed next to hash:, equivalence (root)
#   scripts/bench.sh --delivery [--rounds 5] [--scale 1] [--out DIR]   LMTP delivery: mailbook, its extras apart, the floor (root)
#   scripts/bench.sh --logins [--rounds 3] [--costs 10,8] [--last-login] [--out DIR]
#                                     IMAP logins: mailbook's passdb, cache, passwd-file; last login's cost (root)
#   scripts/bench.sh --lookups [--baseline COMMIT] [--out DIR]       Postfix's lookups, two versions side by side (root)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --bench
# one flag per side run; without one: benchmarks/run.py (lookups, import, migrate)
case "${1:-}" in
    --e2e) module=e2e ;;
    --compiled) module=compiled ;;
    --delivery) module=delivery ;;
    --logins) module=logins ;;
    --lookups) module=lookup_compare ;;
    *) exec .venv/bin/python -m benchmarks.run "$@" ;;
esac
shift
exec .venv/bin/python -m "benchmarks.$module" "$@"
