"""Exec terminals and port-forward connections leave nothing behind: after a round of them the
server's descriptors and threads are back to the baseline a warm-up of the same shape left."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter

import httpx

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.helpers import running_session, wait_for_text
from tests.reliability.soak import settle


def fds_by_kind(pid: int) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:"):
                kinds["socket"] += 1
            elif target.startswith("pipe:"):
                kinds["pipe"] += 1
            elif target.endswith(("/ptmx", ".db", ".db-wal", ".db-shm")):
                kinds["ptmx" if target.endswith("ptmx") else "sqlite"] += 1
            elif not target.startswith("anon_inode:"):
                kinds["other"] += 1
    return kinds


async def one_round(k8s: Ktl, execs: int, connections: int) -> None:
    for i in range(execs):
        if i % 3 == 2:  # some are cancelled while they run
            task = k8s.start("ktl.exec", {"pod": "web-1", "command": ["sleep", "30"]})
            sid = await running_session(k8s)
            await k8s.cmd("ktl.session.cancel", {"sessionId": sid})
            assert (await asyncio.wait_for(task, 15))["state"] == "cancelled"
        elif i % 3 == 1:  # some are shells ended from the editor
            task = k8s.start("ktl.exec", {"pod": "web-1"})
            sid = await running_session(k8s)
            await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": f"echo round-{i}\r"})
            await wait_for_text(k8s, sid, f"round-{i}")
            await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": "exit\r"})
            assert (await asyncio.wait_for(task, 15))["state"] == "done"
        else:
            done = await k8s.cmd("ktl.exec", {"pod": "web-1", "command": ["echo", str(i)]})
            assert done["state"] == "done"
    forward = await k8s.cmd("ktl.portForward", {"pod": "web-1", "ports": [":80"]})
    url = forward["forwards"][0]["url"]
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
    async with httpx.AsyncClient(timeout=20, limits=limits) as http:
        answers = await asyncio.gather(*(http.get(f"{url}/echo?n={n}") for n in range(connections)))
    assert all(a.status_code == 200 for a in answers)
    await k8s.cmd("ktl.session.cancel", {"sessionId": forward["sessionId"]})


async def test_no_descriptor_or_thread_left_behind(k8s: Ktl, api: FakeApi) -> None:
    api.add_pod("web-1", labels={"app": "web"})
    api.serve("web-1", 80)
    # Two warm-up rounds of the same shape: the thread pool's threads each open their SQLite
    # reader the first time they serve a query (measured: 17 fds, then 25, then 25 for ever).
    for _ in range(2):
        await one_round(k8s, 9, 30)
    baseline = await settle(k8s)
    for _ in range(2):
        await one_round(k8s, 9, 30)
    after = await settle(k8s)
    assert after["liveSessions"] == 0
    before_fds, after_fds = fds_by_kind(baseline["pid"]), fds_by_kind(after["pid"])
    # Sockets, pipes and terminals are what an exec stream or a forward would leak.
    for kind in ("socket", "pipe", "ptmx", "other"):
        assert after_fds.get(kind, 0) <= before_fds.get(kind, 0) + 1, (before_fds, after_fds)
    # SQLite readers belong to executor threads (one per thread that ever queried the store),
    # and the executor only grows to its bound: no more readers than threads.
    assert after_fds.get("sqlite", 0) <= 2 * after["threads"], (after_fds, after)
    assert after["threads"] <= baseline["threads"] + 2, (baseline, after)
    for _ in range(100):  # the "container" side reaped every exec too
        if not any(api.streams.execs.values()):
            break
        await asyncio.sleep(0.05)
    assert not any(api.streams.execs.values())
