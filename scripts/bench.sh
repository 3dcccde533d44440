#!/usr/bin/env bash
# Benchmarks (not tests): installs what is missing, then runs benchmarks/run.py on a
# private PostgreSQL.   scripts/bench.sh [--mailboxes 1000,100000,1000000] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --bench
exec .venv/bin/python benchmarks/run.py "$@"
