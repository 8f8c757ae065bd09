"""Who gets in: tokens, cookies, one-time links, binds. Every API route refuses strangers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from ktl_lsp.gateway import Gateway, GatewayConfigError
from ktl_lsp.gateway.auth import token_path
from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.sessions.manager import SessionManager
from tests.gateway.conftest import Served
from tests.needs import unavailable

ROUTES = [
    ("GET", "/api/v1/mirror/sessions"),
    ("GET", "/api/v1/mirror/sessions/x"),
    ("GET", "/api/v1/mirror/sessions/x/export"),
    ("GET", "/api/v1/mirror/sessions/x/tail"),
    ("POST", "/api/v1/auth/cookie"),
    ("GET", "/api/v1/sessions"),
    ("GET", "/api/v1/sessions/x"),
    ("DELETE", "/api/v1/sessions/x"),
    ("POST", "/api/v1/sessions/x/pin"),
    ("GET", "/api/v1/sessions/x/export?format=html"),
    ("GET", "/api/v1/sessions/x/frames"),
    ("GET", "/api/v1/sessions/diff?a=x&b=y"),
]


async def test_every_route_needs_the_token(served: Served) -> None:
    for method, path in ROUTES:
        r = await served.anon.request(method, path)
        assert r.status_code == 401, (method, path)
        assert r.text == "missing authentication token\n"
        assert r.headers["content-type"].startswith("text/plain")
        assert r.headers["x-content-type-options"] == "nosniff"
        bad = await served.anon.request(method, path, headers={"X-KTL-Token": "wrong"})
        assert bad.status_code == 401 and bad.text == "invalid authentication token\n"
    assert (await served.anon.get("/ui/")).status_code == 401
    assert (await served.anon.get("/healthz")).text == "ok"


async def test_token_sources_in_ktl_agent_order(served: Served) -> None:
    path = "/api/v1/mirror/sessions"
    t = served.token
    assert (
        await served.anon.get(path, headers={"Authorization": f"bearer {t}"})
    ).status_code == 200
    assert (await served.anon.get(path, headers={"Authorization": t})).status_code == 200
    assert (await served.anon.get(path, headers={"X-KTL-Token": f"Bearer {t}"})).status_code == 200
    async with httpx.AsyncClient(base_url=served.gateway.base_url, cookies={"ktl_token": t}) as jar:
        assert (await jar.get(path)).status_code == 200
    # A wrong Authorization is not rescued by a right X-KTL-Token (no fallback).
    r = await served.anon.get(path, headers={"Authorization": "Bearer nope", "X-KTL-Token": t})
    assert r.status_code == 401
    # ?token= only with the development flag.
    assert (await served.anon.get(path, params={"token": t})).status_code == 401


async def test_preflight_and_no_cors_wildcard(served: Served) -> None:
    r = await served.anon.options(
        "/api/v1/mirror/sessions", headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 204
    r = await served.http.get("/api/v1/mirror/sessions", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_cookie_route(served: Served) -> None:
    r = await served.http.post("/api/v1/auth/cookie")
    assert r.status_code == 204
    cookie = r.headers["set-cookie"]
    assert (
        f"ktl_token={served.token}" in cookie
        and "HttpOnly" in cookie
        and "SameSite=Strict" in cookie
    )
    assert "Secure" not in cookie  # plain HTTP on loopback
    r = await served.anon.delete("/api/v1/auth/cookie")
    assert r.status_code == 204 and "Max-Age=0" in r.headers["set-cookie"]
    assert (await served.http.put("/api/v1/auth/cookie")).status_code == 405


async def test_one_time_login_link(served: Served) -> None:
    url = served.gateway.replay_url("abc")
    assert served.token not in url
    first = await served.anon.get(url)
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/s/abc"  # the code leaves the address bar
    assert (
        "HttpOnly" in first.headers["set-cookie"]
        and "SameSite=Strict" in first.headers["set-cookie"]
    )
    again = await served.anon.get(url)
    assert again.status_code == 401 and "already used" in again.text
    tampered = url.replace("code=", "code=x")
    assert (await served.anon.get(tampered)).status_code == 401
    # Only our own UI paths are accepted as the destination.
    sneaky = served.gateway.replay_url("abc").split("&next=")[0] + "&next=https://evil.example/"
    r = await served.anon.get(sneaky)
    assert r.status_code == 303 and r.headers["location"] == "/ui/"


async def test_token_file_is_private_and_shared(tmp_path: Path, served: Served) -> None:
    path = token_path(served.manager.store.path)  # type: ignore[union-attr]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == served.token


async def test_ids_are_one_path_segment(served: Served) -> None:
    for sid in ("..", "%2e%2e", "a%2Fb", "..%2F..%2Fetc%2Fpasswd"):
        r = await served.http.get(f"/api/v1/mirror/sessions/{sid}")
        assert r.status_code == 404, sid


async def test_non_loopback_bind_needs_tls(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "s.db")
    gateway = Gateway(manager, tmp_path / "s.db", GatewayOptions(host="0.0.0.0", port=0))
    with pytest.raises(GatewayConfigError, match="without TLS"):
        await gateway.start()
    manager.close()
    _ = httpx


async def test_rotation_takes_effect_without_a_restart(served: Served) -> None:
    """`ktl-lsp gateway rotate-token` (a separate process) signs out the old token, its cookies
    and its links on the running gateway; the new token works at once."""
    import asyncio
    import sys

    store = served.manager.store.path  # type: ignore[union-attr]
    path = "/api/v1/mirror/sessions"
    old_link = served.gateway.replay_url("abc")
    assert (await served.http.get(path)).status_code == 200
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ktl_lsp",
        "--store",
        str(store),
        "gateway",
        "rotate-token",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    new = token_path(store).read_text().strip()
    assert new != served.token and new not in out.decode()  # never printed
    assert stat.S_IMODE(os.stat(token_path(store)).st_mode) == 0o600
    old = await served.anon.get(path, headers={"X-KTL-Token": served.token})
    assert old.status_code == 401 and old.text == "invalid authentication token\n"
    async with httpx.AsyncClient(
        base_url=served.gateway.base_url, cookies={"ktl_token": served.token}
    ) as jar:
        assert (await jar.get(path)).status_code == 401
    assert (await served.anon.get(old_link)).status_code == 401
    assert (await served.anon.get(path, headers={"X-KTL-Token": new})).status_code == 200
    fresh = await served.anon.get(served.gateway.replay_url("abc"))
    assert fresh.status_code == 303


async def test_cookie_is_secure_under_tls(tmp_path: Path) -> None:
    """Over TLS the sign-in cookie gets Secure (over plain loopback HTTP it cannot)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        unavailable("openssl is needed to make a certificate (scripts/system-deps installs it)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    store = tmp_path / "s.db"
    manager = SessionManager.open(store)
    gateway = Gateway(manager, store, GatewayOptions(tls_cert=cert, tls_key=key))
    await gateway.start()
    try:
        url = gateway.replay_url("abc")
        assert url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(verify=False) as client:
            signed_in = await client.get(url)
            assert signed_in.status_code == 303
            cookie = signed_in.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        await gateway.stop()
        manager.close()


def test_a_link_works_once_across_every_gateway_of_the_store(tmp_path: Path) -> None:
    """The editor's gateway and `ktl-lsp serve` on the same store: a code redeemed on one is
    refused on the other."""
    from ktl_lsp.gateway.auth import Auth, used_codes_dir

    store = tmp_path / "s.db"
    editor, serve = (Auth("t0ken", None, used_codes_dir(store)) for _ in range(2))
    code = editor.mint_code()
    assert serve.redeem(code) is True
    assert editor.redeem(code) is False and serve.redeem(code) is False
    assert stat.S_IMODE(os.stat(used_codes_dir(store)).st_mode) == 0o700
    expired = editor.mint_code(ttl_s=-5)
    assert serve.redeem(expired) is False
    assert len(os.listdir(used_codes_dir(store))) == 1  # an expired code leaves no mark


async def test_bytes_that_are_not_ascii_in_any_token_source_are_refused(served: Served) -> None:
    """A token header or cookie holding raw non-ASCII bytes is a 401, not a failed check."""
    for header in (
        b"X-KTL-Token: \xff",
        b"Authorization: Bearer \xff\xfe",
        b"Authorization: \xc3\xa9t\xc3\xa9",
        b"Cookie: ktl_token=\xff",
        b"X-KTL-Token: " + served.token.encode() + b"\xff",
    ):
        answer = await served.raw(
            b"GET /api/v1/mirror/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + header
            + b"\r\nConnection: close\r\n\r\n"
        )
        status = answer.split(b"\r\n", 1)[0]
        assert status == b"HTTP/1.1 401 Unauthorized", (header, answer[:300])
        assert answer.endswith(b"invalid authentication token\n"), (header, answer[-200:])


async def test_a_login_code_with_non_ascii_signature_is_refused(served: Served) -> None:
    code = served.gateway.auth.mint_code()
    forged = code.rpartition(".")[0] + ".\u00ff" + "0" * 39
    r = await served.anon.get("/ui/login", params={"code": forged, "next": "/ui/"})
    assert r.status_code == 401 and "expired or was already used" in r.text
    # The real code still works afterwards.
    ok = await served.anon.get("/ui/login", params={"code": code, "next": "/ui/"})
    assert ok.status_code == 303
