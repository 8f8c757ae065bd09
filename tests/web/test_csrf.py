"""A page on another port of the same host cannot change sessions through the signed-in browser.

The attack as found: sign in through the one-time link, then open a page served by a second
loopback server on another port. Its form posts to the gateway and its script fetches it with
credentials; ``SameSite=Strict`` sends the cookie along (ports do not make another site). The
gateway refuses both with 403 and the session stays unpinned.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from tests.gateway.conftest import Served, served
from tests.web.ui_driver import Browser

__all__ = ["served"]  # the gateway fixture

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class Attacker:
    """A second HTTP server on 127.0.0.1, another port: the hostile page."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _form(self, request: web.Request) -> web.Response:
        action = html.escape(self.target, quote=True)
        body = (
            f"<!doctype html><form method=POST action='{action}'>"
            "<input type=hidden name=x value=1></form>"
            "<script>document.forms[0].submit()</script>"
        )
        return web.Response(text=body, content_type="text/html")

    async def _fetch(self, request: web.Request) -> web.Response:
        body = (
            "<!doctype html><script>"
            f"fetch({json.dumps(self.target)}, {{method: 'POST', mode: 'no-cors', "
            "credentials: 'include'}).then(() => { document.title = 'sent'; },"
            " (e) => { document.title = 'failed ' + e; });</script>"
        )
        return web.Response(text=body, content_type="text/html")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/form", self._form)
        app.router.add_get("/fetch", self._fetch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest_asyncio.fixture
async def attacker(served: Served) -> AsyncIterator[Attacker]:
    a = Attacker("")
    await a.start()
    yield a
    await a.stop()


async def test_another_port_cannot_pin_through_the_signed_in_browser(
    served: Served, browser: Browser, attacker: Attacker
) -> None:
    b = browser
    gw = served.gateway.base_url
    s = await served.run("echo not-to-be-pinned")
    pin = f"{gw}/api/v1/sessions/{s.id}/pin"
    attacker.target = pin
    assert attacker.url.startswith("http://127.0.0.1:") and not attacker.url.startswith(gw)

    r = await b.call("goto", url=served.gateway.replay_url(s.id))
    assert r["status"] == 200 and r["url"] == f"{gw}/ui/s/{s.id}"  # signed in: the cookie is set

    # The form that submits itself: the browser follows it to the gateway's answer.
    await b.call("goto", url=f"{attacker.url}/form")
    await b.wait(f"location.href === {json.dumps(pin)} && document.readyState === 'complete'")
    text = await b.eval("document.body.innerText")
    assert "cross-site request refused" in text, text  # the cookie went along; the origin did not
    assert f"http 403 POST {pin}" in await b.call("errors")
    assert (await served.manager.get(s.id)).pinned is False

    # A credentialed no-cors fetch from the same page: an opaque answer, and still refused.
    await b.call("goto", url=f"{attacker.url}/fetch")
    assert await b.wait("document.title.startsWith('sent') || document.title.startsWith('failed')")
    assert (await b.call("errors")).count(f"http 403 POST {pin}") == 2
    assert (await served.manager.get(s.id)).pinned is False

    # The replay UI itself still pins (its requests carry the gateway's own Origin).
    await b.call("goto", url=f"{gw}/ui/s/{s.id}")
    await b.wait("window.ktlPlayer && ktlPlayer.root.dataset.ready === '1'")
    await b.call("click", selector=".ui-pin-button")
    await b.wait("document.querySelector('.ui-pin-button').ariaPressed === 'true'")
    assert (await served.manager.get(s.id)).pinned is True
