"""The server process as a whole: start-up, shutdown paths, crash truthfulness."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import Ktl, StartKtl
from tests.lsp.features.helpers import running_session, server_pid, wait_for_text, wait_gone


async def test_contained_failure_keeps_serving(start_ktl: StartKtl) -> None:
    ktl = await start_ktl(env={"KTL_LSP_DEBUG_COMMANDS": "1"})
    with pytest.raises(JsonRpcException):
        await ktl.cmd("ktl.debug.raise", {})
    for _ in range(50):
        if "injected failure" in ktl.logs():
            break
        await asyncio.sleep(0.02)
    assert "Traceback" in ktl.logs() and "injected failure" in ktl.logs()
    result = await ktl.cmd("ktl.run", {"argv": ["true"]})
    assert result["state"] == "done"


async def test_progress_tokens_are_released(ktl: Ktl) -> None:
    await asyncio.gather(*(ktl.cmd("ktl.run", {"argv": ["echo", str(i)]}) for i in range(15)))
    stats = await ktl.cmd("ktl.server.stats", {})
    assert stats["progressTokens"] == 0
    assert stats["liveSessions"] == 0


async def test_start_up_objects_are_left_out_of_garbage_collection(ktl: Ktl) -> None:
    # Modules and classes live forever; a full collection walking them stalled every session.
    stats = await ktl.cmd("ktl.server.stats", {"watchLoop": True, "reset": True})
    assert stats["gcFrozenObjects"] > 20_000
    # The watcher also times the collector's pauses while sessions produce garbage.
    await asyncio.gather(*(ktl.cmd("ktl.run", {"argv": ["seq", "2000"]}) for _ in range(10)))
    stats = await ktl.cmd("ktl.server.stats", {})
    assert stats["gcRuns"] > 0
    assert 0 <= stats["gcMaxPauseMs"] < 10_000
    assert stats["loopTicks"] > 0 and stats["loopOwnStallsOver20Ms"] <= stats["loopTicks"]


async def test_client_vanishing_kills_children(start_ktl: StartKtl) -> None:
    ktl = await start_ktl()
    ktl.start("ktl.run", {"command": "echo pid=$$; exec sleep 60"})
    sid = await running_session(ktl)
    pid = int((await wait_for_text(ktl, sid, r"pid=(\d+)")).group(1))
    spid = server_pid(ktl)
    server = ktl.client._server
    assert server is not None and server.stdin is not None
    server.stdin.close()  # the editor is gone: no shutdown, no exit
    await asyncio.wait_for(server.wait(), 10)
    assert await wait_gone(pid)
    assert await wait_gone(spid)


async def test_killed_server_leaves_truthful_sessions(start_ktl: StartKtl, tmp_path: Path) -> None:
    store = tmp_path / "crash.db"
    first = await start_ktl(store=store)
    task = first.start("ktl.run", {"command": "echo started; exec sleep 60"})
    sid = await running_session(first)
    await wait_for_text(first, sid, "started")
    await asyncio.sleep(0.3)  # let the batched writer commit the frames
    os.kill(server_pid(first), signal.SIGKILL)
    with contextlib.suppress(RuntimeError):
        await task  # the request dies with its server
    second = await start_ktl(store=store)
    session = await second.cmd("ktl.session.get", {"sessionId": sid})
    assert session["state"] == "interrupted"
    assert "stopped while the session was running" in session["error"]
    out = await second.cmd("ktl.session.output", {"sessionId": sid, "plain": True})
    assert "started" in "".join(f["data"] for f in out["frames"])
