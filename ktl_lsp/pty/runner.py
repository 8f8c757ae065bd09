"""Picks the runner for this platform; both offer the same methods.

``Pty`` is also what a remote terminal (a Kubernetes exec) offers, so sessions treat them alike.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol

from ktl_lsp.aio import import_off_loop
from ktl_lsp.pty.base import ExitInfo, PtySink, PtySpec

#: This platform's runner (and ptyprocess or pywinpty under it).
RUNNER = "ktl_lsp.pty.windows" if sys.platform == "win32" else "ktl_lsp.pty.posix"


class Pty(Protocol):
    pid: int

    async def wait(self) -> ExitInfo: ...
    def write(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def send_signal(self, name: str) -> None: ...
    def send_eof(self) -> None: ...
    def echo_enabled(self) -> bool: ...
    def judge_input(self, raw: bytes, verdict: Callable[[bool], None]) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...

    @property
    def exited(self) -> bool: ...


async def prepare() -> None:
    """Loads the runner off the loop before the first session needs it."""
    await import_off_loop(RUNNER)


async def spawn(spec: PtySpec, sink: PtySink) -> Pty:
    """Starts the child; raises SpawnError with a user-facing reason when it cannot."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        from ktl_lsp.pty.windows import WindowsPty

        return await WindowsPty.spawn(spec, sink)
    from ktl_lsp.pty.posix import PosixPty

    return await PosixPty.spawn(spec, sink)
