#!/usr/bin/env bash
# Creates .venv and installs ktl-lsp with its test, dev and helm extras. Idempotent and quick when nothing changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.ktl-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[test,dev,helm]'
  touch "$stamp"
fi
# An editable install leaves our modules uncompiled; where PYTHONDONTWRITEBYTECODE is set (many
# containers) every start compiled them again, ~450 ms before `initialize` was answered.
.venv/bin/python -m compileall -q ktl_lsp >/dev/null
