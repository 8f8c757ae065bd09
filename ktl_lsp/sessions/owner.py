"""Identifies the process that records a session, so liveness can be checked after a crash."""

from __future__ import annotations

import contextlib
import functools
import os
import socket


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the parenthesised command name (which may hold spaces):
    [0] is the state, [19] the start time; empty where there is no /proc."""
    with contextlib.suppress(OSError, IndexError):
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
        return stat.rsplit(")", 1)[1].split()
    return []


def _start_ticks(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


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
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # killed, not reaped yet (its parent died too, or does not wait)
    return not ticks or (len(fields) > 19 and fields[19] == ticks)
