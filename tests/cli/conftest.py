from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: The installed command, started as a user starts it (its entry point included).
KTL_LSP = str(Path(sys.executable).with_name("ktl-lsp"))


def ktl_lsp(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KTL_LSP, *args], capture_output=True, text=True, timeout=60, check=False, **kwargs
    )


def into_a_closed_pipe(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`ktl-lsp ARGS` writing to a pipe whose reader has left, as `| head -1` leaves it."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [KTL_LSP, *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, **kwargs
        )
    finally:
        os.close(write)
