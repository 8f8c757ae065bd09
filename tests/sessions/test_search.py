"""Search across every session's output (sessions/search.py): indexed by the store's writer,
plain text as shown, newest first, consistent with retention."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ktl_lsp.sessions import store as store_module
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.model import Frame, FrameType, Session, State
from ktl_lsp.sessions.retention import RetentionPolicy
from ktl_lsp.sessions.search import PlainLines, Query, frame_text, highlights, resolve
from ktl_lsp.sessions.store import Store


@pytest_asyncio.fixture
async def manager(tmp_path: Path) -> AsyncIterator[SessionManager]:
    m = SessionManager.open(tmp_path / "s.db")
    yield m
    m.close()


async def _run(manager: SessionManager, script: str, kind: str = "pty") -> str:
    live = manager.start(RunSpec(argv=["sh", "-c", script], kind=kind))
    await asyncio.wait_for(live.done, 10)
    return live.id


def test_plain_text_is_what_the_screen_showed() -> None:
    raw = (
        b"\x1b[1mbold\x1b[0m text\r\n"
        b"downloading 10%\rdownloading 55%\rdownloading 100%\r\n"
        b"spinner |\x08/\x08-\r\n"
        b"long line here\r\x1b[Kshort\r\n"
        b"\x1b]0;title\x07\x1b]633;C\x07after marks\r\n"
        b"npm \x1b[1Gdone\x1b[0K\r\n"
    )
    assert frame_text(raw).rstrip("\n").split("\n") == [
        "bold text",
        "downloading 100%",
        "spinner -",
        "short",
        "after marks",
        "done",
    ]
    assert resolve("abcdef\rXY") == "XYcdef"


def test_a_line_split_across_reads_and_utf8() -> None:
    lines = PlainLines()
    word = "größe ✓".encode()
    assert lines.feed(b"first half " + word[:3]) == []
    assert lines.feed(word[3:] + b" second\r\nnext") == ["first half größe ✓ second"]
    assert lines.finish() == "next"


async def test_queries_are_never_syntax_errors(manager: SessionManager) -> None:
    await _run(manager, "echo 'col:value (x) -x NEAR'")
    for text in ['"unterminated', "a AND OR NOT", "(((", "*", "NEAR(", "-x", "col:value"]:
        await manager.search(text)  # FTS5 syntax is never passed through
    assert [h.line for h in await manager.search("col:value")] == ["col:value (x) -x NEAR"]
    assert Query.parse("kube*").match == '"kube"*'
    assert highlights("Error: ERROR again", ["error"]) == [[0, 5], [7, 12]]


async def test_search_finds_lines_newest_first(manager: SessionManager) -> None:
    old = await _run(manager, "echo needle in the old one; echo hay")
    new = await _run(manager, "printf 'progress 5%%\\rneedle 100%%\\r\\nnothing\\n'", kind="shell")
    hits = await manager.search("needle")
    assert [(h.session_id, h.line) for h in hits] == [
        (new, "needle 100%"),
        (old, "needle in the old one"),
    ]
    assert hits[0].highlights == [[0, 6]]
    # Every hit's seq is an output frame that holds it.
    frames, _ = await manager.frames(old)
    assert any(f.seq == hits[1].seq and b"needle" in f.data for f in frames)
    assert [h.session_id for h in await manager.search("needle", kind="shell")] == [new]
    assert [h.session_id for h in await manager.search("needle", state="done")] == [new, old]
    assert await manager.search("needle", state="error") == []
    assert [h.line for h in await manager.search('"the old"')] == ["needle in the old one"]
    assert await manager.search("progress") == []  # overwritten by \r: never on the screen
    assert len(await manager.search("needle", limit=1)) == 1


async def test_retention_removes_what_it_deletes(manager: SessionManager, tmp_path: Path) -> None:
    first = await _run(manager, "for i in $(seq 1 40); do echo gone-$i; sleep 0.01; done")
    kept = await _run(manager, "echo gone-but-kept")
    assert {h.session_id for h in await manager.search("gone*", limit=100)} == {first, kept}
    await manager.delete(first)
    assert {h.session_id for h in await manager.search("gone*", limit=100)} == {kept}
    assert manager.store is not None
    conn = sqlite3.connect(manager.store.path)
    conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 1)")
    conn.close()


async def test_trimming_keeps_the_index_in_step(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.open()
    try:
        s = Session(id="trimmed0000000000", kind="pty", title="t", state=State.DONE)
        store.save_session(s)
        for q in range(1, 101):
            store.append(Frame(s.id, q, q, FrameType.OUTPUT, f"word{q} common\r\n".encode()))
        store.flush_sync()
        assert len(store.search(Query.parse("common"), 1000)) == 100
        policy = RetentionPolicy(
            max_sessions=0, max_frames_per_session=30, max_store_bytes=0, max_age_days=0
        )
        store.prune(policy)
        found = store.search(Query.parse("common"), 1000)
        assert sorted(h.seq for h in found) == list(range(71, 101))
        assert store.search(Query.parse("word5"), 10) == []
        conn = store.reader()
        conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 1)")
        # What trimming took is gone from the index itself, not only filtered out.
        (rows,) = conn.execute(
            "SELECT COUNT(*) FROM search_text WHERE search_text MATCH 'common'"
        ).fetchone()
        assert rows == 30
    finally:
        store.close()


async def test_search_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTL_LSP_SEARCH_INDEX", "0")
    m = SessionManager.open(tmp_path / "s.db")
    try:
        await _run(m, "echo x")
        with pytest.raises(Exception, match="search is off"):
            await m.search("x")
    finally:
        m.close()


async def test_a_burst_is_indexed_once_the_writer_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "INDEX_BEHIND_BYTES", 0)  # every batch waits
    m = SessionManager.open(tmp_path / "s.db")
    try:
        sid = await _run(m, "for i in $(seq 1 2000); do echo burst-line-$i; done")
        assert m.store is not None and m.store._backlog is not None
        hits = await m.search("burst-line-1999")
        assert [(h.session_id, h.line) for h in hits] == [(sid, "burst-line-1999")]
        assert not m.store._backlog
        assert len(await m.search("burst", limit=1000)) == 1000
    finally:
        m.close()


def _burst(store: Store, sid: str, frames: int) -> None:
    store.save_session(Session(id=sid, kind="pty", title="t", state=State.DONE))
    for seq in range(1, frames + 1):
        store.append(Frame(sid, seq, seq, FrameType.OUTPUT, f"burst-{seq} words\r\n".encode()))
    store.flush_sync()


def _bursts_only(monkeypatch: pytest.MonkeyPatch, **more: float) -> None:
    """Any output is a burst; ``more`` sets the store's other indexing constants."""
    monkeypatch.setattr(store_module, "BURST_BYTES", 0)
    for name, value in more.items():
        monkeypatch.setattr(store_module, name, value)


