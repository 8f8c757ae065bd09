"""Requests that change something are refused when a page of another origin sends them.

``SameSite=Strict`` does not tell ports apart, so a page on another port of the same host gets
the sign-in cookie sent along; the gateway looks at ``Origin`` and ``Sec-Fetch-Site`` instead.
Clients without either header (curl, httpx, the editors with the token) are not browsers
and keep working. The real-browser form of this attack is tests/web/test_csrf.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from ktl_lsp.gateway.options import GatewayOptions
from tests.gateway.conftest import Served, serving

CHANGES = [
    ("POST", "/api/v1/sessions/{id}/pin"),
    ("DELETE", "/api/v1/sessions/{id}/pin"),
    ("DELETE", "/api/v1/sessions/{id}"),
    ("POST", "/api/v1/auth/cookie"),
    ("DELETE", "/api/v1/auth/cookie"),
    ("PUT", "/api/v1/sessions/{id}/pin"),
    ("PATCH", "/api/v1/sessions/{id}"),
]


async def test_a_foreign_origin_cannot_change_anything(served: Served) -> None:
    s = await served.run("echo keep-me")
    own = served.gateway.base_url
    async with httpx.AsyncClient(base_url=own, cookies={"ktl_token": served.token}) as browser:
        for method, path in CHANGES:
            url = path.format(id=s.id)
            for headers in (
                {"Origin": "http://127.0.0.1:1"},
                {"Origin": "null"},
                {"Origin": own.replace("127.0.0.1", "localhost")},
                {"Sec-Fetch-Site": "same-site"},
                {"Sec-Fetch-Site": "cross-site"},
                {"Origin": own, "Sec-Fetch-Site": "cross-site"},
            ):
                r = await browser.request(method, url, headers=headers)
                assert r.status_code == 403, (method, url, headers, r.text)
                assert "cross-site" in r.text and "set-cookie" not in r.headers
                # The token does not make it acceptable either: the page could hold it.
                r = await served.http.request(method, url, headers=headers)
                assert r.status_code == 403, (method, url, headers)
    assert (await served.manager.get(s.id)).pinned is False

    # The gateway's own pages, the address bar, and clients that are not browsers.
    for headers in (
        {"Origin": own, "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {},
    ):
        r = await served.http.post(f"/api/v1/sessions/{s.id}/pin", headers=headers)
        assert r.status_code == 200 and r.json()["pinned"] is True, headers
        r = await served.http.delete(f"/api/v1/sessions/{s.id}/pin", headers=headers)
        assert r.status_code == 200 and r.json()["pinned"] is False, headers
    # Reading is not a change: a GET with a foreign Origin is answered (without CORS headers).
    r = await served.http.get(f"/api/v1/sessions/{s.id}", headers={"Origin": "http://127.0.0.1:1"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_a_configured_cors_origin_may_change_things(tmp_path: Path) -> None:
    allowed = "https://tools.example"
    async with serving(tmp_path, GatewayOptions(cors_origins=(allowed,))) as served:
        s = await served.run("echo x")
        r = await served.http.post(
            f"/api/v1/sessions/{s.id}/pin",
            headers={"Origin": allowed, "Sec-Fetch-Site": "cross-site"},
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == allowed
        r = await served.http.post(
            f"/api/v1/sessions/{s.id}/pin", headers={"Origin": "https://other.example"}
        )
        assert r.status_code == 403


async def test_pages_cannot_be_framed(served: Served) -> None:
    s = await served.run("echo x")
    link = served.gateway.replay_url(s.id)
    signed_out = await served.anon.get("/ui/")
    bad_link = await served.anon.get("/ui/login", params={"code": "x.y", "next": "/ui/"})
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        page = await browser.get(link)
    assert page.status_code == 200 and str(page.url).endswith(f"/ui/s/{s.id}")
    for r in (signed_out, bad_link, page):
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], r.url
