"""The SQLite session store: one writer thread that batches, any number of readers.

Writes are queued from the event loop and never block it; the writer commits whatever has
queued up in one transaction, so batches grow by themselves under load. When writing fails
(disk full, read-only directory) recording turns off once, with one message, and the work
that is being recorded goes on. What arrives meanwhile is held in memory (every session's row;
frames up to ``HELD_FRAME_BYTES``, the newest kept) and the write is retried with backoff;
when it lands, recording is back, with one message, and a marker frame stands for any frames
that did not fit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ktl_lsp.sessions import private, retention, search
from ktl_lsp.sessions.blocks import Block, block_of_event
from ktl_lsp.sessions.model import (
    Frame,
    FrameType,
    Session,
    SessionFilter,
    State,
    event_data,
    now_ns,
)
from ktl_lsp.sessions.owner import current_owner, owner_alive

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 1
#: "ktl1": marks a SQLite file as ours, so a foreign database is never written to.
APPLICATION_ID = 0x6B746C31
#: After the first frame of a burst, the writer waits this long for more before committing:
#: a streaming session then costs one transaction per few milliseconds instead of one per read,
#: and the loop thread is not woken into a lock hand-off for every 4 KB. The editor's own pace is
#: 8 ms, so the store is never further behind than what the user has seen.
FRAME_LINGER_S = 0.003
#: Frames held in memory while the store cannot be written: the same bound as what may be
#: queued while it can (the session manager's high water), so a full disk never costs more
#: memory than a fast stream does. Session rows are always held: they are small, and without
#: them a finished session would later read as interrupted.
HELD_FRAME_BYTES = 32 * 1024 * 1024
#: Retrying a failed store: the first delay, doubling up to the last. KTL_LSP_STORE_RETRY_S
#: ("FIRST[,MAX]" seconds) changes them, for tests that fill and free a disk.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
#: Indexing for search waits (the frames go to a backlog) while this much is queued for the
#: writer: a burst is recorded at full speed and indexed when the writer has a quiet moment.
INDEX_BEHIND_BYTES = 4 * 1024 * 1024
#: Backlog frames read back at a time while catching up, and the output indexed per catch-up
#: transaction when nothing else is queued; how long closing goes on with it.
CATCH_UP_FRAMES = 2000
CATCH_UP_BYTES = 32 * 1024 * 1024
#: Output read back per step of a catch-up, between looks at the queue: a step of a fast
#: stream's frames (up to 64 KB each) kept new frames waiting, and a crash lost them.
CATCH_UP_STEP_BYTES = 1024 * 1024
CLOSE_CATCH_UP_S = 5.0
#: Output committed faster than this (bytes over about the last second) is a burst, a `cat` of
#: a large file or a log dump: it is recorded at once and indexed once the burst is over, so
#: the index does not take CPU from the stream (a third of the server's, bench_sessions).
BURST_BYTES = 4 * 1024 * 1024
#: How long after the last burst the writer waits before it indexes the backlog.
QUIET_S = 0.25
#: Output a burst may leave unindexed: past it, the writer indexes between batches as when it
#: is behind, so a search asked during a long burst waits for at most this much (~2 s).
MAX_DEFERRED_BYTES = 64 * 1024 * 1024
#: Per-frame overhead counted against the queue and the held budget.
FRAME_OVERHEAD = 64


class StoreError(Exception):
    """The store cannot be opened or written."""

    def __init__(self, message: str, no_space: bool = False) -> None:
        super().__init__(message)
        #: It failed for want of space: trying again later may work.
        self.no_space = no_space


#: What SQLite says when a write fails for want of space (on a full disk the shared-memory
#: index cannot grow either, and a file-size limit makes the write itself fail).
_NO_SPACE_SQLITE = frozenset({"SQLITE_FULL", "SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_WRITE"})
_NO_SPACE_ERRNO = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _NO_SPACE_ERRNO
    return getattr(exc, "sqlite_errorname", None) in _NO_SPACE_SQLITE


def retry_delays() -> tuple[float, float]:
    """The first and longest delay between attempts to write a failed store again."""
    text = os.environ.get("KTL_LSP_STORE_RETRY_S", "")
    try:
        parts = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        parts = []
    if not parts or not all(0 < p < 3600 for p in parts):
        return RETRY_FIRST_S, RETRY_MAX_S
    first = parts[0]
    return first, max(first, parts[1] if len(parts) > 1 else RETRY_MAX_S)


def default_store_path() -> Path:
    env = os.environ.get("KTL_LSP_STORE")
    if env:
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state).expanduser() if state else Path.home() / ".local" / "state"
    return base / "ktl-lsp" / "sessions.db"


def prefix_bound(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (SQLite compares text
    as UTF-8 bytes, which orders like code points); None when there is none."""
    if not prefix:
        return None
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not characters: skip past them
        last = 0xE000
    if last > 0x10FFFF:
        return prefix_bound(prefix[:-1])
    return prefix[:-1] + chr(last)


