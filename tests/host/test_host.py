"""Sessions that outlive the editor, as a user sees them: the real language server with
``sessions.persist`` on, killed and started again, and the real ``ktl-lsp host``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path

from tests.conftest import Ktl, StartKtl
from tests.host.conftest import PERSIST, alive, host_pid
from tests.lsp.features.helpers import server_pid, wait_for_text

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
    start_ktl: StartKtl, host_env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "persist.db"
    first = await start_ktl(store=store, options=PERSIST, env=host_env)
    started = await first.cmd("ktl.run", {"command": TICKS, "detach": True})
    sid = started["sessionId"]
    assert started["state"] == "running"
    await wait_for_text(first, sid, r"tick 5\r\n")
    pid = host_pid(store)
    assert pid is not None and pid != server_pid(first)
    await kill(first)
    seen_before = max(await ticks_in_store_direct(store, sid))
    await asyncio.sleep(1.0)  # the host goes on writing with no language server at all

    second = await start_ktl(store=store, options=PERSIST, env=host_env)
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
