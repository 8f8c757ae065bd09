"""Both ways an editor cancels a session stop the process, and nothing is left behind."""

from __future__ import annotations

import asyncio
import re

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from tests.conftest import Ktl
from tests.lsp.features.helpers import (
    children,
    running_session,
    server_pid,
    wait_for_text,
    wait_gone,
)

PID_CMD = "echo pid=$$; exec sleep 60"


async def _child_pid(ktl: Ktl, sid: str) -> int:
    m = await wait_for_text(ktl, sid, r"pid=(\d+)")
    return int(m.group(1))


async def test_cancelling_progress_cancels_the_session(ktl: Ktl) -> None:
    task = ktl.start("ktl.run", {"command": PID_CMD})
    sid = await running_session(ktl)
    pid = await _child_pid(ktl, sid)
    token = f"ktl-session-{sid}"
    for _ in range(100):
        if any(r.kind == "begin" for r in ktl.client.progress_reports.get(token, [])):
            break
        await asyncio.sleep(0.02)
    ktl.client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(task, 5)
    assert result["state"] == "cancelled"
    assert await wait_gone(pid)
    assert ktl.client.progress_reports[token][-1].kind == "end"


async def test_cancel_request_stops_the_process(ktl: Ktl) -> None:
    msg_id = "run-to-cancel"
    fut = asyncio.ensure_future(
        ktl.client.protocol.send_request_async(
            lsp.WORKSPACE_EXECUTE_COMMAND,
            lsp.ExecuteCommandParams(command="ktl.run", arguments=[{"command": PID_CMD}]),
            msg_id=msg_id,
        )
    )
    sid = await running_session(ktl)
    pid = await _child_pid(ktl, sid)
    ktl.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
    try:
        await asyncio.wait_for(fut, 5)
    except JsonRpcException as exc:
        assert "cancel" in str(exc).lower()
    assert await wait_gone(pid)
    session = await ktl.cmd("ktl.session.wait", {"sessionId": sid, "timeoutS": 5})
    assert session["state"] == "cancelled"


async def test_cancel_command_escalates_past_ignored_sigint(ktl: Ktl) -> None:
    # The shell and its sleep ignore SIGINT; TERM after 3 s must end them.
    result = await ktl.cmd(
        "ktl.run", {"command": "trap '' INT; echo pid=$$; sleep 60; echo survived", "detach": True}
    )
    sid = result["sessionId"]
    pid = await _child_pid(ktl, sid)
    cancelled = await asyncio.wait_for(ktl.cmd("ktl.session.cancel", {"sessionId": sid}), 8)
    assert cancelled["state"] == "cancelled"
    assert await wait_gone(pid)
    out = await ktl.cmd("ktl.session.output", {"sessionId": sid})
    signals = [
        f["data"]
        for f in out["frames"]
        if f["type"] == "event" and f["data"].startswith('{"signal"')
    ]
    assert signals == ['{"signal":"INT"}', '{"signal":"TERM"}']
    assert "survived" not in "".join(f["data"] for f in out["frames"])


async def test_grandchildren_do_not_outlive_the_session(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"command": "sleep 60 & echo bg=$!; exit 0"})
    assert result["state"] == "done"
    out = await ktl.cmd("ktl.session.output", {"sessionId": result["sessionId"]})
    m = re.search(r"bg=(\d+)", "".join(f["data"] for f in out["frames"]))
    assert m
    assert await wait_gone(int(m.group(1)))


async def test_no_zombies_or_leaked_fds(ktl: Ktl) -> None:
    from tests.lsp.features.helpers import open_fds

    await ktl.cmd("ktl.run", {"argv": ["true"]})  # warm up: store, threads
    spid = server_pid(ktl)
    before = open_fds(spid)
    results = await asyncio.gather(
        *(ktl.cmd("ktl.run", {"command": f"echo {i}; exit {i % 3}"}) for i in range(20))
    )
    assert sorted(r["exitCode"] for r in results) == sorted(i % 3 for i in range(20))
    await asyncio.sleep(0.2)
    assert [c for c in children(spid) if c[1] == "Z"] == []
    assert open_fds(spid) <= before
