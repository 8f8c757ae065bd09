"""The SQLite store: a real file, WAL, batched writes, and crash-time truthfulness."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from ktl_lsp.sessions import ids
from ktl_lsp.sessions.model import Frame, FrameType, Session, SessionFilter, State
from ktl_lsp.sessions.store import Store


def _open(path: Path) -> Store:
    store = Store(path)
    store.open()
    return store


def test_frames_and_sessions_round_trip(tmp_path: Path) -> None:
    store = _open(tmp_path / "s.db")
    s = Session(
        id=ids.new_id(), kind="pty", title="t", meta={"command": "make"}, tags={"team": "a"}
    )
    store.save_session(s)
    for seq in range(1, 101):
        store.append(Frame(s.id, seq, seq, FrameType.OUTPUT, bytes([seq % 256]) * 10))
    store.flush_sync()
    got = store.frames(s.id, from_seq=95)
    assert [f.seq for f in got] == list(range(95, 101))
    assert got[0].data == bytes([95]) * 10
    assert store.get_session(s.id).last_seq == 100  # type: ignore[union-attr]
    assert [x.id for x in store.list_sessions(SessionFilter(meta={"command": "make"}))] == [s.id]
    assert store.list_sessions(SessionFilter(tags={"team": "b"})) == []
    assert [x.id for x in store.list_sessions(SessionFilter(tags={"team": ""}))] == [s.id]
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.close()


def test_sessions_of_a_dead_process_become_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    # A separate process records a running session and dies without finishing it.
    code = (
        "import os, sys\n"
        "from ktl_lsp.sessions.store import Store\n"
        "from ktl_lsp.sessions.model import Session\n"
        f"s = Store({str(db)!r}); s.open()\n"
        "s.save_session(Session(id='dead-1', kind='pty', title='x')); s.flush_sync()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    store = _open(db)
    live = Session(id="alive-1", kind="pty", title="mine")
    store.save_session(live)
    store.flush_sync()
    assert store.mark_interrupted() == 1
    dead = store.get_session("dead-1")
    assert dead is not None and dead.state is State.INTERRUPTED and dead.ended_ns is not None
    mine = store.get_session("alive-1")
    assert mine is not None and mine.state is State.RUNNING  # our own process is alive
    store.close()


def test_ids_sort_by_time_and_differ_early() -> None:
    made = [ids.new_id() for _ in range(200)]
    assert made == sorted(made)
    assert len(set(made)) == 200
    assert all(ids.is_valid(i) and len(i) == 16 for i in made)
    assert not ids.is_valid("../etc") and not ids.is_valid("a/b") and not ids.is_valid("")
