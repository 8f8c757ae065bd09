"""ktl.run and friends, end to end through a real server process."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from tests.conftest import Ktl


async def test_run_records_output_and_exit(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"argv": ["sh", "-c", "echo hello; exit 3"]})
    assert result["state"] == "error"
    assert result["exitCode"] == 3
    sid = result["sessionId"]
    out = await ktl.cmd("ktl.session.output", {"sessionId": sid, "plain": True})
    text = "".join(f["data"] for f in out["frames"] if f["type"] == "output")
    assert text == "hello\r\n"
    assert out["lastSeq"] == out["frames"][-1]["seq"]
    db = sqlite3.connect(ktl.store)
    (state, code) = db.execute(
        "SELECT state, exit_code FROM sessions WHERE id=?", (sid,)
    ).fetchone()
    assert (state, code) == ("error", 3)


async def test_unknown_field_is_invalid_params(ktl: Ktl) -> None:
    with pytest.raises(JsonRpcInvalidParams, match="unknown field 'bogus'"):
        await ktl.cmd("ktl.run", {"argv": ["true"], "bogus": 1})
    with pytest.raises(JsonRpcInvalidParams, match="field 'cols': expected integer"):
        await ktl.cmd("ktl.run", {"argv": ["true"], "cols": "wide"})
    with pytest.raises(JsonRpcInvalidParams, match="unknown session nope"):
        await ktl.cmd("ktl.session.get", {"sessionId": "nope"})


async def test_session_data_streams_colors(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"argv": ["printf", "\\033[31mred\\033[0m\\n"]})
    await ktl.rec.until(lambda: "red" in ktl.rec.text(result["sessionId"]))
    assert "\x1b[31mred\x1b[0m" in ktl.rec.text(result["sessionId"])
    await ktl.rec.until(lambda: any(s["state"] == "done" for s in ktl.rec.states))


async def test_interrupt_ends_sleep(ktl: Ktl) -> None:
    task = ktl.start("ktl.run", {"argv": ["sleep", "30"]})
    listed = None
    for _ in range(100):
        listed = await ktl.cmd("ktl.sessions.list", {"state": "running"})
        if listed["sessions"]:
            break
        await asyncio.sleep(0.02)
    assert listed is not None and listed["sessions"]
    sid = listed["sessions"][0]["sessionId"]
    await ktl.cmd("ktl.session.signal", {"sessionId": sid, "signal": "INT"})
    result = await asyncio.wait_for(task, 5)
    assert result["signal"] == "INT"
    assert result["exitCode"] == 130


async def test_the_requests_own_work_done_token_carries_the_progress(ktl: Ktl) -> None:
    """LSP clients pass ``ExecuteCommandParams.workDoneToken``; the session reports on it."""
    ktl.client.progress_reports["editor-token-7"] = []  # the client made it: it knows it
    result = await ktl.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(
            command="ktl.run",
            arguments=[{"argv": ["sh", "-c", "echo one; sleep 0.3; echo two"]}],
            work_done_token="editor-token-7",
        )
    )
    assert result["state"] == "done"
    reports = ktl.client.progress_reports["editor-token-7"]
    assert reports[0].kind == "begin" and reports[-1].kind == "end"
    assert f"ktl-session-{result['sessionId']}" not in ktl.client.progress_reports
