#!/usr/bin/env bash
# Set up, then generate the synthetic storefront, build its artifacts and serve them on
# http://127.0.0.1:8000 (reuses .shoprec/demo on later runs).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/shoprec demo "$@"
