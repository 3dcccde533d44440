#!/usr/bin/env bash
# The test command: installs everything a fresh Debian 12 machine lacks, then runs all
# tests (pytest, with the pgTAP files as pytest items).   scripts/test.sh [pytest args]
# As root (CI) the PostgreSQL test servers run as the unprivileged `postgres` OS user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
# lint first: ruff (pyproject.toml says which rules, and why some are off)
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest --durations=30 "$@"  # the slowest, for keeping CI under 50 minutes
