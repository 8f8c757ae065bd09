"""A session's output as redacted plain text in bounded pages (``sessions/plain``), read back
from a real store through ``SessionManager.plain_output``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager
from ktl_lsp.sessions.model import FrameType, State


@pytest_asyncio.fixture
async def manager(tmp_path: Path) -> AsyncIterator[SessionManager]:
    m = SessionManager.open(tmp_path / "s.db")
    yield m
    m.close()


async def _recorded(manager: SessionManager, *frames: bytes) -> LiveSession:
    live = manager.create(RunSpec(argv=["x"]))
    for data in frames:
        live.emit(FrameType.OUTPUT, data)
    manager.finish(live, State.DONE, exit_code=0)
    await manager.flush()
    return live


async def test_plain_text_is_redacted_collapsed_and_stripped(manager: SessionManager) -> None:
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    live = await _recorded(
        manager,
        b"\x1b[1mbold\x1b[0m line\r\n",
        f"key {key}\r\n".encode(),
        b"pull 10%\rpull 60%",
        b"\rpull 100%\r\n",  # the redraw continues in the next frame
        b"\x1b]0;title\x07done",
    )
    page = await manager.plain_output(live.id, tail_lines=10, max_bytes=1000)
    assert page.text == "bold line\nkey [REDACTED aws-access-key-id]\npull 100%\ndone"
    assert page.redacted == ["aws-access-key-id"] and not page.truncated
    last = await manager.plain_output(live.id, tail_lines=1, max_bytes=1000)
    assert last.text == "done"
    none = await manager.plain_output(live.id, tail_lines=0, max_bytes=1000)
    assert none.text == ""


async def test_forward_pages_put_together_give_the_whole_text(manager: SessionManager) -> None:
    frames = [f"frame {i} ".encode() * (i + 1) + b"\r\n" for i in range(30)]
    frames.insert(7, b"y" * 5000 + b"\r\n")  # a frame bigger than a page
    live = await _recorded(manager, *frames)
    whole = (await manager.plain_output(live.id, from_seq=1, max_bytes=1 << 20)).text
    for budget in (1, 7, 100, 999):
        pages, seq, offset = [], 1, 0
        while True:
            page = await manager.plain_output(
                live.id, from_seq=seq, offset=offset, max_bytes=budget
            )
            assert len(page.text.encode()) <= budget
            pages.append(page.text)
            if page.next_seq is None:
                break
            seq, offset = page.next_seq, page.next_offset
        assert "".join(pages) == whole, budget


async def test_multibyte_text_is_never_cut_inside_a_character(manager: SessionManager) -> None:
    live = await _recorded(manager, "ünïcødé ✓\r\n".encode() * 50)
    for budget in (1, 2, 3, 5):
        page = await manager.plain_output(live.id, tail_lines=100, max_bytes=budget)
        assert len(page.text.encode()) <= budget and page.truncated
        page.text.encode()  # whole characters only


async def test_the_last_200_lines_of_a_large_session_are_read_from_its_end(
    manager: SessionManager,
) -> None:
    # How fast is bench/bench_agents.py's figure; here: the right lines, whatever the size.
    live = manager.create(RunSpec(argv=["big"]))
    n = 0
    for _ in range(400):
        lines = []
        for _ in range(300):
            n += 1
            lines.append(b"\x1b[36m" + b"line %07d " % n + b"x" * 80 + b"\x1b[0m\r\n")
        live.emit(FrameType.OUTPUT, b"".join(lines))
    manager.finish(live, State.DONE, exit_code=0)
    await manager.flush()
    page = await manager.plain_output(live.id, tail_lines=200, max_bytes=65536)
    got = page.text.splitlines()
    assert len(got) == 200
    assert [int(line.split()[1]) for line in got] == list(range(n - 199, n + 1))
    assert "\x1b" not in page.text
