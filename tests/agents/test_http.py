"""``ktl-lsp serve --mcp``: the MCP server under ``/mcp`` on the gateway, behind its token."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from ktl_lsp.gateway.auth import token_path
from tests.agents.conftest import AGENT, answer, run_session, silent_cluster
from tests.cli.test_serve import _free_port, _serve


@asynccontextmanager
async def serving(
    store: Path, *flags: str, env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    port = _free_port()
    proc = await _serve(store, f"127.0.0.1:{port}", *flags, env=env)
    try:
        assert proc.stderr is not None
        while b"sign in once" not in await asyncio.wait_for(proc.stderr.readline(), 20):
            pass
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        await proc.wait()


@asynccontextmanager
async def _agent(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), client_info=AGENT) as client,
    ):
        yield client


async def test_mcp_over_http_needs_the_gateway_token(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    sid = run_session(store, "sh", "-c", "echo served over http; exit 4")
    async with serving(store, "--mcp") as base:
        token = token_path(store).read_text().strip()
        async with _agent(f"{base}/mcp", token) as agent:
            names = {t.name for t in (await agent.list_tools()).tools}
            assert "read_output" in names and "run" not in names
            out = answer(await agent.call_tool("read_output", {"sessionId": sid, "tailLines": 5}))
            assert out["text"] == "served over http\n"
            calls = answer(await agent.call_tool("list_sessions", {"kind": "agent"}))
            assert {s["meta"]["transport"] for s in calls["sessions"]} == {"http"}
            assert {s["meta"]["requester"] for s in calls["sessions"]} == {"agent:test-agent"}
            # who, for the audit trail: the gateway token's name
            assert {s["meta"]["principal"] for s in calls["sessions"]} == {"default"}

        # The SDK's client sees the refusal as an error answer; its status is checked below.
        for wrong in (None, "not-the-token"):
            with pytest.raises(BaseException) as refused:
                async with _agent(f"{base}/mcp", wrong) as agent:
                    await agent.list_tools()
            assert "Server returned an error response" in repr(refused.value)

        async with httpx.AsyncClient(base_url=base) as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            bare = await http.post("/mcp", json=body)
            assert bare.status_code == 401 and "missing authentication token" in bare.text
            wrong = await http.post("/mcp", json=body, headers={"Authorization": "Bearer x"})
            assert wrong.status_code == 401 and "invalid authentication token" in wrong.text
            cross = await http.post(
                "/mcp",
                json=body,
                headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"},
            )
            assert cross.status_code == 403


async def test_serve_without_mcp_has_no_mcp_route(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    async with serving(store) as base, httpx.AsyncClient(base_url=base) as http:
        token = token_path(store).read_text().strip()
        got = await http.post("/mcp", json={}, headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 404


async def test_a_client_that_leaves_mid_call_over_http(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    async with (
        silent_cluster(tmp_path) as kubeconfig,
        serving(store, "--mcp", env={**os.environ, "KUBECONFIG": str(kubeconfig)}) as base,
    ):
        token = token_path(store).read_text().strip()
        with anyio.move_on_after(2):
            async with _agent(f"{base}/mcp", token) as agent:
                await agent.call_tool("k8s_list", {})
        async with _agent(f"{base}/mcp", token) as agent:
            for _ in range(50):  # the server notices the session's end a moment later
                calls = answer(await agent.call_tool("list_sessions", {"kind": "agent"}))
                ended = {s["meta"]["target"]: s["state"] for s in calls["sessions"]}
                if ended.get("k8s_list") != "running":
                    break
                await asyncio.sleep(0.1)
    assert ended["k8s_list"] == "cancelled"
