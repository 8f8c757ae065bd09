"""The gateway over HTTPS: certificates it refuses at start, the SSE tail and the replay page
over TLS, and a remote attachment (RemoteGateway) to an https gateway: from a given frame,
across a pruned range, and a token refused while it reconnects."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from ktl_lsp.gateway import Gateway
from ktl_lsp.gateway.auth import rotate_token
from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.gateway.remote import RemoteGateway, RemoteRefused, TailItem
from ktl_lsp.gateway.server import GatewayConfigError
from ktl_lsp.gateway.sse_client import SseParser
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.mirror import mirror_to_frame
from ktl_lsp.sessions.model import Session
from ktl_lsp.sessions.retention import RetentionPolicy
from tests.needs import unavailable


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    if shutil.which("openssl") is None:
        unavailable("openssl is needed to make a certificate (scripts/system-deps installs it)")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("certs")
    return {name: _certificate(directory, name) for name in ("good", "other")}


@dataclass
class Https:
    manager: SessionManager
    gateway: Gateway
    store: Path
    cert: Path

    async def run(self, command: str) -> Session:
        live = self.manager.start(RunSpec(argv=["sh", "-c", command], command=command))
        session = await live.done
        assert self.manager.store is not None
        await self.manager.store.flush()
        return session

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        """Trusts only our certificate: verification stays on."""
        headers = {"Authorization": f"Bearer {token or self.gateway.auth.token}"}
        verify = ssl.create_default_context(cafile=str(self.cert))
        return httpx.AsyncClient(base_url=self.gateway.base_url, headers=headers, verify=verify)


@pytest_asyncio.fixture
async def https(tmp_path: Path, certs: dict[str, tuple[Path, Path]]) -> AsyncIterator[Https]:
    cert, key = certs["good"]
    store = tmp_path / "s.db"
    manager = SessionManager.open(store)
    gateway = Gateway(manager, store, GatewayOptions(tls_cert=cert, tls_key=key))
    await gateway.start()
    served = Https(manager, gateway, store, cert)
    try:
        yield served
    finally:
        await served.gateway.stop()  # the one serving now (a test may have restarted it)
        manager.close()


async def _start(tmp_path: Path, **options: object) -> None:
    manager = SessionManager.open(tmp_path / "s.db")
    gateway = Gateway(manager, tmp_path / "s.db", GatewayOptions(**options))  # type: ignore[arg-type]
    try:
        await gateway.start()
    finally:
        await gateway.stop()
        manager.close()


async def test_a_file_that_is_no_certificate_is_refused(
    tmp_path: Path, certs: dict[str, tuple[Path, Path]]
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    with pytest.raises(GatewayConfigError, match="cannot load the TLS certificate"):
        await _start(tmp_path, tls_cert=bad, tls_key=certs["good"][1])


async def test_a_certificate_without_its_key_is_refused(
    tmp_path: Path, certs: dict[str, tuple[Path, Path]]
) -> None:
    cert, _ = certs["good"]
    with pytest.raises(GatewayConfigError, match="--tls-cert and --tls-key go together"):
        await _start(tmp_path, tls_cert=cert)
    with pytest.raises(GatewayConfigError, match="cannot load the TLS certificate"):
        await _start(tmp_path, tls_cert=cert, tls_key=certs["other"][1])  # another one's key


async def test_sse_tail_and_the_replay_page_over_https(https: Https) -> None:
    s = await https.run("echo over-tls")
    assert https.gateway.base_url.startswith("https://127.0.0.1:")
    async with https.client() as http:
        events = []
        parser = SseParser()
        async with http.stream("GET", f"/api/v1/mirror/sessions/{s.id}/tail") as r:
            assert r.status_code == 200
            async for chunk in r.aiter_text():
                events += parser.feed(chunk)
                if any(e.event == "end" for e in events):
                    break
        assert [int(e.id or 0) for e in events if e.event == "frame"] == list(
            range(1, s.last_seq + 1)
        )
        data = b"".join(
            mirror_to_frame(json.loads(e.data), s.id).data for e in events if e.event == "frame"
        )
        assert b"over-tls" in data
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=str(https.cert))
    ) as browser:
        signed_in = await browser.get(https.gateway.replay_url(s.id))
        assert signed_in.status_code == 303 and "Secure" in signed_in.headers["set-cookie"]
        page = await browser.get(
            signed_in.headers["location"].replace("/", https.gateway.base_url + "/", 1)
            if signed_in.headers["location"].startswith("/")
            else signed_in.headers["location"]
        )
        assert page.status_code == 200 and "<html" in page.text.lower()
    # a client that does not trust the certificate gets no connection at all
    async with httpx.AsyncClient(base_url=https.gateway.base_url) as untrusting:
        with pytest.raises(httpx.ConnectError):
            await untrusting.get("/healthz")


async def _tail(remote: RemoteGateway, sid: str, from_seq: int = 1) -> list[TailItem]:
    return [item async for item in remote.tail(sid, from_seq)]


async def test_remote_attach_over_https_from_a_frame_and_across_a_pruned_range(
    https: Https, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(https.cert))  # how a user trusts a private CA
    s = await https.run("for i in $(seq 1 30); do echo n$i; sleep 0.005; done")
    remote = RemoteGateway(https.gateway.base_url, https.gateway.auth.token)
    try:
        assert s.id in [x.id for x in await remote.list_sessions()]
        items = await _tail(remote, s.id, from_seq=3)
        seqs = [i.frame.seq for i in items if i.frame is not None]
        assert seqs == list(range(3, s.last_seq + 1))
        assert items[-1].end is not None and items[-1].end.id == s.id
        assert https.manager.store is not None
        https.manager.store.prune(
            RetentionPolicy(
                max_sessions=0, max_frames_per_session=5, max_store_bytes=0, max_age_days=0
            )
        )
        items = await _tail(remote, s.id)
        gaps = [i.dropped for i in items if i.dropped is not None]
        assert gaps and gaps[0][0] == 1, items
        kept = [i.frame.seq for i in items if i.frame is not None]
        assert kept and kept[0] > gaps[0][1] and kept[-1] == s.last_seq
        assert items[-1].end is not None
    finally:
        await remote.close()


async def test_a_token_refused_while_reconnecting_ends_the_attachment(
    https: Https, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(https.cert))
    live = https.manager.start(RunSpec(argv=["sh", "-c", "echo first; sleep 30"], command="x"))
    remote = RemoteGateway(https.gateway.base_url, https.gateway.auth.token)
    seen: list[TailItem] = []
    try:
        with pytest.raises(RemoteRefused, match="refused the token"):
            async for item in remote.tail(live.id):
                seen.append(item)
                if item.frame is not None and b"first" in item.frame.data:
                    rotate_token(https.store)  # the token changes...
                    began = time.monotonic()
                    await https.gateway.stop()  # ...and the connection drops
                    assert time.monotonic() - began < 5, "an open tail held the stop up"
                    port = https.gateway.port
                    cert, key = https.gateway.options.tls_cert, https.gateway.options.tls_key
                    https.gateway = Gateway(
                        https.manager, https.store,
                        GatewayOptions(port=port, tls_cert=cert, tls_key=key),
                    )  # fmt: skip
                    await https.gateway.start()
        # it ended on the refusal instead of retrying forever, after what came before the drop
        assert any(i.frame is not None and b"first" in i.frame.data for i in seen), seen
    finally:
        https.manager.cancel(live.id)
        await live.done
        await remote.close()
