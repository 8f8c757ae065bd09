#!/usr/bin/env bash
# playwright-core (npm) for tests/web/test_ui.py and bench/bench_gateway.py: `npm ci` in
# tests/web/ui when node_modules is missing or older than package-lock.json. The browser is
# Debian's /usr/bin/chromium (chromium.sh); no browser is downloaded. Idempotent; never fails
# the caller: the UI tests skip locally without it and fail under CI=true.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$here/tests/web/ui"

note() { echo "system-deps(web-ui): $*" >&2; }

if ! command -v npm >/dev/null 2>&1; then
  note "no npm: install nodejs and npm (scripts/system-deps does as root)"
  exit 0
fi
stamp="$dir/node_modules/.package-lock.json" # written by npm on every install
if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
  note "npm ci in tests/web/ui"
  if ! (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    note "npm ci failed in tests/web/ui"
  fi
fi
exit 0
