"""Mutual TLS: a gateway that requires client certificates (and still the token), and the
remote client (RemoteGateway) presenting one and checking the gateway's against a CA and an
explicit server name. Every refusal says its cause, to the client and in the gateway's log."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.gateway.remote import RemoteGateway, RemoteRefused, RemoteTlsRefused
from ktl_lsp.gateway.server import GatewayConfigError
from ktl_lsp.gateway.tls import ClientTls
from tests.gateway.certs import Authority, Issued
from tests.gateway.conftest import Served, serving


@dataclass
class Pki:
    ca: Authority  #: signs the gateway's certificate and the clients it accepts
    other: Authority  #: a CA nobody here trusts
    server: Issued
    alice: Issued
    expired: Issued
    stranger: Issued  #: a client certificate the other CA signed


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    where = tmp_path_factory.mktemp("pki")
    ca, other = Authority(where, "ca"), Authority(where, "other")
    return Pki(
        ca,
        other,
        ca.issue("gateway", server=True),
        ca.issue("alice"),
        ca.issue("old-alice", expired=True),
        other.issue("eve"),
    )


@pytest_asyncio.fixture
async def mtls(tmp_path: Path, pki: Pki) -> AsyncIterator[Served]:
    options = GatewayOptions(
        tls_cert=pki.server.cert, tls_key=pki.server.key, tls_client_ca=pki.ca.cert
    )
    async with serving(tmp_path, options) as served:
        yield served


def _remote(served: Served, token: str | None = None, **tls: object) -> RemoteGateway:
    return RemoteGateway(
        served.gateway.base_url,
        token or served.token,
        tls=ClientTls(**tls),  # type: ignore[arg-type]
    )


async def _refusal(remote: RemoteGateway) -> str:
    try:
        with pytest.raises(RemoteTlsRefused) as caught:
            await remote.list_sessions()
        return str(caught.value)
    finally:
        await remote.close()


async def test_a_client_ca_needs_tls_and_a_readable_ca(tmp_path: Path, pki: Pki) -> None:
    for options, message in (
        (GatewayOptions(tls_client_ca=pki.ca.cert), "--tls-client-ca needs --tls-cert"),
        (
            GatewayOptions(
                tls_cert=pki.server.cert, tls_key=pki.server.key, tls_client_ca=tmp_path / "no.pem"
            ),
            "cannot load the client CA",
        ),
    ):
        with pytest.raises(GatewayConfigError, match=message):
            async with serving(tmp_path, options):
                pass


async def test_a_trusted_client_certificate_and_the_token_get_in(mtls: Served, pki: Pki) -> None:
    s = await mtls.run("echo through-mtls")
    remote = _remote(mtls, ca_file=pki.ca.cert, cert_file=pki.alice.cert, key_file=pki.alice.key)
    try:
        assert [x.id for x in await remote.list_sessions()] == [s.id]
        items = [item async for item in remote.tail(s.id)]
        data = b"".join(i.frame.data for i in items if i.frame is not None)
        assert b"through-mtls" in data and items[-1].end is not None
    finally:
        await remote.close()
    # the certificate does not replace the token: both are needed
    wrong = _remote(
        mtls, "wrong", ca_file=pki.ca.cert, cert_file=pki.alice.cert, key_file=pki.alice.key
    )
    try:
        with pytest.raises(RemoteRefused, match="refused the token"):
            await wrong.list_sessions()
    finally:
        await wrong.close()


async def test_refused_client_certificates_say_why_on_both_ends(
    mtls: Served, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ktl_lsp.gateway")
    cases = [
        ({}, "requires a client certificate: set agent.certFile", "it sent no client certificate"),
        (
            {"cert_file": pki.expired.cert, "key_file": pki.expired.key},
            f"refused the client certificate agent.certFile ({pki.expired.cert}): it has expired",
            "its client certificate has expired",
        ),
        (
            {"cert_file": pki.stranger.cert, "key_file": pki.stranger.key},
            "it is not signed by a CA the gateway trusts",
            "its client certificate is not signed by the --tls-client-ca CA",
        ),
    ]
    for tls, client_says, server_logs in cases:
        caplog.clear()
        message = await _refusal(_remote(mtls, ca_file=pki.ca.cert, **tls))
        assert message.startswith(f"cannot connect to {mtls.gateway.base_url}: ")
        assert client_says in message, message
        gateway_log = [r.getMessage() for r in caplog.records if r.name == "ktl_lsp.gateway.tls"]
        assert gateway_log == [f"refused a TLS client: {server_logs}"], caplog.records
    # a plain HTTPS client without a certificate is refused in the handshake, before any route
    verify = ssl.create_default_context(cafile=str(pki.ca.cert))
    async with httpx.AsyncClient(base_url=mtls.gateway.base_url, verify=verify) as anon:
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            await anon.get("/healthz")


async def test_the_server_certificate_is_checked_against_the_ca_and_the_name(
    mtls: Served, pki: Pki
) -> None:
    mine = {"cert_file": pki.alice.cert, "key_file": pki.alice.key}
    message = await _refusal(_remote(mtls, ca_file=pki.other.cert, **mine))
    assert f"the server certificate is not signed by agent.caFile ({pki.other.cert})" in message
    message = await _refusal(
        _remote(mtls, ca_file=pki.ca.cert, server_name="gateway.example", **mine)
    )
    assert "the server certificate is not for gateway.example (agent.serverName)" in message


async def test_an_explicit_server_name_other_than_the_url_host(tmp_path: Path, pki: Pki) -> None:
    """A gateway reached by address whose certificate names only its service name."""
    named = pki.ca.issue("named-gateway", server=True, hosts=("gateway.internal",))
    options = GatewayOptions(tls_cert=named.cert, tls_key=named.key, tls_client_ca=pki.ca.cert)
    mine = {"ca_file": pki.ca.cert, "cert_file": pki.alice.cert, "key_file": pki.alice.key}
    async with serving(tmp_path, options) as served:
        message = await _refusal(_remote(served, **mine))
        assert "the server certificate is not for 127.0.0.1, the host in agent.url" in message
        remote = _remote(served, server_name="gateway.internal", **mine)
        try:
            assert await remote.list_sessions() == []
        finally:
            await remote.close()


async def test_a_refusal_ends_a_tail_instead_of_retrying(mtls: Served, pki: Pki) -> None:
    s = await mtls.run("echo x")
    remote = _remote(
        mtls, ca_file=pki.ca.cert, cert_file=pki.expired.cert, key_file=pki.expired.key
    )
    try:
        with pytest.raises(RemoteTlsRefused, match="it has expired"):
            async for item in remote.tail(s.id):
                assert item.reconnecting is None, item
    finally:
        await remote.close()


async def test_unusable_client_settings_are_refused_before_connecting(
    tmp_path: Path, pki: Pki
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    for url, tls, message in (
        ("https://127.0.0.1:1", {"cert_file": not_pem}, f"cannot load agent.certFile ({not_pem})"),
        (
            "https://127.0.0.1:1",
            {"cert_file": pki.alice.cert, "key_file": pki.stranger.key},
            "with agent.keyFile",
        ),
        ("https://127.0.0.1:1", {"key_file": pki.alice.key}, "agent.keyFile is set without"),
        ("https://127.0.0.1:1", {"ca_file": tmp_path / "none.pem"}, "cannot load agent.caFile"),
        ("http://127.0.0.1:1", {"ca_file": pki.ca.cert}, "need an https agent.url"),
    ):
        with pytest.raises(RemoteTlsRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
            RemoteGateway(url, "t", tls=ClientTls(**tls))  # type: ignore[arg-type]
