"""The HTML export in a real headless Chromium: it replays, seeks, searches, and fetches nothing.

Driven over the DevTools protocol (a tiny client on websocket-client). Needs Debian's
``chromium`` (scripts/system-deps.d/chromium.sh): skipped locally without it, a failure
under CI=true.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from ktl_lsp.sessions.export import export_to_path
from ktl_lsp.sessions.model import Frame, FrameType, State, event_data
from ktl_lsp.sessions.store import Store
from tests.needs import unavailable
from tests.sessions.test_export import MS, T0, Spec, open_store, record

CHROMIUM = os.environ.get("KTL_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = (
    Path(os.environ.get("KTL_TEST_ARTIFACTS", "")) if os.environ.get("KTL_TEST_ARTIFACTS") else None
)


def _need_chromium() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        unavailable(f"chromium is not installed ({CHROMIUM}; scripts/system-deps.d/chromium.sh)")
    return path


class Browser:
    """Headless Chromium with one page, driven over CDP (flattened target sessions)."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=60, suppress_origin=True
        )
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Network", "Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", page=True)

    def call(self, method: str, params: dict[str, Any] | None = None, *, page: bool = False) -> Any:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if page:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def js(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            page=True,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def until(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url}, page=True)
        self.until("document.readyState === 'complete'")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"}, page=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def event_params(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e.get("method") == method]

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    binary = _need_chromium()
    b = Browser(binary, tmp_path / "profile")
    yield b
    b.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "sessions.db")
    yield s
    s.close()


FRAMES: list[Spec] = [
    (100, FrameType.OUTPUT, b"$ make deploy\r\n"),
    (300, FrameType.OUTPUT, b"\x1b[32mbuilding\x1b[0m image \xe2\x9c\x93\r\n"),
    (500, FrameType.OUTPUT, b"progress 10%\rprogress 55%\rprogress 100%\r\n"),
    (700, FrameType.RESIZE, event_data(cols=90, rows=20)),
    (900, FrameType.OUTPUT, b"found the needle in step 3\r\n"),
    (950, FrameType.MARKER, b'{"trimmed":{"from":8,"to":19}}'),
    (1100, FrameType.OUTPUT, b"\x1b[1;31merror\x1b[0m: rollout failed\r\n"),
    (1200, FrameType.OUTPUT, b"\xff\xfe raw bytes\r\n"),
    (1400, FrameType.OUTPUT, b"done\r\n"),
    (1500, FrameType.EVENT, event_data(state="error", exitCode=2)),
]


def _export(store: Store, tmp_path: Path) -> Path:
    s = record(
        store,
        FRAMES,
        size=(80, 16),
        state=State.ERROR,
        exit_code=2,
        error="exit status 2",
        meta={
            "command": "make",
            "args": ["deploy"],
            "requester": "ana@box",
            "kubeContext": "kind-dev",
            "namespace": "shop",
        },
    )
    return export_to_path(store, s.id, "html", tmp_path / "session.html")


def _no_network(browser: Browser, page: Path) -> None:
    urls = [p["request"]["url"] for p in browser.event_params("Network.requestWillBeSent")]
    assert urls and all(u == page.as_uri() for u in urls), urls
    errors = [
        p["entry"]
        for p in browser.event_params("Log.entryAdded")
        if p["entry"].get("level") == "error"
    ]
    assert not errors, errors
    assert not browser.event_params("Runtime.exceptionThrown")


def _wait_state(browser: Browser, state: str) -> Callable[[], None]:
    def wait() -> None:
        browser.until(f"document.getElementById('ktl-player').dataset.state === {state!r}")

    return wait