def search_indexing() -> bool:
    """Output is indexed for search unless KTL_LSP_SEARCH_INDEX=0 (benchmarks compare)."""
    return os.environ.get("KTL_LSP_SEARCH_INDEX", "1").strip() not in ("0", "off", "false")


def _tell(listener: Callable[[str], None] | None, message: str, level: int) -> None:
    """Reports a change of recording to whoever listens; the log has it only when nobody
    does (logging it too said it twice)."""
    if listener is None:
        log.log(level, "%s", message)
    else:
        log.debug("%s", message)
        listener(message)


@dataclass
class _Lost:
    """Frames of one session dropped from memory while the store could not be written."""

    first: int
    last: int
    frames: int
    bytes: int

    def marker(self, session_id: str) -> Frame:
        # It takes the seq of the last lost frame, which is free, as retention's markers do.
        data = event_data(
            lost={"from": self.first, "to": self.last, "frames": self.frames, "bytes": self.bytes},
            message=(
                f"… {self.frames} frames ({self.bytes} bytes) not recorded: the session store "
                "could not be written and they did not fit in memory …"
            ),
        )
        return Frame(session_id, self.last, now_ns(), FrameType.MARKER, data)


_SESSION_COLS = (
    "id, kind, title, state, exit_code, signal, error, created_ns, ended_ns, last_seq, "
    "bytes_out, pinned, parent_id, meta, tags"
)


def _int64(n: int) -> int:
    """``n`` within SQLite's integers (a time in the year 2999 is past them in nanoseconds)."""
    return max(-(2**63), min(n, 2**63 - 1))


def _row_to_session(row: Sequence[Any]) -> Session:
    return Session(
        id=row[0],
        kind=row[1],
        title=row[2],
        state=State(row[3]),
        exit_code=row[4],
        signal=row[5],
        error=row[6],
        created_ns=row[7],
        ended_ns=row[8],
        last_seq=row[9],
        bytes_out=row[10],
        pinned=bool(row[11]),
        parent_id=row[12],
        meta=json.loads(row[13] or "{}"),
        tags=json.loads(row[14] or "{}"),
    )


