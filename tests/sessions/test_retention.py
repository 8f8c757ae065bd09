"""Retention on a real store: what goes, what stays, and that the disk gets the space back."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.model import Frame, FrameType, Session, SessionFilter, State
from ktl_lsp.sessions.retention import DAY_NS, RetentionPolicy
from ktl_lsp.sessions.search import Query
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


def test_a_pass_merges_the_search_index_a_few_times(tmp_path: Path) -> None:
    store = _open(tmp_path)
    for i in range(100):
        s = Session(id=f"t{i:04d}", kind="pty", title="t", state=State.DONE, created_ns=1_000 + i)
        store.save_session(s)
        for q in range(1, 13):
            line = f"session{i} frame{q} " + " ".join(f"w{(i * q + k) % 997}" for k in range(400))
            store.append(Frame(s.id, q, q, FrameType.OUTPUT, line.encode() + b"\r\n"))
    store.flush_sync()
    statements: list[str] = []
    store.call(lambda conn: conn.set_trace_callback(statements.append)).result()
    # Old sessions by count, frames trimmed, then the size limit: about 50 more.
    result = store.prune(
        RetentionPolicy(
            max_sessions=90, max_frames_per_session=10, max_store_bytes=1_500_000, max_age_days=0
        )
    )
    store.call(lambda conn: conn.set_trace_callback(None)).result()
    assert 50 <= result.deleted_sessions <= 70 and result.trimmed_frames > 0
    # A merge rewrites the whole index: not once per ten sessions deleted, as it was.
    assert 1 <= sum("'optimize'" in x for x in statements) <= 4
    # The index holds what is left and nothing else.
    kept = _ids(store)
    assert {h.session_id for h in store.search(Query.parse("frame12"), 1000)} == set(kept)
    assert store.search(Query.parse("frame2"), 10) == []  # trimmed
    conn = store.reader()
    conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 1)")
    (rows,) = conn.execute(
        "SELECT COUNT(*) FROM search_text WHERE search_text MATCH 'w1'"
    ).fetchone()
    assert rows == sum(
        1
        for sid in kept
        for f in store.frames(sid)
        if f.type is FrameType.OUTPUT and b" w1 " in f.data
    )
    store.close()


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


def _tree(store: Store, root: str, child: str, *, pinned: bool = False, state: State) -> None:
    """An old finished root (a plan) with one child session."""
    store.save_session(
        Session(id=root, kind="plan", title=root, state=State.DONE, created_ns=1, ended_ns=2)
    )
    kid = Session(
        id=child, kind="pty", title=child, state=state, created_ns=3, ended_ns=4, parent_id=root
    )
    kid.pinned = pinned
    store.save_session(kid)
    store.flush_sync()


OLD = RetentionPolicy(max_sessions=0, max_frames_per_session=0, max_store_bytes=0, max_age_days=1)


def test_a_pinned_child_keeps_its_parent(tmp_path: Path) -> None:
    """Retention never removes a pinned session, not even with its parent (docs/protocol.md)."""
    store = _open(tmp_path)
    _tree(store, "plan-kept", "node-pinned", pinned=True, state=State.DONE)
    _tree(store, "plan-gone", "node-plain", state=State.DONE)
    result = store.prune(OLD)
    assert _ids(store) == ["node-pinned", "plan-kept"]
    assert result.deleted_sessions == 2


def test_a_running_child_keeps_its_parent(tmp_path: Path) -> None:
    store = _open(tmp_path)
    _tree(store, "plan", "node-running", state=State.RUNNING)
    store.prune(OLD)
    assert _ids(store) == ["node-running", "plan"]
    # the same limit by count and by size
    for policy in (
        RetentionPolicy(
            max_sessions=1, max_frames_per_session=0, max_store_bytes=0, max_age_days=0
        ),
        RetentionPolicy(
            max_sessions=0, max_frames_per_session=0, max_store_bytes=1, max_age_days=0
        ),
    ):
        store.prune(policy)
        assert _ids(store) == ["node-running", "plan"]


def test_size_limit_with_only_pinned_and_running_sessions_left(tmp_path: Path) -> None:
    """The store stays over its limit rather than remove what must stay; prune still ends."""
    store = _open(tmp_path)
    ids = _fill(store, 6, frames=40, size=4000)
    for sid in ids[:3]:
        store.set_pinned(sid, True)
    for i in range(3):
        store.save_session(Session(id=f"r{i}", kind="pty", title="r", created_ns=i))
        for q in range(1, 41):
            store.append(Frame(f"r{i}", q, q, FrameType.OUTPUT, os.urandom(4000)))
    store.flush_sync()
    result = store.prune(
        RetentionPolicy(
            max_sessions=0, max_frames_per_session=0, max_store_bytes=100_000, max_age_days=0
        )
    )
    assert _ids(store) == ["r0", "r1", "r2", *ids[:3]]
    assert result.deleted_sessions == 3  # the finished, unpinned ones
    assert store.file_size() > 100_000
    assert store.integrity_check() == "ok"


async def test_the_server_prunes_by_itself_every_interval(tmp_path: Path) -> None:
    """keep_pruning's loop, on a small real interval: it prunes, and prunes again later."""
    manager = SessionManager.open(tmp_path / "s.db")
    try:
        policy = RetentionPolicy(
            max_sessions=2,
            max_frames_per_session=0,
            max_store_bytes=0,
            max_age_days=0,
            interval_s=0.05,
        )

        async def count_after(runs: int) -> int:
            for _ in range(runs):
                await manager.start(RunSpec(argv=["true"])).done
            for _ in range(200):
                left = len(await manager.list_sessions(SessionFilter()))
                if left <= 2:
                    return left
                await asyncio.sleep(0.02)
            return len(await manager.list_sessions(SessionFilter()))

        manager.keep_pruning(policy)
        assert await count_after(4) == 2
        assert await count_after(3) == 2  # a second round: the loop goes on
    finally:
        manager.keep_pruning(RetentionPolicy(interval_s=0))
        manager.close()
