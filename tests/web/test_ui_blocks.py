"""The replay UI's search across sessions and a shell's command blocks, in headless Chromium
against a real gateway (skipped without node, playwright-core and chromium, as test_ui)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.gateway.conftest import Served, served
from tests.sessions.test_shells import start_shell
from tests.web.test_ui import _artifacts, open_session
from tests.web.ui_driver import Browser

__all__ = ["served"]

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def test_search_box_and_blocks(served: Served, browser: Browser, tmp_path: Path) -> None:
    b = browser
    shots = _artifacts()
    print(f"\nUI screenshots: {shots}")
    live = start_shell(served.manager, "bash", tmp_path)
    await asyncio.sleep(0.5)
    for line in ("echo ui-needle-ok", "echo ui-needle-bad; (exit 4)", "exit"):
        served.manager.input(live.id, line + "\r")
        await asyncio.sleep(0.3)
    await asyncio.wait_for(live.done, 10)
    other = await served.run("for i in $(seq 1 300); do echo filler $i; done; echo ui-needle-run")
    code = served.gateway.auth.mint_code()
    await b.call("goto", url=f"{served.gateway.base_url}/ui/login?code={code}&next=/ui/")
    await b.wait("document.body.dataset.rows === '2'")

    await b.call("fill", selector="input[name=search]", value="ui-needle")
    # The run's line, then the shell's: each command as typed at the prompt and its output.
    await b.wait("document.body.dataset.hits === '5'")
    hits = await b.eval(
        "[...document.querySelectorAll('a.ui-hit')].map(a => ({id: a.dataset.sessionId,"
        " seq: +a.dataset.seq, text: a.innerText, mark: a.querySelector('mark').textContent}))"
    )
    assert [h["id"] for h in hits] == [other.id] + [live.id] * 4  # newest first
    assert hits[0]["text"] == f"{other.id[:8]}ui-needle-run"  # where, then the line
    assert all(h["mark"] == "ui-needle" for h in hits)
    assert "search=ui-needle" in await b.eval("location.search")
    await b.call("screenshot", path=str(shots / "search.png"))

    # A match opens its session at the frame that holds it: the line is on the screen.
    await b.call("click", selector=f'a.ui-hit[data-session-id="{other.id}"]')
    await b.wait("window.ktlPlayer && ktlPlayer.root.dataset.ready === '1'")
    assert f"#seq={hits[0]['seq']}" in await b.eval("location.hash")
    assert "ui-needle-run" in await b.eval("ktlPlayer.screenText()")

    # The shell's page: its blocks, red for a non-zero exit, chapters on the timeline,
    # output to copy.
    await open_session(b, served, live.id)
    await b.wait("document.body.dataset.blocks === '3'")
    blocks = await b.eval(
        "[...document.querySelectorAll('li.ui-block')].map(li => ({text: li.innerText,"
        " bad: li.classList.contains('ui-bad')}))"
    )
    assert "echo ui-needle-ok" in blocks[0]["text"] and not blocks[0]["bad"]
    assert "exit 4" in blocks[1]["text"] and blocks[1]["bad"]
    assert await b.eval("document.querySelectorAll('.ktl-tick-bad').length") == 1
    assert await b.eval("document.querySelectorAll('.ktl-tick-block').length") >= 3
    await b.call("click", selector="li.ui-block[data-index='1'] .ui-block-copy")
    await b.wait(
        "!!document.querySelector('li.ui-block[data-index=\"1\"] .ui-block-copy').dataset.copied"
    )
    copied = await b.eval(
        "document.querySelector('li.ui-block[data-index=\"1\"] .ui-block-copy').dataset.copied"
    )
    assert copied == "ui-needle-bad"
    await b.call("screenshot", path=str(shots / "blocks.png"))
