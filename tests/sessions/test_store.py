"""The SQLite store: a real file, WAL, batched writes, and crash-time truthfulness."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def test_an_open_block_of_a_dead_process_is_closed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    # A shell session's process dies while its block runs: it never wrote the block's end.
    code = (
        "import os\n"
        "from ktl_lsp.sessions.blocks import Block\n"
        "from ktl_lsp.sessions.store import Store\n"
        "from ktl_lsp.sessions.model import Frame, FrameType, Session, event_data\n"
        f"s = Store({str(db)!r}); s.open()\n"
        "s.save_session(Session(id='shell-1', kind='shell', title='bash'))\n"
        "block = Block(0, 'sleep 100', '/tmp', 5, 2)\n"
        "s.append(Frame('shell-1', 1, 5, FrameType.EVENT, event_data(block=block.record())))\n"
        "s.append(Frame('shell-1', 2, 6, FrameType.OUTPUT, b'zzz'))\n"
        "s.append(Frame('shell-1', 3, 7, FrameType.OUTPUT, b'zzz'))\n"
        "s.flush_sync()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    store = _open(db)
    assert [b.ended for b in store.blocks("shell-1")] == [False]
    assert store.mark_interrupted() == 1
    (block,) = store.blocks("shell-1")
    session = store.get_session("shell-1")
    assert session is not None and session.state is State.INTERRUPTED
    assert (block.ended_ns, block.exit_code, block.to_seq) == (session.ended_ns, None, 3)
    store.close()


def test_ids_sort_by_time_and_differ_early() -> None:
    made = [ids.new_id() for _ in range(200)]
    assert made == sorted(made)
    assert len(set(made)) == 200
    assert all(ids.is_valid(i) and len(i) == 16 for i in made)
    assert not ids.is_valid("../etc") and not ids.is_valid("a/b") and not ids.is_valid("")


#: Records one session in a separate process (so a file-size limit there fails the store's
#: writes as a full disk would, without privileges), finishes it while writes fail, gives the
#: space back and then waits for recording to come back or closes at once. Prints what the
#: store said, as JSON.
FULL_DISK = """
import json, os, resource, sys, time
from pathlib import Path
from ktl_lsp.sessions.model import Frame, FrameType, Session, State
from ktl_lsp.sessions.store import Store

db, budget, when, then = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
edits = sys.argv[5] if len(sys.argv) > 5 else ""
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

def fill():
    sizes = [os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p)]
    resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes, default=0), hard))

said = []
store = Store(Path(db), on_failure=said.append, on_resume=said.append, held_frame_bytes=budget)
if when == "opening":
    fill()
store.open()
s = Session(id="full-1", kind="pty", title="x")
store.save_session(s)
if edits:  # a finished session recorded before the disk fills, deleted while it is full
    old = Session(id="old-1", kind="pty", title="old", state=State.DONE, exit_code=0)
    store.save_session(old)
for seq in (1, 2, 3):
    store.append(Frame(s.id, seq, seq, FrameType.OUTPUT, b"a" * 100))
store.flush_sync()
if when == "running":
    fill()
for seq in range(4, 204):
    store.append(Frame(s.id, seq, seq, FrameType.OUTPUT, bytes([seq]) * 1000))
s.state, s.exit_code, s.last_seq = State.DONE, 0, 203
store.save_session(s)
store.flush_sync()
off = not store.recording
if edits:  # asked while recording is off: both must hold once it is back
    store.set_pinned(s.id, True)
    store.delete(["old-1"])
    store.flush_sync()
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
if then == "wait":
    for _ in range(1000):
        if store.recording:
            break
        time.sleep(0.01)
