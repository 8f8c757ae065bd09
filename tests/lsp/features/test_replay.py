"""Replay links from the editor."""

from __future__ import annotations

import httpx
import pytest
from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.gateway.auth import token_path
from tests.conftest import Ktl, StartKtl


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


async def test_the_gateway_listens_only_once_a_session_needs_it(ktl: Ktl) -> None:
    # Its code is loaded and its app built after `initialized`, but nothing is bound.
    await ktl.cmd("ktl.sessions.list", {})
    info = ktl.store.with_name(ktl.store.name + ".gateway.json")
    assert not info.exists() and not token_path(ktl.store).exists()
    result = await ktl.cmd("ktl.run", {"argv": ["true"]})
    assert info.exists() and result["replayUrl"].startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as http:
        assert (await http.get(result["replayUrl"])).status_code == 303


async def test_a_gateway_that_cannot_start_is_said_once_and_results_carry_no_link(
    start_ktl: StartKtl,
) -> None:
    # Not loopback and no TLS: the gateway refuses (its app was prepared all the same).
    ktl = await start_ktl(options={"gateway": {"host": "10.255.255.1"}})
    first = await ktl.cmd("ktl.run", {"argv": ["true"]})
    second = await ktl.cmd("ktl.run", {"argv": ["true"]})
    assert first["state"] == second["state"] == "done"
    assert "replayUrl" not in first and "replayUrl" not in second
    with pytest.raises(JsonRpcInvalidParams, match="without TLS"):
        await ktl.cmd("ktl.session.replay", {"sessionId": first["sessionId"]})
    said = [line for line in ktl.logs().splitlines() if "replay gateway could not start" in line]
    assert len(said) == 1 and "without TLS" in said[0]
