"""`ktl-lsp` itself: the parser every command hangs from."""

from __future__ import annotations

import subprocess
import sys


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ktl_lsp", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("ktl-lsp ")
