"""Attaching to a gateway that requires client certificates (`ktl-lsp serve --tls-client-ca`):
the `agent.caFile`, `agent.certFile`/`agent.keyFile` and `agent.serverName` settings, and each
refusal told to the person with its cause (the list's showMessage, the command's error) and
logged on both ends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.gateway.auth import load_or_create_token
from tests.cli.conftest import record_in_background
from tests.conftest import StartKtl
from tests.gateway.certs import Authority, Issued
from tests.lsp.features.test_remote import _free_port, _serve


@dataclass
class Remote:
    url: str
    token: str
    ca: Authority
    alice: Issued
    process: asyncio.subprocess.Process

    def agent(self, **settings: object) -> dict[str, Any]:
        return {"agent": {"url": self.url, "token": self.token, **settings}}

    async def log(self) -> str:
        """What the gateway logged, once it has stopped."""
        self.process.terminate()
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode()


@pytest_asyncio.fixture
async def remote(tmp_path: Path) -> AsyncIterator[Remote]:
    ca = Authority(tmp_path / "pki", "ca")
    server = ca.issue("gateway", server=True)
    store = tmp_path / "remote.db"
    port = _free_port()
    process = await _serve(
        store, port,
        "--tls-cert", str(server.cert), "--tls-key", str(server.key),
        "--tls-client-ca", str(ca.cert),
    )  # fmt: skip
    served = Remote(
        f"https://127.0.0.1:{port}", load_or_create_token(store), ca, ca.issue("alice"), process
    )
    try:
        yield served
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def test_list_and_attach_with_a_client_certificate(
    start_ktl: StartKtl, remote: Remote, tmp_path: Path
) -> None:
    recorder, remote_id = await record_in_background(tmp_path / "remote.db", "echo one; echo two")
    await recorder.wait()
    a = remote.alice
    ktl = await start_ktl(
        options=remote.agent(caFile=str(remote.ca.cert), certFile=str(a.cert), keyFile=str(a.key))
    )
    listed = await ktl.cmd("ktl.sessions.list", {})
    assert "remoteError" not in listed
    assert [s["sessionId"] for s in listed["sessions"] if s.get("remote")] == [remote_id]
    result = await ktl.cmd("ktl.session.attach", {"sessionId": remote_id})
    assert result["state"] == "done" and result["remoteSessionId"] == remote_id
    assert re.findall(r"one|two", ktl.rec.text(result["sessionId"])) == ["one", "two"]
    assert "refused a TLS client" not in await remote.log()


async def test_each_refusal_says_why(start_ktl: StartKtl, remote: Remote, tmp_path: Path) -> None:
    old = remote.ca.issue("old-alice", expired=True)
    other = Authority(tmp_path / "other", "other")
    a, ca = remote.alice, str(remote.ca.cert)
    cases = [
        (
            {"caFile": ca},
            "the gateway requires a client certificate: set agent.certFile and agent.keyFile",
        ),
        (
            {"caFile": ca, "certFile": str(old.cert), "keyFile": str(old.key)},
            f"the gateway refused the client certificate agent.certFile ({old.cert}): "
            "it has expired",
        ),
        (
            {"caFile": str(other.cert), "certFile": str(a.cert), "keyFile": str(a.key)},
            f"the server certificate is not signed by agent.caFile ({other.cert})",
        ),
        (
            {"caFile": ca, "certFile": str(a.cert), "keyFile": str(a.key), "serverName": "gw.x"},
            "the server certificate is not for gw.x (agent.serverName)",
        ),
    ]
    for i, (settings, why) in enumerate(cases):
        ktl = await start_ktl(options=remote.agent(**settings), store=tmp_path / f"{i}.db")
        for _ in range(2):  # the list is asked for often: the person is told once
            listed = await ktl.cmd("ktl.sessions.list", {})
            assert listed["remoteError"] == f"cannot connect to {remote.url}: {why}"
        shown = [m.message for m in ktl.client.messages if why in m.message]
        assert shown == [listed["remoteError"]], ktl.client.messages
        with pytest.raises(JsonRpcInvalidParams, match=re.escape(why)):
            await ktl.cmd("ktl.session.attach", {"sessionId": "x"})
        assert ktl.logs().count(why) == 2, ktl.logs()  # the notice, and the attach
    log = await remote.log()
    assert "refused a TLS client: it sent no client certificate" in log
    assert "refused a TLS client: its client certificate has expired" in log
