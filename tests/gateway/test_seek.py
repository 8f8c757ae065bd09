"""Seeking without replaying from the start (ktl_lsp/sessions/timeline.py, served by ktl_lsp/gateway/seek.py).

The start a seek picks is checked against a terminal emulator (pyte): replaying ``S..N`` into
a reset screen shows what replaying ``1..N`` shows. pyte has no alternate screen, so the
full-screen cases are checked by the start and reason instead.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyte
import pytest

from ktl_lsp.sessions import ids
from ktl_lsp.sessions.model import Frame, FrameType, Session, State, event_data
from ktl_lsp.sessions.store import Store
from ktl_lsp.sessions.timeline import Timeline, Timelines, find_start
from tests.gateway.conftest import Served

COLS, ROWS = 60, 10


def build(tmp_path: Path, chunks: list[bytes]) -> tuple[Store, str, list[Frame]]:
    store = Store(tmp_path / "s.db")
    store.open()
    sid = ids.new_id()
    t0 = 1_700_000_000_000_000_000
    frames = [
        Frame(sid, 1, t0, FrameType.EVENT, event_data(state="running")),
        Frame(
            sid, 2, t0 + 1000, FrameType.RESIZE, json.dumps({"cols": COLS, "rows": ROWS}).encode()
        ),
    ]
    for i, data in enumerate(chunks):
        frames.append(
            Frame(sid, len(frames) + 1, t0 + (i + 2) * 10_000_000, FrameType.OUTPUT, data)
        )
    session = Session(sid, "pty", "t", state=State.DONE, created_ns=t0, last_seq=len(frames))
    store.save_session(session)
    for f in frames:
        store.append(f)
    store.flush_sync()
    return store, sid, frames


def screen(frames: list[Frame], start: int, upto: int) -> list[str]:
    scr = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(scr)
    for f in frames:
        if start <= f.seq <= upto and f.type is FrameType.OUTPUT:
            stream.feed(f.data)
    return [line.rstrip() for line in scr.display]


def plain_chunks(rng: random.Random) -> list[bytes]:
    chunks: list[bytes] = []
    n = 0
    for i in range(160):
        kind = rng.random()
        if 60 <= i < 66:
            # a two-line progress display redrawn in place (cursor up: not plain lines)
            chunks.append(b"a: %d\r\nb: %d\r\n\x1b[2A" % (i, i))
            chunks.append(b"\x1b[2B")
        elif i in (100, 130):
            chunks.append(b"\x1b[H\x1b[2Jcleared at %d\r\n" % i)
        elif kind < 0.7:
            parts = []
            for _ in range(rng.randint(1, 4)):
                n += 1
                parts.append(
                    b"\x1b[3%dmline %d\x1b[0m %s\r\n" % (n % 8, n, b"z" * rng.randint(0, 40))
                )
            chunks.append(b"".join(parts))
        elif kind < 0.9:
            chunks.append(
                b"".join(b"\rprogress %3d%%\x1b[K" % p for p in range(0, 101, 25)) + b"\r\n"
            )
        else:
            chunks.append(b"partial %d" % i)
    return chunks


def test_start_reproduces_the_screen(tmp_path: Path) -> None:
    store, sid, frames = build(tmp_path, plain_chunks(random.Random(3)))
    conn = store.reader()
    reasons: dict[str, int] = {}
    try:
        for n in range(1, len(frames) + 1):
            r = find_start(conn, sid, n, ROWS, 1 << 20)
            assert r.seq == n and 1 <= r.start <= n and r.exact
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
            assert screen(frames, r.start, n) == screen(frames, 1, n), (n, r)
    finally:
        store.close()
    assert reasons.keys() >= {"start", "lines", "clear"}, reasons


def test_full_screen_programs(tmp_path: Path) -> None:
    before = [b"before %d\r\n" % i for i in range(50)]
    program = [b"\x1b[?1049h\x1b[H\x1b[2J"] + [b"\x1b[%d;3Hrow %d" % (r, r) for r in range(1, 9)]
    after = [b"\x1b[?1049lafter\r\n"]
    store, sid, frames = build(tmp_path, before + program + after)
    conn = store.reader()
    first_program = 3 + len(before)
    try:
        inside = find_start(conn, sid, first_program + 5, ROWS, 1 << 20)
        assert inside.start == first_program and inside.reason in ("clear", "alt")
        # After the program the main screen comes back: the start is before the program.
        out = find_start(conn, sid, len(frames), ROWS, 1 << 20)
        assert out.start < first_program and out.reason == "start"
    finally:
        store.close()


def test_budget_bounds_the_scan(tmp_path: Path) -> None:
    redraws = [b"\x1b[H" + b"".join(b"\x1b[%d;1Hcell %d" % (r, r) for r in range(1, 9))] * 2000
    store, sid, frames = build(tmp_path, [b"\x1b[2J", *redraws])
    conn = store.reader()
    try:
        r = find_start(conn, sid, len(frames), ROWS, 16 * 1024)
        assert r.reason == "budget" and not r.exact
        assert 16 * 1024 <= r.scanned < 16 * 1024 + 200
        assert r.start > len(frames) - 300
    finally:
        store.close()


def test_timeline_idle_and_sizes(tmp_path: Path) -> None:
    store, sid, frames = build(tmp_path, [b"a\r\n", b"b\r\n"])
    try:
        tl = Timeline(sid, frames[0].ts_ns, 5.0)
        tl.extend(store.reader())
        assert list(tl.seqs) == [1, 2, 3, 4]
        assert tl.play[-1] == pytest.approx(tl.play[1] + 10.0)  # 10 ms gaps capped at 5 ms
        assert tl.size_at(1) == (COLS, ROWS) and tl.total == 6
        assert tl.at_time(-1) == -1 and tl.seqs[tl.at_time(1e9)] == 4
    finally:
        store.close()


async def test_cached_timelines_are_bounded_by_bytes(tmp_path: Path) -> None:
    """Many frames make a large timeline: the cache keeps what fits, and the one asked for."""
    store, sid, frames = build(tmp_path, [b"x"] * 20_000)
    try:
        session = Session(sid, "pty", "t", state=State.DONE, created_ns=frames[0].ts_ns)
        session.last_seq = len(frames)
        cache = Timelines(size=8, max_bytes=1 << 20)
        for idle in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):  # each idle_ms is its own timeline
            tl = await cache.get(store, session, idle)
            assert tl.last_seq == len(frames) and tl.nbytes > 400_000
            assert cache.held_bytes <= 1 << 20, cache.held_bytes
            assert await cache.get(store, session, idle) is tl  # the one asked for stays
        single = Timelines(size=8, max_bytes=1000)
        assert (await single.get(store, session, 1.0)).last_seq == len(frames)
        assert single.held_bytes == (await single.get(store, session, 1.0)).nbytes
    finally:
        store.close()


async def test_routes(served: Served) -> None:
    s = await served.run("for i in $(seq 1 300); do echo row $i; done; printf 'needle\\n'")
    r = await served.http.get(f"/api/v1/sessions/{s.id}/index", params={"points": "10"})
    assert r.status_code == 200
    idx = r.json()
    assert idx["last_seq"] == s.last_seq and idx["session"]["sessionId"] == s.id
    assert 2 <= len(idx["points"]) <= 11 and idx["points"][-1][0] == s.last_seq
    assert idx["bytes"] == s.bytes_out and idx["size"] == [idx["size"][0], idx["size"][1]]
    r = await served.http.get(f"/api/v1/sessions/{s.id}/seek", params={"t_ms": "1e12"})
    sk = r.json()
    assert sk["seq"] == s.last_seq and 1 <= sk["start"] <= sk["seq"] and sk["exact"]
    r = await served.http.get(f"/api/v1/sessions/{s.id}/seek", params={"seq": "3"})
    assert r.json()["seq"] == 3
    r = await served.http.get(f"/api/v1/sessions/{s.id}/search", params={"q": "NEEDLE"})
    assert [m["seq"] for m in r.json()["matches"]] and r.json()["truncated"] is False
    r = await served.http.get(f"/api/v1/sessions/{s.id}/search", params={"q": "row", "limit": "5"})
    assert len(r.json()["matches"]) == 5 and r.json()["truncated"] is True
    assert (await served.http.get(f"/api/v1/sessions/{s.id}/seek")).status_code == 400
    assert (
        await served.http.get(f"/api/v1/sessions/{s.id}/seek", params={"seq": "x"})
    ).status_code == 400
    assert (await served.http.get(f"/api/v1/sessions/{s.id}/search")).status_code == 400
    assert (await served.http.get("/api/v1/sessions/nope/index")).status_code == 404
    for path in ("index", "seek?seq=1", "search?q=a"):
        assert (await served.anon.get(f"/api/v1/sessions/{s.id}/{path}")).status_code == 401
