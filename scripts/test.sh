#!/usr/bin/env bash
# Set up, then run the whole test suite on 2 processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1
command -v redis-server >/dev/null 2>&1 || {
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null 2>&1 || true
  fi
}
exec .venv/bin/python -m pytest -n 2 "$@"
