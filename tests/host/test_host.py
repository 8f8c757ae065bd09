"""Sessions that outlive the editor, as a user sees them: the real language server with
``sessions.persist`` on, killed and started again, and the real ``ktl-lsp host``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.host.protocol import HostPaths
from tests.conftest import Ktl
from tests.host.conftest import StartPersisting, alive, host_pid, ktl_lsp
from tests.lsp.features.helpers import output_text, server_pid, wait_for_text

TICKS = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"


async def ticks_in_store(ktl: Ktl, sid: str, from_seq: int = 1) -> list[int]:
    out = await ktl.cmd("ktl.session.output", {"sessionId": sid, "fromSeq": from_seq})
    seqs = [f["seq"] for f in out["frames"]]
    assert seqs == list(range(from_seq, from_seq + len(seqs))), "frames contiguous, in order"
    text = "".join(f["data"] for f in out["frames"] if f["type"] == "output")
    return [int(n) for n in re.findall(r"^tick (\d+)\r$", text, flags=re.M)]


async def kill(ktl: Ktl) -> None:
    os.kill(server_pid(ktl), signal.SIGKILL)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ktl.client.stop(), 5)


async def test_a_session_outlives_its_language_server_and_is_attached_again(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    store = tmp_path / "persist.db"
    first = await persisting(store)
    started = await first.cmd("ktl.run", {"command": TICKS, "detach": True})
    sid = started["sessionId"]
    assert started["state"] == "running"
    await wait_for_text(first, sid, r"tick 5\r\n")
    pid = host_pid(store)
    assert pid is not None and pid != server_pid(first)
    await kill(first)
    seen_before = max(await ticks_in_store_direct(store, sid))
    await asyncio.sleep(1.0)  # the host goes on writing with no language server at all

    second = await persisting(store)
    listed = await second.cmd("ktl.sessions.list", {"state": "running"})
    assert sid in [s["sessionId"] for s in listed["sessions"]]
    got = await second.cmd("ktl.session.get", {"sessionId": sid})
    assert got["state"] == "running"

    attached = await second.cmd("ktl.session.attach", {"sessionId": sid[:8], "detach": True})
    assert attached["sessionId"] == sid and attached["state"] == "running"
    ticks = await ticks_in_store(second, sid)
    assert ticks == list(range(len(ticks))), "no line lost or repeated"
    assert ticks[-1] >= seen_before + 5, "what was written while no editor was there is kept"

    # The screen comes back from the last point that draws it whole, and new output is live.
    screen = await ticks_in_store(second, sid, attached["screenFromSeq"])
    assert screen and screen[-1] >= ticks[-1]
    await wait_for_text(second, sid, rf"tick {ticks[-1] + 3}\r\n")

    # Input, resize and cancel go to the host; the end comes back as it would in-process.
    await second.cmd("ktl.session.resize", {"sessionId": sid, "cols": 100, "rows": 20})
    ended = await second.cmd("ktl.session.cancel", {"sessionId": sid})
    assert ended["state"] == "cancelled"
    assert {"sessionId": sid, "state": "cancelled", "exitCode": ended.get("exitCode")} in (
        second.rec.states
    )
    assert alive(pid), "the host outlives its sessions until it is idle"


async def ticks_in_store_direct(store: Path, sid: str) -> list[int]:
    """The ticks recorded so far, read from the store file (no server in between)."""
    import sqlite3

    db = sqlite3.connect(store)
    rows = db.execute(
        "SELECT data FROM frames WHERE session_id = ? AND type = 'output' ORDER BY seq", (sid,)
    ).fetchall()
    text = b"".join(bytes(r[0]) for r in rows).decode()
    return [int(n) for n in re.findall(r"^tick (\d+)\r$", text, flags=re.M)]


async def test_a_shell_with_command_blocks_survives_its_language_server(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    store = tmp_path / "shell.db"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("PS1='$ '\n")
    env = {"HOME": str(home)}
    first = await persisting(store, env)
    started = await first.cmd("ktl.shell", {"shell": "bash", "cwd": str(tmp_path), "detach": True})
    sid = started["sessionId"]
    await first.rec.until(lambda: "$ " in first.rec.text(sid))
    await first.cmd("ktl.session.input", {"sessionId": sid, "data": "echo before-needle\r"})
    await wait_for_text(first, sid, r"before-needle\r\n")
    await kill(first)

    second = await persisting(store, env)
    ended: list[int] = []

    @second.client.feature("ktl/block")
    def on_block(params: Any) -> None:
        ended.append(params.index)
        second.rec.poke()

    attached = await second.cmd("ktl.session.attach", {"sessionId": sid, "detach": True})
    assert attached["state"] == "running"
    await second.cmd("ktl.session.input", {"sessionId": sid, "data": "echo after-needle; false\r"})
    await second.rec.until(lambda: ended == [1])
    blocks = (await second.cmd("ktl.session.blocks", {"sessionId": sid}))["blocks"]
    assert [(b["command"], b.get("exitCode")) for b in blocks] == [
        ("echo before-needle", 0),
        ("echo after-needle; false", 1),
    ]
    screen = await second.cmd(
        "ktl.session.output", {"sessionId": sid, "fromSeq": attached["screenFromSeq"]}
    )
    assert "before-needle" in "".join(f["data"] for f in screen["frames"])
    await second.cmd("ktl.session.input", {"sessionId": sid, "data": "exit 0\r"})
    done = await second.cmd("ktl.session.wait", {"sessionId": sid, "timeoutS": 10})
    assert done["state"] == "done"


async def test_attach_says_why_a_session_cannot_be_attached(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    store = tmp_path / "attach.db"
    ktl = await persisting(store)
    done = await ktl.cmd("ktl.run", {"argv": ["true"]})
    with pytest.raises(JsonRpcInvalidParams, match=r"cannot attach to \w+: it is done"):
        await ktl.cmd("ktl.session.attach", {"sessionId": done["sessionId"]})
    # Running in this language server (persist off): attaching follows it where it runs.
    plain = await persisting(tmp_path / "plain.db", options={})
    running = await plain.cmd("ktl.run", {"argv": ["sleep", "30"], "detach": True})
    again = await plain.cmd(
        "ktl.session.attach", {"sessionId": running["sessionId"], "detach": True}
    )
    assert again["state"] == "running" and again["sessionId"] == running["sessionId"]
    await plain.cmd("ktl.session.cancel", {"sessionId": running["sessionId"]})


async def test_the_host_ends_when_idle_and_on_stop(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    store = tmp_path / "idle.db"
    options = {"sessions": {"persist": True, "hostIdleTimeout": 1}}
    ktl = await persisting(store, options=options)
    assert (await ktl.cmd("ktl.run", {"argv": ["true"]}))["state"] == "done"
    pid = host_pid(store)
    assert pid is not None
    await asyncio.sleep(1.5)
    assert alive(pid), "a client is connected: the host stays"
    await ktl.client.shutdown_session()
    await ktl.client.stop()
    await until(lambda: not alive(pid), 10)
    assert not HostPaths.of(store).socket.exists()
    status = ktl_lsp(store, "host", "--status")
    assert status.returncode == 3 and "no session host runs" in status.stdout

    # --stop: its running sessions are cancelled, and the host goes.
    again = await persisting(store)
    long = await again.cmd("ktl.run", {"argv": ["sleep", "60"], "detach": True})
    pid = host_pid(store)
    assert pid is not None
    status = ktl_lsp(store, "host", "--status")
    assert status.returncode == 0 and long["sessionId"] in status.stdout
    stopped = await asyncio.to_thread(ktl_lsp, store, "host", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    # At once, a new session: it runs in a new host (not refused on the stopped one's connection).
    after = await again.cmd("ktl.run", {"argv": ["echo", "after"]})
    assert after["state"] == "done", after
    assert host_pid(store) not in (None, pid)
    await again.rec.until(
        lambda: (
            {"sessionId": long["sessionId"], "state": "cancelled", "exitCode": 130}
            in again.rec.states
        )
    )
    await until(lambda: not alive(pid), 10)
    got = await again.cmd("ktl.session.get", {"sessionId": long["sessionId"]})
    assert got["state"] == "cancelled"


async def test_a_host_crash_marks_its_sessions_interrupted(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    store = tmp_path / "crash.db"
    ktl = await persisting(store)
    long = await ktl.cmd("ktl.run", {"argv": ["sleep", "60"], "detach": True})
    sid = long["sessionId"]
    pid = host_pid(store)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await ktl.rec.until(
        lambda: any(s["sessionId"] == sid and s["state"] == "interrupted" for s in ktl.rec.states)
    )

    async def stored() -> str:
        return str((await ktl.cmd("ktl.session.get", {"sessionId": sid}))["state"])

    for _ in range(50):
        if await stored() == "interrupted":
            break
        await asyncio.sleep(0.1)
    later = await persisting(store)
    assert (await later.cmd("ktl.session.get", {"sessionId": sid}))["state"] == "interrupted"
    # The next run starts a new host in place of the dead one's socket.
    assert (await later.cmd("ktl.run", {"argv": ["true"]}))["state"] == "done"
    assert host_pid(store) not in (None, pid)


async def until(cond: Callable[[], bool], timeout: float) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_the_host_redacts_as_the_settings_say(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    secret = "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"
    options = {"sessions": {"persist": True}, "redact": {"patterns": [r"hunter\d+"]}}
    ktl = await persisting(tmp_path / "redact.db", options=options)
    done = await ktl.cmd("ktl.run", {"command": f"echo {secret} hunter42 kept"})
    assert done["state"] == "done"
    text = await output_text(ktl, done["sessionId"])
    assert "kept" in text and secret not in text and "hunter42" not in text
    assert "[REDACTED" in text


async def test_a_new_language_server_drives_a_host_session_without_attaching_first(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    store = tmp_path / "drive.db"
    first = await persisting(store)
    echo = 'while read line; do echo "got:$line"; done'
    started = await first.cmd("ktl.run", {"command": echo, "detach": True})
    sid = started["sessionId"]
    await kill(first)

    second = await persisting(store)
    await second.cmd("ktl.session.input", {"sessionId": sid[:6], "data": "typed-here\r"})
    for _ in range(100):
        if "got:typed-here" in await output_text(second, sid):
            break
        await asyncio.sleep(0.05)
    assert "got:typed-here" in await output_text(second, sid)
    ended = await second.cmd("ktl.session.cancel", {"sessionId": sid})
    assert ended["state"] == "cancelled"