def test_export_replays_in_chromium_without_network(
    browser: Browser, store: Store, tmp_path: Path
) -> None:
    page = _export(store, tmp_path)
    browser.open(page.as_uri())
    _wait_state(browser, "ended")()

    # The final screen, rendered by xterm.js: \r progress overwrote itself, colors are cells.
    screen = browser.js("ktlPlayer.screenText()")
    assert "building image ✓" in screen
    assert "progress 100%" in screen and "progress 55%" not in screen
    assert "… 12 frames trimmed …" in screen
    assert "error: rollout failed" in screen and screen.endswith("done")
    assert browser.js("[ktlPlayer.term.cols, ktlPlayer.term.rows]") == [90, 20]
    # Green cells, bold (bright) red cells, and the dim italic trimmed notice. xterm's DOM
    # renderer paints on an animation frame after the data is parsed: wait for the paint.
    wanted = ['class="xterm-fg-2"', 'class="xterm-bold xterm-fg-9"', "xterm-dim"]
    rows = browser.until(
        f"(r => {json.dumps(wanted)}.every(w => r.includes(w)) && r)"
        "(document.querySelector('.xterm-rows').innerHTML)"
    )
    assert all(w in rows for w in wanted)
    meta = browser.js("document.querySelector('.ktl-meta').innerText")
    for text in ("make deploy", "error · exit 2", "exit status 2", "ana@box", "kind-dev", "shop"):
        assert text in meta
    assert browser.js("document.querySelector('.ktl-result').textContent") == "error · exit 2"
    assert (
        browser.js("document.querySelectorAll('.ktl-tick').length") >= 2
    )  # markers on the timeline
    if ARTIFACTS is not None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(ARTIFACTS / "export-html-end.png")

    # Seek back: the screen shows only what was written by then.
    browser.js("ktlPlayer.seek(400)")
    _wait_state(browser, "paused")()
    screen = browser.js("ktlPlayer.screenText()")
    assert "building image" in screen and "progress" not in screen
    assert browser.js("[ktlPlayer.term.cols, ktlPlayer.term.rows]") == [80, 16]

    # Search seeks to the match and selects it.
    assert browser.js("ktlPlayer.search('NEEDLE')") == 1
    browser.until("ktlPlayer.term.getSelection() === 'needle'")
    assert "error: rollout" not in browser.js("ktlPlayer.screenText()")
    assert browser.js("document.querySelector('.ktl-count').textContent") == "1/1"
    assert browser.js("ktlPlayer.search('no such text')") == 0

    # Play from the start at 16x through the UI: play button, speed select.
    browser.js(
        "(() => { const s = document.querySelector('.ktl-speed'); s.value = '16';"
        " s.dispatchEvent(new Event('change')); ktlPlayer.seek(0);"
        " document.querySelector('.ktl-play').click(); })()"
    )
    assert browser.js("ktlPlayer.speed") == 16
    _wait_state(browser, "ended")()
    screen = browser.js("ktlPlayer.screenText()")
    assert "found the needle" in screen and screen.endswith("done")
    _no_network(browser, page)


def test_the_player_gets_every_frame_at_its_recorded_time(
    browser: Browser, store: Store, tmp_path: Path
) -> None:
    """Output rides in the page as NDJSON lines: the player reads each output frame back, its
    time to the microsecond (epoch nanoseconds are past a double's exact integers), in order
    with the resizes and markers (which the page lists apart)."""
    s = record(store, FRAMES, size=(80, 16), state=State.ERROR, exit_code=2)
    for i in range(1, 4):
        ts = T0 + 1_600 * MS + i * 1_234_567
        store.append(Frame(s.id, s.last_seq + i, ts, FrameType.OUTPUT, b"tick %d\r\n" % i))
    store.flush_sync()
    page = export_to_path(store, s.id, "html", tmp_path / "ticks.html")
    browser.open(page.as_uri())
    _wait_state(browser, "ended")()
    got = browser.js("ktlPlayer.frames")
    recorded = store.frames(s.id)
    assert [f[0] for f in got] == [f.seq for f in recorded if f.type is not FrameType.INPUT]
    assert [f for f in got if f[2] == "o"] == [
        [f.seq, round((f.ts_ns - T0) / 1e6, 3), "o", base64.b64encode(f.data).decode()]
        for f in recorded
        if f.type is FrameType.OUTPUT
    ]
    assert got[-1][1] == 1603.704  # 1600 ms + 3 x 1.234567 ms, to the microsecond
    assert [f[2] for f in got if f[2] != "o"] == ["m", "r", "r", "t", "m"]
    assert browser.js("ktlPlayer.screenText()").endswith("tick 3")
    _no_network(browser, page)