def _save_blocks(conn: sqlite3.Connection, frames: list[Frame]) -> None:
    """The blocks that event frames record (sessions/blocks.py), as rows to look up."""
    rows = []
    for f in frames:
        if f.type is FrameType.EVENT:
            b = block_of_event(f.data)
            if b is not None:
                rows.append(
                    (
                        f.session_id,
                        b.index,
                        b.command,
                        b.cwd,
                        b.started_ns,
                        b.ended_ns,
                        b.exit_code,
                        b.from_seq,
                        b.to_seq,
                    )
                )
    if rows:
        conn.executemany(
            "INSERT OR REPLACE INTO blocks (session_id, idx, command, cwd, started_ns, ended_ns, "
            "exit_code, from_seq, to_seq) VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )


def _vacuum(conn: sqlite3.Connection) -> None:
    # executescript runs the pragma to completion; execute() would free a single page.
    conn.executescript("PRAGMA incremental_vacuum;")


def _connect(path: Path, before_wal: tuple[str, ...] = ()) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    for pragma in before_wal:
        conn.execute(pragma)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints sync the disk: every 4 MB (the default) they throttled a fast stream.
    conn.execute("PRAGMA wal_autocheckpoint=16384")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Store:
    def __init__(
        self,
        path: Path,
        on_failure: Callable[[str], None] | None = None,
        on_resume: Callable[[str], None] | None = None,
        held_frame_bytes: int = HELD_FRAME_BYTES,
        index_output: bool | None = None,
    ) -> None:
        self.path = Path(path)
        #: Output is indexed for search as it is written (sessions/search.py).
        self.indexer = (
            search.Indexer()
            if (search_indexing() if index_output is None else index_output)
            else None
        )
        self._index_failed = False
        #: Output frames committed but not indexed yet (session, first seq, last seq): while
        #: the writer is behind, indexing waits for a quiet moment instead of slowing it.
        self._backlog: deque[tuple[str, int, int]] = deque()
        self._backlog_bytes = 0  # about: output put off, less what catching up indexed
        #: Set by a flush: the writer commits what it has instead of lingering for more.
        self._hurry = threading.Event()
        #: Output bytes committed lately, decaying over about a second; when the last burst was.
        self._recent_out = 0.0
        self._recent_at = 0.0
        self._burst_at = float("-inf")
        self._on_failure = on_failure
        self._on_resume = on_resume
        # While writing fails (writer thread only): what waits to be written, and what is lost.
        self._held_budget = held_frame_bytes
        self._held_sessions: dict[str, tuple[Any, ...]] = {}
        #: Changes asked for while recording was off (pin, delete), applied after the held rows.
        self._held_changes: list[Callable[[sqlite3.Connection], Any]] = []
        self._held_frames: deque[Frame] = deque()
        self._held_bytes = 0
        self._lost: dict[str, _Lost] = {}
        self._retry_first, self._retry_max = retry_delays()
        self._retry_delay = self._retry_first
        self._retry_at = 0.0
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._pending_bytes = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        #: Reader connections opened so far (one per thread that has read: fds it holds).
        self.readers_opened = 0
        self._writer: threading.Thread | None = None
        self._wconn: sqlite3.Connection | None = None
        self.failed: str | None = None
        #: Set by open() when the files could not be made owner-only (it goes on regardless).
        self.notice: str | None = None
        #: Set by open() when the store could not be written for want of space (it retries).
        self.open_error: str | None = None
        self._closed = False

    # lifecycle ----------------------------------------------------------------------------
    def open(self) -> None:
        """Creates the file and schema; raises StoreError with a reason a user can act on.
        A store that cannot be written for want of space opens with recording off, and is
        tried again with backoff like any failed write."""
        try:
            private.make_dirs(self.path.parent)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory for session store {self.path}: {exc}"
            ) from exc
        try:
            self._wconn = self._connect_writer()
            self._adopt_pending(self._wconn)
        except StoreError as exc:
            if not exc.no_space:
                raise
            self.open_error = str(exc)
            self._retry_at = time.monotonic() + self._retry_delay
            self._fail(f"recording is off: {exc}; it resumes once the store can be written")
        self._writer = threading.Thread(
            target=self._write_loop, name="ktl-store-writer", daemon=True
        )
        self._writer.start()

    def _adopt_pending(self, conn: sqlite3.Connection) -> None:
        """Output a process that is gone recorded and did not index (it died during or just
        after a burst): indexed by this one when its writer is quiet. A live owner's is its own."""
        if self.indexer is None:
            return
        try:
            rows = conn.execute(
                "SELECT p.session_id, p.from_seq, p.to_seq, s.owner FROM search_pending p "
                "JOIN sessions s ON s.id = p.session_id ORDER BY p.session_id"
            ).fetchall()
        except sqlite3.Error as exc:  # the index is a convenience: recording goes on
            log.warning("search index: cannot read what is left to index: %s", exc)
            return
        for sid, lo, hi, owner in rows:
            if not owner or not owner_alive(owner):
                self._backlog.append((sid, int(lo), int(hi)))

    def _connect_writer(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            private.create_file(self.path)
            self.notice = private.tighten(
                self.path.with_name(self.path.name + suffix) for suffix in ("", "-wal", "-shm")
            )
            # Only a fresh file can take auto_vacuum (it lets pruning give space back), and it
            # must be set before WAL mode writes the header.
            conn = _connect(self.path, before_wal=("PRAGMA auto_vacuum=INCREMENTAL",))
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type='table'"
            ).fetchone()[0]
            if app_id != APPLICATION_ID and tables:
                raise StoreError(
                    f"{self.path} is a SQLite database of another program, not a ktl-lsp session "
                    "store; move it aside or choose another path with --store / KTL_LSP_STORE"
                )
            if not tables:
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            from importlib import resources  # here: ~7 ms the language server's start need not pay

            schema = resources.files("ktl_lsp.sessions").joinpath("schema.sql").read_text()
            conn.executescript(schema)
            # Fewer, larger merges of the search index: it is written in big batches, and 16
            # segments a level (not FTS5's 4, nor 8) cost a tenth less indexing time with the
            # same queries and size (bench/bench_search.py).
            conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('automerge', 16)")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return conn
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, (sqlite3.DatabaseError, OSError)):
                raise self._open_error(exc) from exc
            raise

    def _open_error(self, exc: sqlite3.DatabaseError | OSError) -> StoreError:
        if not self.path.exists():  # it could not be created
            return StoreError(
                f"cannot create session store {self.path}: the directory {self.path.parent} "
                "is not writable; choose another path with --store / KTL_LSP_STORE"
            )
        if _no_space(exc):
            return StoreError(
                f"the session store {self.path} cannot be written ({exc}): its disk may be full",
                no_space=True,
            )
        if isinstance(exc, OSError):
            return StoreError(f"cannot open session store {self.path}: {exc}")
        return StoreError(
            f"{self.path} is not a usable session store ({exc}); move it aside or choose "
            "another path with --store / KTL_LSP_STORE"
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(("stop", None))
            self._writer.join(timeout=10)
        if self._wconn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._wconn.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    @property
    def recording(self) -> bool:
        """Writes are landing (not closed, not failed)."""
        return self._accepting and self.failed is None

    @property
    def opened(self) -> bool:
        """The file is open (it can be read), whether or not writes land."""
        return self._wconn is not None

    @property
    def accepting(self) -> bool:
        """Takes writes: recording, or holding them while the file cannot be written."""
        return self._accepting

    @property
    def _accepting(self) -> bool:
        # A failed store still takes writes: it holds them until it can write again.
        return self._writer is not None and not self._closed

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    # writes (any thread, never blocks) ----------------------------------------------------
    def save_session(self, session: Session) -> None:
        if not self._accepting:
            return
        row = (
            session.id,
            session.kind,
            session.title,
            str(session.state),
            session.exit_code,
            session.signal,
            session.error,
            session.created_ns,
            session.ended_ns,
            session.last_seq,
            session.bytes_out,
            int(session.pinned),
            session.parent_id,
            json.dumps(session.meta),
            json.dumps(session.tags),
            current_owner(),
        )
        self._queue.put(("session", row))

    def append(self, frame: Frame) -> None:
        if not self._accepting:
            return
        size = len(frame.data) + FRAME_OVERHEAD
        with self._lock:
            self._pending_bytes += size
        self._queue.put(("frame", frame))

    def flush_future(self) -> concurrent.futures.Future[None]:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        if not self.recording or self._writer is None:
            fut.set_result(None)
        else:
            self._queue.put(("flush", fut))
            self._hurry.set()  # someone waits: no lingering for more frames
        return fut

    async def flush(self) -> None:
        """Waits until everything queued so far is committed (or recording has failed)."""
        await asyncio.wrap_future(self.flush_future())

    def flush_sync(self, timeout: float = 30) -> None:
        with contextlib.suppress(concurrent.futures.TimeoutError):
            self.flush_future().result(timeout)

    # the writer thread --------------------------------------------------------------------
    def _write_loop(self) -> None:
        stop = False
        while not stop:
            if self.failed is not None and time.monotonic() >= self._retry_at:
                self._retry()
            try:
                first = self._queue.get(timeout=self._until_work())
            except queue.Empty:
                self._catch_up(CATCH_UP_BYTES)
                continue
            items = [first]
            if first[0] == "frame":
                self._hurry.wait(FRAME_LINGER_S)
            while len(items) < 4096:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._hurry.clear()
            sessions: dict[str, tuple[Any, ...]] = {}
            frames: list[Frame] = []
            waiters: list[concurrent.futures.Future[None]] = []
            calls: list[
                tuple[Callable[[sqlite3.Connection], Any], concurrent.futures.Future[Any], bool]
            ] = []
            for kind, item in items:
                if kind == "session":
                    sessions[item[0]] = item
                elif kind == "frame":
                    frames.append(item)
                elif kind == "flush":
                    waiters.append(item)
                elif kind == "call":
                    calls.append(item)
                elif kind == "change":
                    self._held_changes.append(item)
                elif kind == "stop":
                    stop = True
            if self.failed is None:
                self._write_batch(list(sessions.values()), frames)
            else:
                self._hold(list(sessions.values()), frames)
                if stop:  # one last attempt, so what is held is not lost with the process
                    self._retry()
                    if self.failed is not None and self._held_sessions:
                        log.warning(
                            "closing with the session store %s still not writable: %d "
                            "session(s) are not recorded",
                            self.path,
                            len(self._held_sessions),
                        )
            with self._lock:
                self._pending_bytes -= sum(len(f.data) + FRAME_OVERHEAD for f in frames)
            for fn, fut, transaction in calls:
                self._run_call(fn, fut, transaction)
            for w in waiters:
                if not w.done():
                    w.set_result(None)
        # Closing: what is left of the backlog is indexed, for a few seconds at most (the rest
        # is never indexed: close() does not wait longer for the writer).
        deadline = time.monotonic() + CLOSE_CATCH_UP_S
        while self._backlog and time.monotonic() < deadline:
            self._catch_up(CATCH_UP_BYTES)

    def _until_work(self) -> float | None:
        """How long the writer may wait for the queue: a backlog is indexed once the last burst
        is ``QUIET_S`` old, a failed store retried when its delay is up."""
        if self._backlog:
            if self._backlog_bytes > MAX_DEFERRED_BYTES:
                return 0.0
            return max(0.0, self._burst_at + QUIET_S - time.monotonic())
        return self._until_retry()

    def _bursting(self, size: int) -> bool:
        """Counts ``size`` output bytes in the recent rate; whether the stream is a burst."""
        now = time.monotonic()
        decay = max(0.0, 1.0 - (now - self._recent_at))
        self._recent_out = self._recent_out * decay + size
        self._recent_at = now
        if self._recent_out > BURST_BYTES:
            self._burst_at = now
        return now - self._burst_at < QUIET_S

    def _until_retry(self) -> float | None:
        if self.failed is None:
            return None
        return max(0.0, self._retry_at - time.monotonic())

    def _write_batch(self, sessions: list[tuple[Any, ...]], frames: list[Frame]) -> None:
        if not (sessions or frames):
            return
        try:
            self._commit(sessions, frames)
        except sqlite3.Error as exc:
            self._hold(sessions, frames)
            self._retry_delay = self._retry_first
            self._retry_at = time.monotonic() + self._retry_delay
            self._fail(f"recording is off: the session store could not be written ({exc})")

    def _commit(
        self,
        sessions: list[tuple[Any, ...]],
        frames: list[Frame],
        changes: Sequence[Callable[[sqlite3.Connection], Any]] = (),
    ) -> None:
        """Writes sessions and frames, then ``changes``, in one transaction; raises sqlite3.Error
        (rolled back)."""
        assert self._wconn is not None
        conn = self._wconn
        try:
            conn.execute("BEGIN")
            if sessions:
                conn.executemany(
                    f"INSERT INTO sessions ({_SESSION_COLS}, owner) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, title=excluded.title, "
                    "state=excluded.state, exit_code=excluded.exit_code, signal=excluded.signal, "
                    "error=excluded.error, ended_ns=excluded.ended_ns, "
                    "last_seq=MAX(sessions.last_seq, excluded.last_seq), "
                    "bytes_out=MAX(sessions.bytes_out, excluded.bytes_out), "
                    "pinned=excluded.pinned, parent_id=excluded.parent_id, meta=excluded.meta, "
                    "tags=excluded.tags, owner=excluded.owner",
                    sessions,
                )
            if frames:
                conn.executemany(
                    "INSERT OR IGNORE INTO frames (session_id, seq, ts_ns, type, data) "
                    "VALUES (?,?,?,?,?)",
                    [(f.session_id, f.seq, f.ts_ns, str(f.type), f.data) for f in frames],
                )
                last: dict[str, int] = {}
                for f in frames:
                    last[f.session_id] = max(last.get(f.session_id, 0), f.seq)
                conn.executemany(
                    "UPDATE sessions SET last_seq = MAX(last_seq, ?) WHERE id = ?",
                    [(seq, sid) for sid, seq in last.items()],
                )
                _save_blocks(conn, frames)
            if self.indexer is not None:
                self._index(conn, sessions, frames)
            for change in changes:
                change(conn)
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _index(
        self, conn: sqlite3.Connection, sessions: list[tuple[Any, ...]], frames: list[Frame]
    ) -> None:
        """Indexes the batch's output for search; a failure costs the index, never the
        recording (it is rolled back alone, and said once)."""
        assert self.indexer is not None
        output = [f for f in frames if f.type is FrameType.OUTPUT]
        size = sum(len(f.data) for f in output)
        bursting = self._bursting(size)
        ranges: dict[str, list[int]] = {}
        if output and (bursting or self._backlog or self._pending_bytes > INDEX_BEHIND_BYTES):
            for f in output:
                r = ranges.setdefault(f.session_id, [f.seq, f.seq])
                r[0], r[1] = min(r[0], f.seq), max(r[1], f.seq)
            for sid, (lo, hi) in ranges.items():
                last = self._backlog[-1] if self._backlog else None
                if last is not None and last[0] == sid and last[2] < lo:
                    self._backlog[-1] = (sid, last[1], hi)  # one range per run of a session
                else:
                    self._backlog.append((sid, lo, hi))
            self._backlog_bytes += size + FRAME_OVERHEAD * len(output)
            output = []
        conn.execute("SAVEPOINT search_index")
        try:
            if ranges:  # kept with the frames: a process that dies leaves them to the next
                conn.executemany(
                    "INSERT INTO search_pending (session_id, from_seq, to_seq) VALUES (?,?,?) "
                    "ON CONFLICT(session_id) DO UPDATE SET "
                    "from_seq = MIN(from_seq, excluded.from_seq), "
                    "to_seq = MAX(to_seq, excluded.to_seq)",
                    [(sid, lo, hi) for sid, (lo, hi) in ranges.items()],
                )
            self.indexer.add(conn, ((f.session_id, f.seq, f.data) for f in output))
            self.indexer.forget(row[0] for row in sessions if row[3] != str(State.RUNNING))
            conn.execute("RELEASE search_index")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK TO search_index")
            conn.execute("RELEASE search_index")
            if not self._index_failed:
                self._index_failed = True
                log.warning("search index not updated: %s", exc)

    def _catch_up(self, budget: int | None) -> None:
        """Indexes about ``budget`` bytes of the backlog (None: all of it), reading the frames
        back, in one transaction that ends early once new work is queued: an idle writer
        indexes in large transactions (the index's merged pages are written once, not once
        per piece), a busy one never keeps a new batch of frames waiting long."""
        conn = self._wconn
        if self.indexer is None or conn is None or self.failed is not None:
            self._backlog.clear()
            self._backlog_bytes = 0
            return
        done = 0
        try:
            conn.execute("BEGIN")
            while self._backlog and (budget is None or (done < budget and self._queue.empty())):
                sid, lo, hi = self._backlog[0]
                cur = conn.execute(
                    "SELECT seq, data FROM frames WHERE session_id = ? AND type = 'output' "
                    "AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                    (sid, lo, hi, CATCH_UP_FRAMES),
                )
                rows: list[tuple[int, bytes]] = []
                step = 0
                for seq, data in cur:
                    rows.append((seq, data))
                    step += len(data) + FRAME_OVERHEAD
                    if step >= CATCH_UP_STEP_BYTES:
                        break
                cur.close()
                if not rows or rows[-1][0] >= hi:
                    self._backlog.popleft()
                    rest = next((r[1] for r in self._backlog if r[0] == sid), None)
                else:
                    rest = rows[-1][0] + 1
                    self._backlog[0] = (sid, rest, hi)
                self.indexer.add(conn, ((sid, seq, bytes(data)) for seq, data in rows))
                if rest is None:
                    conn.execute("DELETE FROM search_pending WHERE session_id = ?", (sid,))
                else:
                    conn.execute(
                        "UPDATE search_pending SET from_seq = ? WHERE session_id = ?", (rest, sid)
                    )
                done += step
                self._backlog_bytes = max(0, self._backlog_bytes - step) if self._backlog else 0
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if not self._index_failed:
                self._index_failed = True
                log.warning("search index not updated: %s", exc)

    def _hold(self, sessions: list[tuple[Any, ...]], frames: list[Frame]) -> None:
        """Keeps what could not be written: every session row (the newest of each), and the
        newest frames within the budget; the oldest frames go first, counted as lost."""
        for row in sessions:
            self._held_sessions[row[0]] = row
        for f in frames:
            self._held_frames.append(f)
            self._held_bytes += len(f.data) + FRAME_OVERHEAD
        while self._held_bytes > self._held_budget and self._held_frames:
            gone = self._held_frames.popleft()
            self._held_bytes -= len(gone.data) + FRAME_OVERHEAD
            lost = self._lost.get(gone.session_id)
            if lost is None:
                self._lost[gone.session_id] = _Lost(gone.seq, gone.seq, 1, len(gone.data))
            else:
                lost.last = gone.seq
                lost.frames += 1
                lost.bytes += len(gone.data)

    def _retry(self) -> None:
        """Writes what is held; on success recording is back, else the next try waits longer."""
        frames = list(self._held_frames)
        frames.extend(lost.marker(sid) for sid, lost in self._lost.items())
        try:
            if self._wconn is None:
                self._wconn = self._connect_writer()
                self.mark_interrupted()
            self._commit(list(self._held_sessions.values()), frames, self._held_changes)
        except (sqlite3.Error, StoreError) as exc:
            log.debug("the session store is still not writable: %s", exc)
            self._retry_delay = min(self._retry_delay * 2, self._retry_max)
            self._retry_at = time.monotonic() + self._retry_delay
            return
        sessions, lost = len(self._held_sessions), sum(x.bytes for x in self._lost.values())
        self._held_sessions.clear()
        self._held_changes.clear()
        self._held_frames.clear()
        self._held_bytes = 0
        self._lost.clear()
        self.failed = None
        message = (
            f"recording resumed: the session store {self.path} can be written again; "
            f"{sessions} session(s) that ran while it was off are recorded"
        )
        if lost:
            message += f", except {lost} bytes of their output that did not fit in memory"
        _tell(self._on_resume, message, logging.WARNING)

    def _run_call(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        fut: concurrent.futures.Future[Any],
        transaction: bool,
    ) -> None:
        conn = self._wconn
        if conn is None or self.failed is not None:
            fut.set_exception(StoreError(self.failed or "the session store is closed"))
            return
        # What asks the store (search, retention) sees every committed frame indexed.
        self._catch_up(None)
        try:
            if transaction:
                conn.execute("BEGIN IMMEDIATE")
            result = fn(conn)
            if transaction:
                conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            fut.set_exception(exc)
            return
        fut.set_result(result)

    def call(
        self, fn: Callable[[sqlite3.Connection], T], transaction: bool = True
    ) -> concurrent.futures.Future[T]:
        """Runs ``fn`` on the writer connection (in one transaction), after what is queued."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        if not self.recording:
            fut.set_exception(StoreError(self.failed or "recording is off"))
        else:
            self._queue.put(("call", (fn, fut, transaction)))
        return fut

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.wrap_future(self.call(fn))

    def _fail(self, reason: str) -> None:
        if self.failed is not None:
            return
        self.failed = reason
        _tell(self._on_failure, reason, logging.ERROR)

    # reads (blocking; call through asyncio.to_thread from the loop) -----------------------
    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (WAL readers never block the writer); for
        queries the store has no method for, like the replay index's seeks. Call it from a
        worker thread, never the event loop."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            self.readers_opened += 1
        return conn

    def get_session(self, session_id: str) -> Session | None:
        row = (
            self.reader()
            .execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", (session_id,))
            .fetchone()
        )
        return _row_to_session(row) if row else None

    def ids_from(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` ids that start with ``prefix``, in order (the id itself first when
        it exists): a range on the primary key's index, not a scan."""
        upper = prefix_bound(prefix)
        sql = "SELECT id FROM sessions WHERE id >= ?"
        args: list[Any] = [prefix]
        if upper is not None:
            sql += " AND id < ?"
            args.append(upper)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        rows = self.reader().execute(sql, args).fetchall()
        return [r[0] for r in rows if r[0].startswith(prefix)]

    def list_sessions(self, flt: SessionFilter) -> list[Session]:
        where: list[str] = []
        args: list[Any] = []
        if flt.state:
            where.append("state = ?")
            args.append(flt.state)
        if flt.kind:
            where.append("kind = ?")
            args.append(flt.kind)
        if flt.not_kind:
            where.append("kind != ?")
            args.append(flt.not_kind)
        if flt.since_ns is not None:
            where.append("created_ns >= ?")
            args.append(_int64(flt.since_ns))
        if flt.until_ns is not None:
            where.append("created_ns <= ?")
            args.append(_int64(flt.until_ns))
        if flt.parent_id is not None:
            where.append("parent_id = ?")
            args.append(flt.parent_id)
        for key, value in (flt.meta or {}).items():
            where.append("json_extract(meta, ?) = ?")
            args.extend([f'$."{key}"', value])
        for key, value in (flt.tags or {}).items():
            if value == "":
                where.append("json_type(tags, ?) IS NOT NULL")
                args.append(f'$."{key}"')
            else:
                where.append("json_extract(tags, ?) = ?")
                args.extend([f'$."{key}"', value])
        sql = f"SELECT {_SESSION_COLS} FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_ns DESC, id DESC LIMIT ?"
        args.append(max(0, flt.limit))
        return [_row_to_session(r) for r in self.reader().execute(sql, args)]

    def frames(self, session_id: str, from_seq: int = 1, limit: int | None = None) -> list[Frame]:
        sql = "SELECT seq, ts_ns, type, data FROM frames WHERE session_id = ? AND seq >= ? ORDER BY seq"
        args: list[Any] = [session_id, from_seq]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [
            Frame(session_id, seq, ts, FrameType(t), bytes(data))
            for seq, ts, t, data in self.reader().execute(sql, args)
        ]

    def iter_frames(self, session_id: str, from_seq: int = 1, batch: int = 2000) -> Iterator[Frame]:
        """All frames from ``from_seq`` in order, read in batches so memory stays flat."""
        seq = from_seq
        while True:
            chunk = self.frames(session_id, seq, batch)
            yield from chunk
            if len(chunk) < batch:
                return
            seq = chunk[-1].seq + 1

    def last_frame(self, session_id: str, ftype: FrameType, at_or_before: int) -> Frame | None:
        """The newest frame of ``ftype`` up to sequence ``at_or_before`` (the terminal size a
        command block starts with, say)."""
        row = (
            self.reader()
            .execute(
                "SELECT seq, ts_ns, data FROM frames WHERE session_id = ? AND type = ? "
                "AND seq <= ? ORDER BY seq DESC LIMIT 1",
                (session_id, str(ftype), at_or_before),
            )
            .fetchone()
        )
        return Frame(session_id, row[0], row[1], ftype, bytes(row[2])) if row else None

    def blocks(self, session_id: str) -> list[Block]:
        rows = self.reader().execute(
            "SELECT idx, command, cwd, started_ns, from_seq, ended_ns, exit_code, to_seq "
            "FROM blocks WHERE session_id = ? ORDER BY idx",
            (session_id,),
        )
        return [Block(*row) for row in rows]

    def search(
        self,
        query: search.Query,
        limit: int,
        state: str | None = None,
        kind: str | None = None,
        since_ns: int | None = None,
        **scope: str | None,
    ) -> list[search.Hit]:
        """Blocking: call it from a worker thread after :meth:`indexed`. ``scope``:
        ``session_id``, ``not_kind`` (``search.search``)."""
        return search.search(self.reader(), query, limit, state, kind, since_ns, **scope)

    async def indexed(self) -> None:
        """Waits until every frame queued so far is committed and indexed."""
        await self.run(lambda conn: None)

    def mark_interrupted(self) -> int:
        """Sessions whose recording process died while they ran can never finish now."""
        if self._wconn is None:
            return 0
        conn = self.reader()
        rows = conn.execute(
            "SELECT id, owner FROM sessions WHERE state = ?", (str(State.RUNNING),)
        ).fetchall()
        dead = [sid for sid, owner in rows if not owner_alive(owner)]
        if not dead:
            return 0
        ended = now_ns()
        conn.executemany(
            "UPDATE sessions SET state = ?, ended_ns = COALESCE(ended_ns, ?), "
            "error = COALESCE(error, 'the server stopped while the session was running') "
            "WHERE id = ? AND state = ?",
            [(str(State.INTERRUPTED), ended, sid, str(State.RUNNING)) for sid in dead],
        )
        # Their running blocks end with them, exit code unknown, as a session's end does.
        conn.executemany(
            "UPDATE blocks SET ended_ns = ?, exit_code = NULL, "
            "to_seq = (SELECT last_seq FROM sessions WHERE id = blocks.session_id) "
            "WHERE session_id = ? AND ended_ns IS NULL",
            [(ended, sid) for sid in dead],
        )
        return len(dead)

    def fingerprint(self, not_kind: str) -> tuple[int, int, tuple[str, ...]]:
        """What changes when another process's session (not of ``not_kind``) starts, ends or
        is deleted: how many there are, the newest start, the ids running. Blocks: from a
        thread."""
        conn = self.reader()
        me = current_owner()
        count, newest = conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(created_ns), 0) FROM sessions "
            "WHERE kind != ? AND owner != ?",
            (not_kind, me),
        ).fetchone()
        running = conn.execute(
            "SELECT id FROM sessions WHERE state = ? AND kind != ? AND owner != ? ORDER BY id",
            (str(State.RUNNING), not_kind, me),
        ).fetchall()
        return int(count), int(newest), tuple(r[0] for r in running)

    def post_answer(self, session_id: str, n: int, choice: str | None, who: str) -> bool:
        """Posts the answer to another process's question; False when one was posted first.
        Blocks on the writer: call from a worker thread."""

        def go(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO answers (session_id, n, choice, who, posted_ns) "
                "SELECT id, ?, ?, ?, ? FROM sessions WHERE id = ?",
                (n, choice, who, now_ns(), session_id),
            )
            return cur.rowcount > 0

        return self.call(go).result()

    def posted_answers(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[str | None, str]]:
        """The answers other processes posted to these questions: ``(choice, who)`` each."""
        wanted = set(keys)
        out: dict[tuple[str, int], tuple[str | None, str]] = {}
        sids = sorted({sid for sid, _ in wanted})  # a few: the questions waiting here
        marks = ",".join("?" * len(sids))
        for sid, n, choice, who in self.reader().execute(
            f"SELECT session_id, n, choice, who FROM answers WHERE session_id IN ({marks})", sids
        ):
            if (sid, n) in wanted:
                out[(sid, n)] = (choice, who)
        return out

    def set_pinned(self, session_id: str, pinned: bool) -> bool:
        """Pins or unpins; while recording is off, remembered and applied once it is back."""

        def go(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE sessions SET pinned = ? WHERE id = ?", (int(pinned), session_id)
            )
            return cur.rowcount > 0

        if self._hold_change(go):
            return True
        return self.call(go).result()

    def delete(self, ids: list[str]) -> int:
        """Deletes sessions; while recording is off, remembered (the held rows of these
        sessions would otherwise bring them back) and applied once it is back."""

        def go(conn: sqlite3.Connection) -> int:
            return retention.delete_sessions(conn, ids)

        if self._hold_change(go):
            return len(ids)
        n = self.call(go).result()
        self.call(_vacuum, transaction=False).result()
        return n

    def _hold_change(self, change: Callable[[sqlite3.Connection], Any]) -> bool:
        """Queues ``change`` to be applied when recording resumes, if it is off and the store
        still takes work; False when the change can be made now (or never: closed)."""
        if not self._accepting or self.failed is None:
            return False
        self._queue.put(("change", change))
        return True

    def prune(self, policy: retention.RetentionPolicy) -> retention.PruneResult:
        def go(conn: sqlite3.Connection) -> retention.PruneResult:
            return retention.prune(conn, policy)

        result = self.call(go).result()
        self.call(_vacuum, transaction=False).result()
        self.checkpoint()
        result.bytes_after = self.file_size()
        return result

    def checkpoint(self) -> None:
        """Moves the WAL into the main file and truncates it, so freed space leaves the disk."""
        with contextlib.suppress(sqlite3.Error):
            self.reader().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def file_size(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(f"{self.path}{suffix}")
        return total

    def integrity_check(self) -> str:
        return str(self.reader().execute("PRAGMA integrity_check").fetchone()[0])
