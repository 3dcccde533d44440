#!/usr/bin/env bash
# The test command: installs everything a fresh Debian 12 machine lacks, then runs all
# tests (pytest, with the pgTAP files as pytest items).   scripts/test.sh [pytest args]
# As root (CI) the PostgreSQL test servers run as the unprivileged `postgres` OS user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
exec .venv/bin/python -m pytest "$@"