def test_autoplay_from_the_address(browser: Browser, store: Store, tmp_path: Path) -> None:
    page = _export(store, tmp_path)
    browser.open(page.as_uri() + "#play&speed=8")
    assert browser.js("ktlPlayer.speed") == 8
    _wait_state(browser, "ended")()
    assert browser.js("ktlPlayer.screenText()").endswith("done")
    _no_network(browser, page)


def _meta_fields(browser: Browser) -> dict[str, str]:
    return dict(
        browser.js(
            "[...document.querySelectorAll('.ktl-meta dt')]"
            ".map(dt => [dt.textContent, dt.nextElementSibling.textContent])"
        )
    )


def test_export_shows_the_command_once(browser: Browser, store: Store, tmp_path: Path) -> None:
    """A local argv run (its args repeat the end of the command) and a ktl-agent session
    (command is the cobra path, args argv without argv[0])."""
    shapes = {
        "local": ({"command": "bash -c echo hi", "args": ["-c", "echo hi"]}, "bash -c echo hi"),
        "agent": (
            {"command": "ktl logs", "args": ["logs", "web-1", "-n", "shop"]},
            "ktl logs web-1 -n shop",
        ),
    }
    for name, (meta, shown) in shapes.items():
        s = record(store, FRAMES[:2], state=State.DONE, exit_code=0, meta=meta)
        page = export_to_path(store, s.id, "html", tmp_path / f"{name}.html")
        browser.open(page.as_uri())
        _wait_state(browser, "ended")()
        assert _meta_fields(browser)["Command"] == shown


def test_a_long_session_opens_and_seeks_from_where_the_screen_starts(
    browser: Browser, store: Store, tmp_path: Path
) -> None:
    """As the replay UI's /seek: the screen at a point is written from the frame where it
    starts (here: enough lines scrolled by), not from the start of the session."""
    frames: list[Spec] = []
    for k in range(2000):
        lines = b"".join(b"line %06d\r\n" % (k * 50 + i + 1) for i in range(50))
        if k == 1990:  # a full-screen program that came and went is skipped whole
            lines = b"\x1b[?1049h\x1b[H\x1b[2Jtop\x1b[?1049l" + lines
        frames.append((k * 10, FrameType.OUTPUT, lines))
    s = record(store, frames, size=(80, 16), state=State.DONE, exit_code=0)
    page = export_to_path(store, s.id, "html", tmp_path / "long.html")
    browser.open(page.as_uri())
    _wait_state(browser, "ended")()
    assert browser.js("ktlPlayer.from") > 1900
    screen = browser.js("ktlPlayer.screenText()").splitlines()
    assert screen[0] == "line 099986" and screen[-1] == "line 100000"
    # The scrollback holds at least the 100 lines above the screen that the scan keeps.
    assert "line 099886" in browser.js("ktlPlayer.bufferText()")
    # Back to the middle: a reset, then the frames from where that screen starts.
    middle = browser.js("ktlPlayer.playTimes[1500]")
    browser.js(f"ktlPlayer.seek({middle})")
    _wait_state(browser, "paused")()
    assert 1400 < browser.js("ktlPlayer.from") <= 1500
    screen = browser.js("ktlPlayer.screenText()").splitlines()
    last = int(screen[-1].split()[1])  # the screen ends with a whole frame, lines in order
    assert 74_000 < last <= 76_000 and last % 50 == 0
    assert screen == [f"line {n:06d}" for n in range(last - 14, last + 1)]
    # From the start, everything is written.
    browser.js("ktlPlayer.seek(0)")
    assert browser.js("ktlPlayer.from") == 0
