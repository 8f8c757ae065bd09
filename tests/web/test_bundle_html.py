"""A bundle's ``replay.html``, taken out of the zip as a teammate would, replays in a real
headless Chromium with no server and no network, secrets redacted like the rest of the bundle."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ktl_lsp.sessions.bundle import write_bundle
from ktl_lsp.sessions.model import FrameType, State, event_data
from ktl_lsp.sessions.store import Store
from tests.sessions.test_export import Spec, record
from tests.web.test_export_html import Browser, _no_network, _wait_state, browser, store

__all__ = ["browser", "store"]  # the fixtures this module shares

AWS = "AKIAIOSFODNN7EXAMPLE"
FRAMES: list[Spec] = [
    (100, FrameType.OUTPUT, b"$ ktl apply -f web.yaml\r\n"),
    (300, FrameType.OUTPUT, f"using key={AWS}\r\n".encode()),
    (500, FrameType.OUTPUT, b"\x1b[32mDeployment/web configured\x1b[0m\r\n"),
    (700, FrameType.EVENT, event_data(result={"resources": [{"kind": "Deployment"}]})),
    (900, FrameType.EVENT, event_data(state="done", exitCode=0)),
]


def test_bundle_html_replays_with_no_server(browser: Browser, store: Store, tmp_path: Path) -> None:
    s = record(store, FRAMES, size=(80, 16), state=State.DONE, exit_code=0)
    info = write_bundle(store, s.id, tmp_path / "apply.ktlbundle")
    page = tmp_path / "unzipped" / "replay.html"
    page.parent.mkdir()
    with zipfile.ZipFile(info.path) as z:
        page.write_bytes(z.read(f"sessions/{s.id}/replay.html"))
    browser.open(page.as_uri())
    _wait_state(browser, "ended")()
    screen = browser.js("ktlPlayer.screenText()")
    assert "Deployment/web configured" in screen
    assert "key=[REDACTED aws-access-key-id]" in screen and AWS not in screen
    ticks = browser.js("[...document.querySelectorAll('.ktl-tick')].map(t => t.title).join('|')")
    assert "result: 1 resource" in ticks
    _no_network(browser, page)
