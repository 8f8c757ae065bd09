"""Plans that wait for a person, through a real server: the editor is asked, ``ktl.plan.approve``
and ``ktl.plan.deny`` answer instead, and a plan whose server dies while it waits is
``interrupted`` and resumes from the node that waited."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from tests.conftest import Ktl, StartKtl
from tests.lsp.features.helpers import server_pid
from tests.lsp.features.test_plans import _plan

PLAN = {
    "name": "ship",
    "nodes": [
        {"id": "build", "run": "echo built"},
        {"id": "deploy", "run": "echo deployed", "deps": ["build"], "approve": True},
    ],
}


def editor_waits(ktl: Ktl) -> tuple[list[str], asyncio.Event]:
    """An editor that shows each question and leaves it open until ``closed`` is set."""
    asked: list[str] = []
    closed = asyncio.Event()

    @ktl.client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    async def show(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        asked.append(params.message)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(closed.wait(), 30)
        return None

    return asked, closed


async def paused_plan(ktl: Ktl, asked: list[str]) -> str:
    for _ in range(500):
        listed = await ktl.cmd("ktl.sessions.list", {"kind": "plan", "limit": 1})
        sessions: list[dict[str, Any]] = listed["sessions"]
        if sessions and sessions[0]["meta"].get("waiting") and asked:
            return str(sessions[0]["sessionId"])
        await asyncio.sleep(0.02)
    raise AssertionError("the plan did not pause")


async def test_plan_approve_and_deny_commands(ktl: Ktl, tmp_path: Path) -> None:
    asked, closed = editor_waits(ktl)
    try:
        uri = _plan(tmp_path, PLAN)
        task = ktl.start("ktl.plan.run", {"uri": uri})
        sid = await paused_plan(ktl, asked)
        assert asked == ["ktl: plan ship: Start deploy of plan ship?"]
        answered = await ktl.cmd("ktl.plan.approve", {"sessionId": sid})
        assert answered["answer"] == "Approve" and answered["who"].endswith("(editor)")
        result = await asyncio.wait_for(task, 20)
        assert [n["state"] for n in result["nodes"]] == ["done", "done"]
        with pytest.raises(JsonRpcInvalidParams, match="is not waiting for an answer"):
            await ktl.cmd("ktl.plan.deny", {"sessionId": sid})

        task = ktl.start("ktl.plan.run", {"uri": uri})
        asked.clear()
        sid = await paused_plan(ktl, asked)
        await ktl.cmd("ktl.plan.deny", {"sessionId": sid[:8]})
        result = await asyncio.wait_for(task, 20)
        assert result["nodes"][1]["state"] == "skipped"
        assert result["nodes"][1]["reason"].endswith("(editor) chose Deny")
    finally:
        closed.set()


async def test_server_dies_while_paused_then_resume_asks_again(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    store = tmp_path / "plans.db"
    first = await start_ktl(store=store)
    asked, closed = editor_waits(first)
    uri = _plan(tmp_path, PLAN)
    task = first.start("ktl.plan.run", {"uri": uri})
    sid = await paused_plan(first, asked)
    os.kill(server_pid(first), signal.SIGKILL)
    closed.set()
    with contextlib.suppress(Exception):
        await task

    second = await start_ktl(store=store)
    session = await second.cmd("ktl.session.get", {"sessionId": sid})
    assert session["state"] == "interrupted"
    asked2: list[str] = []

    @second.client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    def approve(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem:
        asked2.append(params.message)
        return lsp.MessageActionItem(title="Approve")

    result = await asyncio.wait_for(second.cmd("ktl.plan.run", {"resume": sid}), 20)
    assert result["state"] == "done"
    build, deploy = result["nodes"]
    assert build["state"] == "done" and build.get("sessionId") is not None
    assert deploy["state"] == "done"
    assert asked2 == ["ktl: plan ship: Start deploy of plan ship?"]
