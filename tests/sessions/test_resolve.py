"""Session ids from people: the exact id, or a unique prefix of at least 4 characters."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ktl_lsp.sessions.manager import (
    AmbiguousSession,
    LiveSession,
    RunSpec,
    SessionManager,
    TaskOutcome,
    UnknownSession,
)
from ktl_lsp.sessions.model import Session, State
from ktl_lsp.sessions.store import prefix_bound

A, B, C = "dncgcfcb00000001", "dncgcfcb00000002", "dncgd00000000003"
#: ktl-agent's ids (prefix-timestamp) can be prefixes of one another.
AGENT, AGENT_LONGER = "remote-logs-17", "remote-logs-170"
MANY = [f"zzzz{i:012d}" for i in range(1, 8)]


@pytest_asyncio.fixture
async def manager(tmp_path: Path) -> AsyncIterator[SessionManager]:
    m = SessionManager.open(tmp_path / "s.db")
    assert m.store is not None
    for sid in [A, B, C, AGENT, AGENT_LONGER, "abc", *MANY]:
        m.store.save_session(Session(id=sid, kind="pty", title=sid, state=State.DONE))
    await m.store.flush()
    yield m
    m.close()


async def test_exact_id_wins(manager: SessionManager) -> None:
    for sid in (A, C, AGENT, "abc"):
        assert await manager.resolve_id(sid) == sid
    assert await manager.resolve_id(AGENT_LONGER) == AGENT_LONGER


async def test_unique_prefix(manager: SessionManager) -> None:
    assert await manager.resolve_id("dncgd") == C
    assert await manager.resolve_id("remote-logs-170"[:15]) == AGENT_LONGER


async def test_ambiguous_lists_candidates(manager: SessionManager) -> None:
    with pytest.raises(AmbiguousSession) as info:
        await manager.resolve_id("dncgcfcb")
    assert info.value.candidates == [A, B]
    assert str(info.value) == f"ambiguous session dncgcfcb: it could be {A}, {B}"
    assert isinstance(info.value, UnknownSession)  # handlers of unknown ids report it too
    with pytest.raises(AmbiguousSession, match=f"dncg: it could be {A}, {B}, {C}$"):
        await manager.resolve_id("dncg")
    with pytest.raises(AmbiguousSession) as info:
        await manager.resolve_id("zzzz")
    message = str(info.value)
    assert message.endswith(", …") and all(sid in message for sid in MANY[:5])
    assert MANY[5] not in message and MANY[6] not in message


async def test_too_short_and_unknown(manager: SessionManager) -> None:
    with pytest.raises(UnknownSession) as info:
        await manager.resolve_id("dnc")  # three sessions start with it: still too short
    assert not isinstance(info.value, AmbiguousSession)
    assert str(info.value) == "unknown session dnc (a prefix needs at least 4 characters)"
    for text in ("qqqqq", "dncgx", "", "a b", "..", A + "0"):
        with pytest.raises(UnknownSession) as info:
            await manager.resolve_id(text)
        assert not isinstance(info.value, AmbiguousSession)
    assert str(info.value) == f"unknown session {A}0"


async def test_sessions_in_memory_count(tmp_path: Path) -> None:
    """Without a store (recording off), and before the store has the row."""

    async def work(live: LiveSession) -> TaskOutcome:
        await asyncio.sleep(30)
        return TaskOutcome()

    for manager in (SessionManager(None), SessionManager.open(tmp_path / "s.db")):
        live = manager.start_task(RunSpec(argv=[], command="wait"), work)
        await asyncio.sleep(0.01)  # the task runs (a cancel before its first step is lost)
        try:
            assert await manager.resolve_id(live.id[:6]) == live.id
            assert await manager.resolve_id(live.id) == live.id
        finally:
            manager.cancel(live.id)
            await asyncio.wait_for(live.done, 10)
            manager.close()


async def test_the_prefix_query_is_a_range_on_the_primary_key(manager: SessionManager) -> None:
    assert manager.store is not None
    seen: list[str] = []

    def look() -> list[str]:
        conn = manager.store.reader()  # type: ignore[union-attr]
        conn.set_trace_callback(seen.append)
        try:
            return manager.store.ids_from("dncg", 6)  # type: ignore[union-attr]
        finally:
            conn.set_trace_callback(None)
            query = next(q for q in seen if "FROM sessions" in q)
            seen[:] = [" ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + query))]

    assert await asyncio.to_thread(look) == [A, B, C]
    plan = seen[0]
    assert "SEARCH" in plan and "INDEX" in plan and "id>? AND id<?" in plan, plan


def test_prefix_bound() -> None:
    assert prefix_bound("dncg") == "dnch"
    assert prefix_bound("ab\ud7ff") == "ab\ue000"
    assert prefix_bound("a\U0010ffff") == "b"
    assert prefix_bound("") is None and prefix_bound("\U0010ffff") is None
    words = ["dncf", "dncg", "dncg0", "dncgzzz", "dncg\U0001f600", "dnch", "dnch0"]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
    conn.executemany("INSERT INTO t VALUES (?)", [(w,) for w in words])
    bound = prefix_bound("dncg")
    got = [r[0] for r in conn.execute("SELECT id FROM t WHERE id >= ? AND id < ?", ("dncg", bound))]
    assert got == [w for w in words if w.startswith("dncg")]
