"""An agent's changing call asked in the editor: a real ``ktl-lsp mcp`` (what the editor's
assistant starts) and the editor's real language server on the same store; the person answers
``window/showMessageRequest`` in the editor and the agent's process takes the answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import pytest
from lsprotocol import types as lsp
from mcp_types import CallToolResult
from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.agents.writes import APPROVE, DENY
from tests.agents.conftest import answer, error_text, stdio_agent
from tests.agents.test_write_tools import _settings
from tests.conftest import StartKtl


async def test_the_editor_is_asked_and_its_answer_is_taken_once(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    store = tmp_path / "sessions.db"
    ktl = await start_ktl(store=store)
    asked: list[str] = []
    choices = [APPROVE, DENY]

    @ktl.client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    async def person(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        asked.append(params.message)
        return lsp.MessageActionItem(title=choices.pop(0))

    marker = tmp_path / "approved"
    settings = _settings(tmp_path, allowWrite=True)
    async with stdio_agent(store, None, "--settings", settings) as agent:
        with anyio.fail_after(30):
            approved = await agent.call_tool("run", {"argv": ["sh", "-c", f"echo yes >> {marker}"]})
            refused = await agent.call_tool("run", {"argv": ["touch", f"{marker}.no"]})
        ran = answer(approved)
        calls = answer(await agent.call_tool("list_sessions", {"kind": "agent", "limit": 20}))
    assert len(asked) == 2 and all(m.startswith("ktl: Agent test-agent: run `") for m in asked)
    assert ran["exitCode"] == 0 and "(editor)" in ran["approval"]
    assert marker.read_text() == "yes\n"  # once
    assert "Deny" in error_text(refused) and not Path(f"{marker}.no").exists()
    runs = [s for s in calls["sessions"] if s["meta"]["target"] == "run"]
    records = [r for s in runs for r in s["meta"].get("approvals") or []]
    assert sorted(r["answer"] for r in records) == [APPROVE, DENY]
    assert all(r["who"].endswith("(editor)") for r in records)


async def test_answered_from_the_editor_s_command_and_a_second_answer_is_refused(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    store = tmp_path / "sessions.db"
    ktl = await start_ktl(store=store)
    hold = asyncio.Event()

    @ktl.client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    async def away(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        await hold.wait()  # the person looks at the dialog and does not click
        return None

    settings = _settings(tmp_path, allowWrite=True)
    try:
        async with stdio_agent(store, None, "--settings", settings) as agent:
            result: list[CallToolResult] = []

            async def call() -> None:
                result.append(await agent.call_tool("run", {"argv": ["echo", "from-agent"]}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                pending: list[dict[str, Any]] = []
                with anyio.fail_after(30):
                    while not pending:
                        pending = (await ktl.cmd("ktl.approvals.list", {}))["pending"]
                        await anyio.sleep(0.05)
                [q] = pending
                assert q["choices"] == [APPROVE, DENY]
                with pytest.raises(JsonRpcInvalidParams, match="'Yes' is not a choice"):
                    await ktl.cmd(
                        "ktl.approvals.answer",
                        {"sessionId": q["sessionId"], "n": 1, "choice": "Yes"},
                    )
                taken = await ktl.cmd(
                    "ktl.approvals.answer",
                    {"sessionId": q["sessionId"], "n": q["n"], "choice": APPROVE},
                )
                assert taken["state"] == "answered" and taken["who"].endswith("(editor)")
                with pytest.raises(JsonRpcInvalidParams, match="already answered"):
                    await ktl.cmd(
                        "ktl.approvals.answer",
                        {"sessionId": q["sessionId"], "n": q["n"], "choice": DENY},
                    )
            done = answer(result[0])
            assert done["exitCode"] == 0
            out = answer(await agent.call_tool("read_output", {"sessionId": done["sessionId"]}))
            assert out["text"] == "from-agent\n"
    finally:
        hold.set()
