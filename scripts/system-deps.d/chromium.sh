#!/usr/bin/env bash
# Headless Chromium for tests/web (the HTML export check). Debian's `chromium` package, as root.
# Idempotent: does nothing when /usr/bin/chromium exists. Never fails the caller: the web tests
# skip locally without it and fail under CI=true, which says what is missing.
set -uo pipefail

note() { echo "system-deps(chromium): $*" >&2; }

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  note "not root: install chromium yourself (apt-get install chromium)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  note "no apt-get: install chromium yourself"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
note "installing chromium"
apt-get update -qq >/dev/null || note "apt-get update failed"
apt-get install -y -qq --no-install-recommends chromium >/dev/null \
  || note "could not install chromium"
exit 0
