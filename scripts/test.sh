#!/usr/bin/env bash
# Set up, then run the whole test suite on 2 processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1
# Tests start their own redis-server on a free port; install it when missing.
command -v redis-server >/dev/null 2>&1 || {
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1; then
    ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server) >/dev/null 2>&1 ||
      echo "warning: could not install redis-server; tests that need it will be skipped" >&2
  fi
}
# The alert rules are checked and tested with promtool, and one test scrapes a real Prometheus:
# both come with the Debian package prometheus.
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || {
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1; then
    ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq prometheus) >/dev/null 2>&1 ||
      echo "warning: could not install prometheus; tests that need promtool or prometheus will be skipped" >&2
  fi
}
# The browser tests (tests/browser) drive Debian's chromium with Playwright; never a browser download.
[ -x /usr/bin/chromium ] || {
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1; then
    ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium) >/dev/null 2>&1 ||
      echo "warning: could not install chromium; the browser tests will be skipped" >&2
  fi
}
exec .venv/bin/python -m pytest -n 2 "$@"
