"""Resource list-changed notifications: a client that shows the sessions as resources hears
when one starts and when it ends, through ``subscriptions/listen`` (2026-07-28) or as
``notifications/resources/list_changed`` (the ``initialize`` handshake); the agents' own
calls say nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.agents.conftest import AGENT, answer, run_session, stdio_agent
from tests.agents.test_write_tools import _settings
from tests.cli.conftest import KTL_LSP


async def _run_briefly(agent: Client) -> str:
    started = answer(
        await agent.call_tool("run", {"argv": ["sh", "-c", "sleep 1"], "waitSeconds": 0})
    )
    assert started["state"] == "running"
    return str(started["sessionId"])


async def test_listeners_hear_a_session_start_and_end(tmp_path: Path) -> None:
    settings = _settings(tmp_path, allowWrite=True, allow=[{"tool": "run", "argv": ["sh"]}])
    async with stdio_agent(tmp_path / "s.db", None, "--settings", settings) as agent:
        async with agent.listen(resources_list_changed=True) as events:
            for _ in range(3):
                answer(await agent.call_tool("list_sessions", {}))
            with anyio.move_on_after(0.5) as quiet:
                await events.__anext__()
            assert quiet.cancelled_caught  # the agents' own calls are not resources

            sid = await _run_briefly(agent)
            with anyio.fail_after(10):
                await events.__anext__()
            listed = [str(r.uri) for r in (await agent.list_resources()).resources]
            assert listed == [f"ktl://sessions/{sid}"]
            with anyio.fail_after(10):  # and again when it ends
                await events.__anext__()
        ended = answer(await agent.call_tool("get_session", {"sessionId": sid}))
        assert ended["state"] == "done"


async def test_a_handshake_client_gets_the_notification(tmp_path: Path) -> None:
    heard: list[str] = []

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            heard.append(method)

    settings = _settings(tmp_path, allowWrite=True, allow=[{"tool": "run", "argv": ["sh"]}])
    params = StdioServerParameters(
        command=KTL_LSP, args=["--store", str(tmp_path / "s.db"), "mcp", "--settings", settings]
    )
    async with Client(
        params, client_info=AGENT, message_handler=on_message, mode="legacy"
    ) as agent:
        caps = agent.server_capabilities
        assert caps.resources is not None and caps.resources.list_changed
        await _run_briefly(agent)
        with anyio.fail_after(10):
            while heard.count("notifications/resources/list_changed") < 2:
                await anyio.sleep(0.02)


async def test_sessions_of_other_processes_on_the_store_are_told_too(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    async with stdio_agent(store) as agent:
        async with agent.listen(resources_list_changed=True) as events:
            answer(await agent.call_tool("list_sessions", {}))  # connected: the store is read
            # Another process (the editor's server, a CI run) records a session.
            await anyio.to_thread.run_sync(lambda: run_session(store, "echo", "elsewhere"))
            with anyio.fail_after(10):
                await events.__anext__()
            listed = [str(r.uri) for r in (await agent.list_resources()).resources]
        assert len(listed) == 1 and listed[0].startswith("ktl://sessions/")