def _indexed_rows(store: Store, word: str) -> int:
    (rows,) = (
        store.reader()
        .execute("SELECT COUNT(*) FROM search_text WHERE search_text MATCH ?", (word,))
        .fetchone()
    )
    return int(rows)


async def _backlog_indexed(store: Store) -> None:
    """Until the writer has indexed what it put off, on its own (nothing asks), 10 s at most."""
    for _ in range(400):
        if not store._backlog:
            break
        await asyncio.sleep(0.025)
    await store.flush()  # the catch-up's transaction is committed before the writer reads on


async def test_a_burst_waits_for_quiet_and_a_search_still_sees_all_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bursts_only(monkeypatch, QUIET_S=3600.0)  # and the burst never ends
    store = Store(tmp_path / "s.db")
    store.open()
    try:
        _burst(store, "burstwaits000000", 300)
        # Recorded whole, indexed not yet: one range however many batches it came in.
        assert len(store.frames("burstwaits000000")) == 300
        assert list(store._backlog) == [("burstwaits000000", 1, 300)]
        await store.indexed()  # what a search waits for first
        hits = store.search(Query.parse("burst-300"), 10)
        assert [(h.seq, h.line) for h in hits] == [(300, "burst-300 words")]
        assert not store._backlog
    finally:
        store.close()


