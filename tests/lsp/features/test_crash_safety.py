"""Crash safety of the store: kill -9 mid-stream, and two servers sharing one store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
from pathlib import Path

from tests.conftest import StartKtl
from tests.lsp.features.helpers import running_session, server_pid

# Numbered lines, fast: about 50 MB if left to run.
GEN = "import sys\nw=sys.stdout.write\nfor i in range(1_000_000): w(f'line {i:09d} ' + 'x' * 36 + '\\n')\n"


async def test_kill_9_mid_stream_keeps_everything_before(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    store = tmp_path / "crash.db"
    first = await start_ktl(store=store)
    task = first.start("ktl.run", {"argv": ["python3", "-u", "-c", GEN]})
    sid = await running_session(first)
    await first.rec.until(lambda: len(first.rec.text(sid)) > 5_000_000, timeout=30)
    os.kill(server_pid(first), signal.SIGKILL)
    with contextlib.suppress(RuntimeError):
        await task  # the request dies with its server

    second = await start_ktl(store=store)
    session = await second.cmd("ktl.session.get", {"sessionId": sid})
    assert session["state"] == "interrupted"
    out = await second.cmd("ktl.session.output", {"sessionId": sid})
    seqs = [f["seq"] for f in out["frames"]]
    assert seqs == list(range(1, len(seqs) + 1)), "frames must be contiguous and in order"
    text = "".join(f["data"] for f in out["frames"] if f["type"] == "output")
    numbers = [int(n) for n in re.findall(r"^line (\d{9}) x{36}\r$", text, flags=re.M)]
    assert len(numbers) > 50_000
    assert numbers == list(range(len(numbers))), "no line lost or repeated before the crash"
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_two_servers_share_one_store(start_ktl: StartKtl, tmp_path: Path) -> None:
    store = tmp_path / "shared.db"
    a = await start_ktl(store=store)
    b = await start_ktl(store=store)
    ra, rb = await asyncio.gather(
        a.cmd("ktl.run", {"command": "for i in 1 2 3; do echo a$i; sleep 0.05; done"}),
        b.cmd("ktl.run", {"command": "for i in 1 2 3; do echo b$i; sleep 0.05; done"}),
    )
    assert ra["state"] == rb["state"] == "done"
    # A long session in one window is not marked interrupted when another window starts.
    long = await a.cmd("ktl.run", {"argv": ["sleep", "30"], "detach": True})
    c = await start_ktl(store=store)
    seen = await c.cmd("ktl.session.get", {"sessionId": long["sessionId"]})
    assert seen["state"] == "running"
    listed = {s["sessionId"] for s in (await c.cmd("ktl.sessions.list", {}))["sessions"]}
    assert {ra["sessionId"], rb["sessionId"], long["sessionId"]} <= listed
    out_b = await a.cmd("ktl.session.output", {"sessionId": rb["sessionId"], "plain": True})
    assert "b3" in "".join(f["data"] for f in out_b["frames"])
    await a.cmd("ktl.session.cancel", {"sessionId": long["sessionId"]})
