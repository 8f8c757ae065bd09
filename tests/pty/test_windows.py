"""The Windows runner (ConPTY through pywinpty) on Linux, through a stand-in ``winpty`` module
over a real terminal (tests/pty/winpty_standin). ConPTY cannot say whether it echoes, so typed
text is recorded only once it came back: a password typed at a prompt is never stored."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktl_lsp.pty import PtySpec
from ktl_lsp.pty.runner import Pty
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager
from ktl_lsp.sessions.model import FrameType, State

STANDIN = Path(__file__).with_name("winpty_standin")


@pytest.fixture(autouse=True)
def winpty(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.delitem(sys.modules, "winpty", raising=False)
    yield
    sys.modules.pop("winpty", None)


def windows(argv: list[str]) -> RunSpec:
    from ktl_lsp.pty.windows import WindowsPty

    async def open_windows(live: LiveSession) -> Pty:
        return await WindowsPty.spawn(PtySpec(argv), live)

    return RunSpec(argv=argv, opener=open_windows)


async def until_output(manager: SessionManager, live: LiveSession, text: str) -> None:
    for _ in range(500):
        frames, _ = await manager.frames(live.id)
        if text.encode() in b"".join(f.data for f in frames if f.type is FrameType.OUTPUT):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {text!r} in the output")


async def test_a_password_typed_at_a_prompt_is_not_recorded(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "s.db")
    script = "read -r -s -p 'Password: ' pw; echo; echo \"got ${#pw} characters\""
    live = manager.start(windows(["bash", "-c", script]))
    await until_output(manager, live, "Password: ")
    manager.input(live.id, "hunter2-secret\r")
    session = await asyncio.wait_for(live.done, 10)
    assert session.state is State.DONE and session.exit_code == 0
    frames, _ = await manager.frames(live.id)
    assert b"got 14 characters" in b"".join(f.data for f in frames)
    assert not any(b"hunter2" in f.data for f in frames), frames
    hidden = [f.data for f in frames if f.type is FrameType.EVENT and b'"input":"hidden"' in f.data]
    assert hidden and b'"bytes":15' in hidden[0], frames
    manager.close()


async def test_echoed_input_is_recorded_as_typed(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "s.db")
    live = manager.start(windows(["bash", "-c", 'read -r line; echo "[$line]"']))
    await until_output(manager, live, "")  # started
    manager.input(live.id, "visible words\r")
    session = await asyncio.wait_for(live.done, 10)
    assert session.state is State.DONE
    frames, _ = await manager.frames(live.id)
    typed = [f.data for f in frames if f.type is FrameType.INPUT]
    assert typed == [b"visible words\r"], frames
    assert b"[visible words]" in b"".join(f.data for f in frames if f.type is FrameType.OUTPUT)
    assert not any(f.type is FrameType.EVENT and b"hidden" in f.data for f in frames)
    manager.close()


async def test_exit_code_resize_and_interrupt(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "s.db")
    done = await manager.start(windows(["sh", "-c", "echo out; exit 7"])).done
    assert done.exit_code == 7
    live = manager.start(windows(["sh", "-c", "read x; stty size; read y"]))
    await until_output(manager, live, "")
    manager.resize(live.id, 101, 33)
    manager.input(live.id, "\r")
    await until_output(manager, live, "33 101")
    manager.signal(live.id, "INT")  # Ctrl-C through the terminal, as ConPTY takes it
    session = await asyncio.wait_for(live.done, 10)
    assert session.state is not State.RUNNING
    manager.close()
