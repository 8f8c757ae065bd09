"""Retention on a real store: what goes, what stays, and that the disk gets the space back."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ktl_lsp.sessions.model import Frame, FrameType, Session, State
from ktl_lsp.sessions.retention import DAY_NS, RetentionPolicy
from ktl_lsp.sessions.store import Store

NONE = RetentionPolicy(max_sessions=0, max_frames_per_session=0, max_store_bytes=0, max_age_days=0)


def _fill(
    store: Store, n: int, frames: int = 50, size: int = 2000, state: State = State.DONE
) -> list[str]:
    ids = []
    for i in range(n):
        s = Session(
            id=f"s{i:04d}",
            kind="pty",
            title="t",
            state=state,
            created_ns=1_000 + i,
            ended_ns=2_000 + i,
        )
        store.save_session(s)
        for q in range(1, frames + 1):
            store.append(Frame(s.id, q, q, FrameType.OUTPUT, os.urandom(size)))
        ids.append(s.id)
    store.flush_sync()
    return ids


def _ids(store: Store) -> list[str]:
    return [r[0] for r in store.reader().execute("SELECT id FROM sessions ORDER BY id")]


def _open(tmp_path: Path) -> Store:
    store = Store(tmp_path / "s.db")
    store.open()
    return store


def test_max_sessions_keeps_newest_pinned_and_running(tmp_path: Path) -> None:
    store = _open(tmp_path)
    _fill(store, 20)
    store.save_session(Session(id="zz-running", kind="pty", title="r", created_ns=1))
    store.flush_sync()
    store.set_pinned("s0000", True)
    result = store.prune(
        RetentionPolicy(max_sessions=5, max_frames_per_session=0, max_store_bytes=0, max_age_days=0)
    )
    kept = _ids(store)
    assert "s0000" in kept and "zz-running" in kept
    assert kept == ["s0000", "s0017", "s0018", "s0019", "zz-running"]
    assert result.deleted_sessions == 16
    assert store.integrity_check() == "ok"


def test_max_age(tmp_path: Path) -> None:
    store = _open(tmp_path)
    _fill(store, 3)  # ended in 1970
    fresh = Session(id="fresh", kind="pty", title="f", state=State.DONE)
    store.save_session(fresh)
    store.flush_sync()
    store.prune(
        RetentionPolicy(max_sessions=0, max_frames_per_session=0, max_store_bytes=0, max_age_days=1)
    )
    assert _ids(store) == ["fresh"]
    assert DAY_NS == 86_400_000_000_000


def test_trimmed_frames_leave_a_marker(tmp_path: Path) -> None:
    store = _open(tmp_path)
    (sid,) = _fill(store, 1, frames=100)
    policy = RetentionPolicy(
        max_sessions=0, max_frames_per_session=30, max_store_bytes=0, max_age_days=0
    )
    store.prune(policy)
    frames = store.frames(sid)
    assert frames[0].type is FrameType.MARKER
    assert json.loads(frames[0].data) == {"trimmed": {"from": 1, "to": 70, "frames": 70}}
    assert [f.seq for f in frames[1:]] == list(range(71, 101))
    # A later trim extends the same marker instead of stacking them.
    for q in range(101, 121):
        store.append(Frame(sid, q, q, FrameType.OUTPUT, b"x"))
    store.flush_sync()
    store.prune(policy)
    frames = store.frames(sid)
    assert json.loads(frames[0].data)["trimmed"] == {"from": 1, "to": 90, "frames": 90}
    assert [f.seq for f in frames[1:]] == list(range(91, 121))


def test_max_bytes_gives_space_back(tmp_path: Path) -> None:
    store = _open(tmp_path)
    _fill(store, 40, frames=50, size=4000)
    before = store.file_size()
    result = store.prune(
        RetentionPolicy(
            max_sessions=0, max_frames_per_session=0, max_store_bytes=2_000_000, max_age_days=0
        )
    )
    after = os.path.getsize(tmp_path / "s.db") + os.path.getsize(f"{tmp_path / 's.db'}-wal")
    assert result.deleted_sessions > 0
    assert after < before / 2
    assert after <= 2_500_000
    assert store.integrity_check() == "ok"


def test_unlimited_policy_deletes_nothing(tmp_path: Path) -> None:
    store = _open(tmp_path)
    _fill(store, 5)
    assert store.prune(NONE).deleted_sessions == 0
    assert len(_ids(store)) == 5


def test_foreign_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from ktl_lsp.sessions.store import StoreError

    foreign = tmp_path / "foreign.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE notes (x TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="another program"):
        Store(foreign).open()
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite" * 1000)
    with pytest.raises(StoreError, match="not a usable session store"):
        Store(corrupt).open()
    assert corrupt.read_bytes().startswith(b"this is not sqlite")  # untouched
