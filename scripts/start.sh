#!/usr/bin/env bash
# Installs what is missing, builds (Release) and runs the herd master in the
# foreground on port 3000 with one worker per CPU. Extra arguments go to herd,
# e.g. scripts/start.sh --workers 4 --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release
exec build/bin/herd --port 3000 "$@"
