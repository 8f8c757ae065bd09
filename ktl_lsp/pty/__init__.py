"""Pseudo-terminal runners: spawn a child in a PTY and emit what it does as frames.

A runner never knows about the editor; it reports bytes and lifecycle events to a sink.
"""

from ktl_lsp.pty.base import ExitInfo, PtyError, PtySink, PtySpec, SpawnError
from ktl_lsp.pty.runner import spawn

__all__ = ["ExitInfo", "PtyError", "PtySink", "PtySpec", "SpawnError", "spawn"]
