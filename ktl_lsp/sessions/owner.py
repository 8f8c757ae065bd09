"""Identifies the process that records a session, so liveness can be checked after a crash."""

from __future__ import annotations

import contextlib
import functools
import os
import socket


def _start_ticks(pid: int) -> str:
    with contextlib.suppress(OSError, IndexError):
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
        # Field 22 (start time) comes after the parenthesised command name, which may hold spaces.
        return stat.rsplit(")", 1)[1].split()[19]
    return ""


@functools.cache
def current_owner() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def owner_alive(owner: str) -> bool:
    """True only when we can tell the owner is a live process on this host."""
    try:
        host, pid_s, ticks = owner.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not ticks or _start_ticks(pid) == ticks
