"""Replay links from the editor, and `ktl-lsp serve` as its own process."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import httpx
import pytest
from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.gateway.auth import token_path
from tests.conftest import Ktl


async def test_results_carry_a_one_time_replay_url(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"command": "echo replay me"})
    url = result["replayUrl"]
    assert url.startswith("http://127.0.0.1:") and "/ui/login?code=" in url
    token = token_path(ktl.store).read_text().strip()
    assert token not in url
    async with httpx.AsyncClient() as http:
        first = await http.get(url)
        assert (
            first.status_code == 303 and first.headers["location"] == f"/ui/s/{result['sessionId']}"
        )
        # The browser now holds the cookie; the API answers it.
        api = httpx.URL(url).copy_with(
            path=f"/api/v1/mirror/sessions/{result['sessionId']}", query=None
        )
        got = await http.get(api)
        assert got.status_code == 200 and got.json()["session_id"] == result["sessionId"]
        assert (await http.get(url)).status_code == 401  # used once


async def test_replay_command(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"argv": ["true"]})
    out = await ktl.cmd("ktl.session.replay", {"sessionId": result["sessionId"]})
    assert "/ui/login?code=" in out["url"] and out["url"] != result["replayUrl"]
    with pytest.raises(JsonRpcInvalidParams, match="unknown session nope"):
        await ktl.cmd("ktl.session.replay", {"sessionId": "nope"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_process(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ktl_lsp",
        "--store",
        str(store),
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        while not any("sign in once with" in x for x in lines):
            lines.append((await asyncio.wait_for(proc.stderr.readline(), 20)).decode())
        assert any(f"serving {store} on http://127.0.0.1:{port}/ui/" in x for x in lines)
        link = (
            next(x for x in lines if "sign in once with" in x)
            .split("sign in once with ")[1]
            .strip()
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/api/v1/mirror/sessions")).status_code == 401
            token = token_path(store).read_text().strip()
            ok = await http.get(
                "/api/v1/mirror/sessions", headers={"Authorization": f"Bearer {token}"}
            )
            assert ok.json() == {"sessions": []}
            assert (await http.get(link)).status_code == 303
    finally:
        proc.terminate()
        await proc.wait()
    refused = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ktl_lsp",
        "--store",
        str(store),
        "serve",
        "--listen",
        "0.0.0.0:0",
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await refused.communicate()
    assert refused.returncode == 2 and b"without TLS" in err


async def test_rotate_token_command_signs_out_old_links(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"argv": ["true"]})
    old_url = result["replayUrl"]  # minted under the old token, never used
    before = token_path(ktl.store).read_text().strip()
    rotated = await ktl.cmd("ktl.gateway.rotateToken", {})
    assert rotated == {"path": str(token_path(ktl.store))}
    assert token_path(ktl.store).read_text().strip() != before
    async with httpx.AsyncClient() as http:
        assert (await http.get(old_url)).status_code == 401
        fresh = await ktl.cmd("ktl.session.replay", {"sessionId": result["sessionId"]})
        assert (await http.get(fresh["url"])).status_code == 303
