"""Interactive shells in real PTYs with integration injected (sessions/shells.py): their
command blocks, and the user's own start-up files left as they are."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from ktl_lsp.sessions.blocks import Block
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager
from ktl_lsp.sessions.model import FrameType
from ktl_lsp.sessions.shells import launch
from tests.needs import unavailable


@pytest_asyncio.fixture
async def manager(tmp_path: Path) -> AsyncIterator[SessionManager]:
    m = SessionManager.open(tmp_path / "s.db")
    yield m
    m.close()


def _home(tmp_path: Path, rc: str) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".bashrc").write_text(rc)
    return home


def start_shell(
    manager: SessionManager, program: str, home: Path, cwd: Path | None = None
) -> LiveSession:
    how = launch(program)
    env = {**how.env, "HOME": str(home), "PS1": "$ ", "HISTFILE": str(home / ".hist")}
    return manager.start(
        RunSpec(argv=how.argv, env=env, cwd=str(cwd or home), kind="shell", blocks=True)
    )


async def until(cond: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def test_bash_commands_become_blocks(manager: SessionManager, tmp_path: Path) -> None:
    home = _home(tmp_path, "export FROM_RC=yes\n")
    rc_before = (home / ".bashrc").read_bytes()
    (tmp_path / "sub").mkdir()
    live = start_shell(manager, "bash", home)
    await until(lambda: len(live.blocks) == 0 and live.pty is not None)
    await asyncio.sleep(0.3)
    manager.input(live.id, "echo rc=$FROM_RC\r")
    await until(lambda: any(b.ended for b in live.blocks))
    manager.input(live.id, f"cd {tmp_path / 'sub'} && (exit 3)\r")
    await until(lambda: sum(b.ended for b in live.blocks) == 2)
    manager.input(live.id, "printf 'a;b\\\\c\\n'\r")
    await until(lambda: sum(b.ended for b in live.blocks) == 3)
    manager.input(live.id, " echo hidden-from-history\r")  # ignorespace-style: no history
    await until(lambda: sum(b.ended for b in live.blocks) == 4)
    manager.input(live.id, "exit\r")
    await asyncio.wait_for(live.done, 10)
    blocks = await manager.blocks(live.id)
    assert [b.command for b in blocks[:4]] == [
        "echo rc=$FROM_RC",
        f"cd {tmp_path / 'sub'} && (exit 3)",
        "printf 'a;b\\\\c\\n'",
        "echo hidden-from-history",
    ]
    assert [b.exit_code for b in blocks[:4]] == [0, 3, 0, 0]
    assert blocks[0].cwd == str(home) and blocks[2].cwd == str(tmp_path / "sub")
    assert all(b.to_seq is not None and b.to_seq >= b.from_seq for b in blocks[:4])
    assert await manager.block_output(live.id, 0) == "rc=yes"
    assert await manager.block_output(live.id, 2) == "a;b\\c"
    # The user's file is untouched, and the store has the same blocks as memory.
    assert (home / ".bashrc").read_bytes() == rc_before
    manager.live.pop(live.id)
    stored = await manager.blocks(live.id)
    assert [(b.index, b.command, b.exit_code) for b in stored] == [
        (b.index, b.command, b.exit_code) for b in blocks
    ]
    # The marks stay in the recording: a replay is byte for byte what bash wrote.
    frames, _ = await manager.frames(live.id)
    raw = b"".join(f.data for f in frames if f.type is FrameType.OUTPUT)
    assert raw.count(b"\x1b]633;C\x07") == len(blocks)
    # Exports keep them: asciicast markers, chapters in the HTML player.
    cast = (await manager.export(live.id, "asciicast", tmp_path / "s.cast")).read_text()
    markers = [json.loads(x)[2] for x in cast.splitlines()[1:] if json.loads(x)[1] == "m"]
    assert "$ echo rc=$FROM_RC" in markers and "exit 0: echo rc=$FROM_RC" in markers
    assert f"exit 3: cd {tmp_path / 'sub'} && (exit 3)" in markers
    page = (await manager.export(live.id, "html", tmp_path / "s.html")).read_text()
    assert "exit 3: cd" in page


async def test_a_failing_noisy_rc_still_gives_blocks(
    manager: SessionManager, tmp_path: Path
) -> None:
    rc = (
        "echo garbage \x1b]133;A\x07 \x1b[31m\n"  # prints escapes, even a foreign mark
        "no_such_command_xyz\n"
        "PROMPT_COMMAND='true;'\n"  # a trailing ';' the hook must not break
        "trap 'export LAST_DEBUG=1' DEBUG\n"  # an existing DEBUG trap is kept
        "return 1\n"
    )
    home = _home(tmp_path, rc)
    live = start_shell(manager, "bash", home)
    await asyncio.sleep(0.5)
    manager.input(live.id, "echo debug=$LAST_DEBUG\r")
    await until(lambda: any(b.ended for b in live.blocks))
    manager.input(live.id, "exit\r")
    await asyncio.wait_for(live.done, 10)
    blocks = await manager.blocks(live.id)
    assert blocks[0].command == "echo debug=$LAST_DEBUG" and blocks[0].exit_code == 0
    assert await manager.block_output(live.id, 0) == "debug=1"


async def test_a_shell_we_do_not_know_runs_plain(manager: SessionManager, tmp_path: Path) -> None:
    how = launch("/bin/sh")
    assert not how.integrated and how.argv == ["/bin/sh"]
    live = manager.start(
        RunSpec(argv=how.argv, kind="shell", blocks=True, cwd=str(tmp_path), env={"PS1": "$ "})
    )
    await asyncio.sleep(0.3)
    manager.input(live.id, "echo plain-$((1+1))\rexit\r")
    session = await asyncio.wait_for(live.done, 10)
    assert session.exit_code == 0
    assert await manager.blocks(live.id) == []
    assert "plain-2" in "".join(await manager.output_lines(live.id))


@pytest.mark.parametrize("program", ["zsh", "fish"])
async def test_other_shells(manager: SessionManager, tmp_path: Path, program: str) -> None:
    if shutil.which(program) is None:
        unavailable(f"{program} is not installed")
    home = tmp_path / "home"
    home.mkdir()
    live = start_shell(manager, program, home)
    await asyncio.sleep(1.0)
    manager.input(live.id, "false\r")
    await until(lambda: any(b.ended for b in live.blocks), 15)
    manager.input(live.id, "exit\r")
    await asyncio.wait_for(live.done, 10)
    block: Block = (await manager.blocks(live.id))[0]
    assert block.command == "false" and block.exit_code == 1
    assert os.listdir(home) == [] or program == "fish"  # zsh wrote nothing of ours there


@pytest.mark.parametrize("how", ["shell dies", "killed"])
async def test_a_block_open_when_the_shell_goes_is_closed(
    manager: SessionManager, tmp_path: Path, how: str
) -> None:
    live = start_shell(manager, "bash", _home(tmp_path, ""))
    await asyncio.sleep(0.3)
    # The shell kills itself from inside the command (its end mark never comes), or the
    # user kills the session while the command runs (an interactive shell ignores INT/TERM).
    command = (
        "echo started; sleep 1; kill -9 $$" if how == "shell dies" else "echo started; sleep 30"
    )
    manager.input(live.id, command + "\r")
    await until(lambda: bool(live.blocks) and "started" in "".join(manager_lines(live)))
    assert not live.blocks[0].ended
    if how == "killed":
        manager.signal(live.id, "KILL")
    session = await asyncio.wait_for(live.done, 10)
    assert session.state.value == ("error" if how == "shell dies" else "cancelled")
    block = live.blocks[0]
    assert block.ended and block.exit_code is None
    assert block.to_seq is not None and block.to_seq >= block.from_seq
    shown = block.to_lsp(block.ended_ns or 0)
    assert "endedAt" in shown and "exitCode" not in shown
    # The store says the same: ended, exit code unknown.
    manager.live.pop(live.id)
    (stored,) = await manager.blocks(live.id)
    assert (stored.ended_ns, stored.exit_code, stored.to_seq) == (
        block.ended_ns,
        None,
        block.to_seq,
    )
    assert await manager.block_output(live.id, 0) == "started"


def manager_lines(live: LiveSession) -> list[str]:
    """What the session printed so far (from its frames in memory or queued)."""
    store = live.manager.store
    assert store is not None
    store.flush_sync()
    return [f.data.decode(errors="replace") for f in store.frames(live.id)]
