from __future__ import annotations

import asyncio
import os
import re
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


async def record_in_background(store: Path, command: str) -> tuple[asyncio.subprocess.Process, str]:
    """`ktl-lsp run` of a shell command in another process, recording into ``store``; the
    process and the session's id (said on stderr as soon as it starts)."""
    proc = await asyncio.create_subprocess_exec(
        KTL_LSP,
        "--store",
        str(store),
        "run",
        "--quiet",
        "--",
        "sh",
        "-c",
        command,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
    return proc, re.search(r"session (\S+)", line).group(1)  # type: ignore[union-attr]
