#!/usr/bin/env bash
# The main job: installs what is missing, then runs `mailbook demo`: a private,
# throwaway PostgreSQL in ./.mailbook with the schema migrated and an example
# domain, mailbox and alias.   scripts/demo.sh [--stop | --reset | --data-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/mailbook demo "$@"