store.close()
print(json.dumps({"off": off, "said": said}))
"""


def _fill_and_free(
    db: Path, budget: int, then: str, retry: str, when: str = "running", edits: str = ""
) -> dict[str, Any]:
    env = {**os.environ, "KTL_LSP_STORE_RETRY_S": retry}
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(db), str(budget), when, then, edits],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _recorded(db: Path) -> tuple[tuple[str, int], list[tuple[int, str, bytes]]]:
    conn = sqlite3.connect(db)
    try:
        state = conn.execute("SELECT state, exit_code FROM sessions WHERE id='full-1'").fetchone()
        frames = conn.execute(
            "SELECT seq, type, data FROM frames WHERE session_id='full-1' ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    return tuple(state), [(seq, t, bytes(d)) for seq, t, d in frames]  # type: ignore[return-value]


def test_a_full_disk_holds_the_newest_frames_and_marks_what_it_dropped(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    budget = 64 * 1024
    result = _fill_and_free(db, budget, "wait", retry="0.02,0.1")
    assert result["off"]
    said = result["said"]
    assert len(said) == 2, said
    assert said[0].startswith("recording is off")
    assert said[1].startswith("recording resumed") and "did not fit in memory" in said[1]

    state, frames = _recorded(db)
    assert state == ("done", 0)
    seqs = [seq for seq, _, _ in frames]
    assert seqs[:3] == [1, 2, 3]
    marker = [(seq, data) for seq, t, data in frames if t == "marker"]
    assert len(marker) == 1
    at, data = marker[0]
    lost = json.loads(data)["lost"]
    assert lost["from"] == 4 and lost["to"] == at and lost["frames"] == at - 3
    assert "not recorded" in json.loads(data)["message"]
    # Everything after the marker is there, in order, up to the last frame.
    assert seqs[3:] == list(range(at, 204))
    kept = [d for seq, t, d in frames if seq > at]
    assert all(d == bytes([seq]) * 1000 for (seq, _, d) in frames if seq > at)
    assert sum(len(d) + 64 for d in kept) <= budget
    assert lost["bytes"] == 1000 * lost["frames"]


@pytest.mark.parametrize("when", ["running", "opening"])
def test_space_back_just_before_closing_still_records_the_end(tmp_path: Path, when: str) -> None:
    db = tmp_path / "s.db"
    # A retry far away: only the last attempt, at close, can write what is held.
    result = _fill_and_free(db, 32 * 1024 * 1024, "close", retry="600", when=when)
    assert result["off"]
    assert [m.split(":")[0] for m in result["said"]] == ["recording is off", "recording resumed"]
    state, frames = _recorded(db)
    assert state == ("done", 0)
    assert [seq for seq, _, _ in frames] == list(range(1, 204))
    assert all(t == "output" for _, t, _ in frames)


def test_a_store_full_when_it_opens_records_once_there_is_space(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = _fill_and_free(db, 32 * 1024 * 1024, "wait", retry="0.02,0.1", when="opening")
    assert result["off"]
    said = result["said"]
    assert len(said) == 2, said
    assert "recording is off" in said[0] and "resumes once" in said[0]
    assert "move it aside" not in said[0]
    assert said[1].startswith("recording resumed")
    state, frames = _recorded(db)
    assert state == ("done", 0)
    assert [seq for seq, _, _ in frames] == list(range(1, 204))


@pytest.mark.parametrize("then", ["wait", "close"])
def test_pinning_and_deleting_while_recording_is_off_hold_once_it_is_back(
    tmp_path: Path, then: str
) -> None:
    db = tmp_path / "s.db"
    result = _fill_and_free(db, 32 * 1024 * 1024, then, retry="0.02,0.1", edits="pin+delete")
    assert result["off"]
    assert [m.split(":")[0] for m in result["said"]] == ["recording is off", "recording resumed"]
    conn = sqlite3.connect(db)
    try:
        rows = dict(conn.execute("SELECT id, pinned FROM sessions").fetchall())
    finally:
        conn.close()
    # The held row of full-1 (written back after the pin was asked) does not undo the pin,
    # and old-1 does not come back.
    assert rows == {"full-1": 1}
