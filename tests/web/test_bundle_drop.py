"""Importing a ``.ktlbundle`` by dropping it on the replay UI's list, in a real headless
Chromium against a real gateway: the imported session appears marked ``imported``; a tampered
bundle shows the error naming its member. The route itself: token, same-site, size cap."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.model import SessionFilter
from tests.gateway.conftest import Served, served, serving
from tests.web.ui_driver import Browser

__all__ = ["served"]

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def teammate_bundle(tmp_path: Path) -> tuple[str, bytes]:
    manager = SessionManager.open(tmp_path / "teammate.db")
    try:
        live = manager.start(RunSpec(argv=["sh", "-c", "echo hello-from-teammate"]))
        await live.done
        info = await manager.bundle(live.id, tmp_path / "teammate.ktlbundle")
        return live.id, info.path.read_bytes()
    finally:
        manager.close()


def tampered(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename.endswith("frames.ndjson"):
                body = body.replace(b"\n", b"\n\n", 1)
            dst.writestr(item, body)
    return out.getvalue()


def drop(name: str, data: bytes) -> str:
    """JavaScript that drops a file on the list as a person's drag and drop does."""
    b64 = base64.b64encode(data).decode()
    return (
        "(() => { const bytes = Uint8Array.from(atob('" + b64 + "'), c => c.charCodeAt(0));"
        " const dt = new DataTransfer();"
        " dt.items.add(new File([bytes], '" + name + "', {type: 'application/zip'}));"
        " const target = document.querySelector('.ui-sessions');"
        " target.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true,"
        " cancelable: true}));"
        " const dropping = document.body.dataset.dropping;"
        " target.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,"
        " cancelable: true}));"
        " return dropping; })()"
    )


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


NOTICE = "document.querySelector('.ui-import').textContent"


async def test_drop_a_bundle_on_the_list(served: Served, browser: Browser, tmp_path: Path) -> None:
    b = browser
    sid, data = await teammate_bundle(tmp_path)
    code = served.gateway.auth.mint_code()
    await b.call("goto", url=f"{served.gateway.base_url}/ui/login?code={code}&next=/ui/")
    await b.wait("document.body.dataset.rows === '0'")
    assert await b.eval(drop("teammate.ktlbundle", data)) == "1"  # the list showed the drop
    row = f"document.querySelector('tr[data-session-id=\"{sid}\"]')"
    await b.wait(f"{row} && {row}.querySelector('.ui-imported')")
    assert await b.eval(f"{row}.querySelector('.ui-imported').title") == (
        "imported from teammate.ktlbundle: read-only"
    )
    assert await b.eval(NOTICE) == "Imported 1 session from teammate.ktlbundle (read-only)."
    assert "dropping" not in await b.eval("Object.keys(document.body.dataset)")
    session = await served.manager.get(sid)
    assert session.meta["imported"]["from"] == "teammate.ktlbundle"
    assert "hello-from-teammate" in "".join(await served.manager.output_lines(sid))

    await b.eval(drop("bad.ktlbundle", tampered(data)))
    await b.wait(f"{NOTICE}.startsWith('Could not import bad.ktlbundle')")
    assert await b.eval(NOTICE) == (
        f"Could not import bad.ktlbundle: 400: tampered bundle: member "
        f"sessions/{sid}/frames.ndjson does not match its SHA-256"
    )
    assert await b.eval("document.querySelector('.ui-import').className") == "ui-import ui-bad"
    assert await b.eval("document.body.dataset.rows") == "1"  # nothing more was imported


async def test_upload_route_guards(tmp_path: Path) -> None:
    sid, data = await teammate_bundle(tmp_path)
    options = GatewayOptions(bundle_max_bytes=len(data) + 10)
    async with serving(tmp_path, options) as s:
        url = "/api/v1/bundles?name=../../etc/x.ktlbundle"
        assert (await s.anon.post(url, content=data)).status_code == 401
        other_site = {"Origin": "http://evil.example"}
        assert (await s.http.post(url, content=data, headers=other_site)).status_code == 403
        big = await s.http.post(url, content=data + b"\0" * 20)
        assert big.status_code == 413 and "larger than the gateway takes" in big.text
        streamed = await s.http.post(url, content=pieces(data, b"\0" * 20))  # no length given
        assert streamed.status_code == 413
        assert await s.manager.list_sessions(SessionFilter()) == []
        ok = await s.http.post(url, content=data)
        assert ok.status_code == 201, ok.text
        assert ok.json() == {"sessions": [sid], "from": "x.ktlbundle"}
        empty = await s.http.post("/api/v1/bundles", content=b"")
        assert empty.status_code == 400 and "no body" in empty.text