async def test_a_burst_is_indexed_when_it_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bursts_only(monkeypatch)
    store = Store(tmp_path / "s.db")
    store.open()
    try:
        _burst(store, "burstends0000000", 300)
        await _backlog_indexed(store)  # once quiet
        assert not store._backlog
        assert _indexed_rows(store, "words") == 300
    finally:
        store.close()


async def test_a_long_burst_is_indexed_as_it_goes_past_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The burst never ends, but may not pile up.
    _bursts_only(monkeypatch, QUIET_S=3600.0, MAX_DEFERRED_BYTES=1000)
    store = Store(tmp_path / "s.db")
    store.open()
    try:
        _burst(store, "burstbound000000", 300)
        await _backlog_indexed(store)  # while the burst goes on
        assert not store._backlog and store._backlog_bytes == 0
    finally:
        store.close()


async def test_a_burst_left_unindexed_by_a_process_that_died_is_indexed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bursts_only(monkeypatch, QUIET_S=3600.0, CLOSE_CATCH_UP_S=0.0)  # dies before catching up
    first = Store(tmp_path / "s.db")
    first.open()
    _burst(first, "burstorphan00000", 300)
    pending = first.reader().execute("SELECT * FROM search_pending").fetchall()
    assert pending == [("burstorphan00000", 1, 300)]
    first.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    with conn:  # as a process that is gone left it
        conn.execute("UPDATE sessions SET owner = 'elsewhere:1:0'")
    conn.close()

    monkeypatch.setattr(store_module, "QUIET_S", 0.25)
    second = Store(tmp_path / "s.db")
    second.open()
    try:
        await _backlog_indexed(second)
        assert _indexed_rows(second, "words") == 300
        assert second.reader().execute("SELECT * FROM search_pending").fetchall() == []
    finally:
        second.close()


async def test_a_live_process_keeps_its_own_burst_to_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bursts_only(monkeypatch, QUIET_S=3600.0)
    first = Store(tmp_path / "s.db")
    first.open()
    try:
        _burst(first, "burstmine0000000", 50)
        second = Store(tmp_path / "s.db")  # another process on the same store, say
        second.open()
        try:
            assert not second._backlog  # the recording process is alive: its own to index
        finally:
            second.close()
        await first.indexed()
        assert _indexed_rows(first, "words") == 50
        assert first.reader().execute("SELECT * FROM search_pending").fetchall() == []
    finally:
        first.close()


async def test_a_line_across_two_reads_is_shown_whole(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.open()
    try:
        s = Session(id="spanning00000000", kind="pty", title="t", state=State.DONE)
        store.save_session(s)
        pieces = [b"$ prompt\r\nstarts here ", b"and needle-x ends\r\nneedle-x alone\r\n"]
        for seq, data in enumerate(pieces, 1):
            store.append(Frame(s.id, seq, seq, FrameType.OUTPUT, data))
        store.flush_sync()
        hits = store.search(Query.parse("needle-x"), 10)
        assert [(h.seq, h.line) for h in hits] == [
            (2, "starts here and needle-x ends"),
            (2, "needle-x alone"),
        ]
        assert [h.highlights for h in hits] == [[[16, 24]], [[0, 8]]]
    finally:
        store.close()


async def test_words_joined_by_underscores_and_one_session_or_kind_left_out(
    manager: SessionManager,
) -> None:
    """The index cuts ``snake_case`` in two: such a word is its pieces, never a phrase (which
    the positionless index refuses)."""
    first = await _run(manager, "echo 'build_id=41 ok'")
    second = await _run(manager, "echo 'build_id=42 ok'", kind="agent")
    assert [h.session_id for h in await manager.search("build_id")] == [second, first]
    assert [h.line for h in await manager.search("build_id", session_id=first)] == [
        "build_id=41 ok"
    ]
    assert [h.session_id for h in await manager.search("build_id", not_kind="agent")] == [first]
    assert Query.parse("+++ (((").match == ""
