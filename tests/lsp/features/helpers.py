"""Small helpers for end-to-end session tests."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

from tests.conftest import Ktl


async def running_session(ktl: Ktl, timeout: float = 5) -> str:
    """The id of the newest running session (for commands started without detach)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        listed = await ktl.cmd("ktl.sessions.list", {"state": "running", "limit": 1})
        if listed["sessions"]:
            return str(listed["sessions"][0]["sessionId"])
        await asyncio.sleep(0.02)
    raise AssertionError("no running session appeared")


async def output_text(ktl: Ktl, sid: str, plain: bool = False) -> str:
    out = await ktl.cmd("ktl.session.output", {"sessionId": sid, "plain": plain})
    return "".join(f["data"] for f in out["frames"] if f["type"] == "output")


async def frames(ktl: Ktl, sid: str) -> list[dict[str, Any]]:
    out = await ktl.cmd("ktl.session.output", {"sessionId": sid})
    return list(out["frames"])


async def wait_for_text(ktl: Ktl, sid: str, pattern: str, timeout: float = 10) -> re.Match[str]:
    found: list[re.Match[str]] = []

    def check() -> bool:
        m = re.search(pattern, ktl.rec.text(sid))
        if m:
            found.append(m)
        return m is not None

    await ktl.rec.until(check, timeout)
    return found[0]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def wait_gone(pid: int, timeout: float = 5) -> bool:
    for _ in range(int(timeout / 0.02)):
        if not pid_alive(pid):
            return True
        await asyncio.sleep(0.02)
    return not pid_alive(pid)


def server_pid(ktl: Ktl) -> int:
    server = ktl.client._server
    assert server is not None
    return int(server.pid)


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of the direct children of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append((int(entry), fields[0]))
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
