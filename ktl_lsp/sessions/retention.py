"""Retention: which sessions and frames to let go, and giving the space back.

Pinned and running sessions are never deleted. Long sessions lose their oldest frames first,
and a marker frame takes the place of what went, so a replay can say "N frames trimmed".
Every function here runs on the store's writer connection, inside its thread.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from ktl_lsp.sessions.model import FrameType, State, now_ns
from ktl_lsp.sessions.search import compact, unindex

DAY_NS = 86_400 * 1_000_000_000


@dataclass
class Unindexed:
    """Index rows a retention pass removed and the index's merge has not yet given back (a
    merge rewrites the whole index: it runs once per pass, and when the size limit needs it)."""

    rows: int = 0

    def compact(self, conn: sqlite3.Connection, at_least: int = 1) -> None:
        if self.rows >= at_least:
            compact(conn)
            self.rows = 0


@dataclass
class RetentionPolicy:
    """Each limit 0 = unlimited. The ``json`` names are the ``retention`` setting's keys."""

    max_sessions: int = field(default=5000, metadata={"json": "maxSessions"})
    max_frames_per_session: int = field(default=1_000_000, metadata={"json": "maxFramesPerSession"})
    max_store_bytes: int = field(default=2 * 1024**3, metadata={"json": "maxStoreBytes"})
    max_age_days: float = field(default=90.0, metadata={"json": "maxAgeDays"})
    #: how often the server prunes by itself (0 = only when asked)
    interval_s: float = field(default=600.0, metadata={"json": "intervalS"})

    def check(self) -> None:
        if any(value < 0 for value in vars(self).values()):
            raise ValueError("must not be negative")

    @property
    def unlimited(self) -> bool:
        return not (
            self.max_sessions
            or self.max_frames_per_session
            or self.max_store_bytes
            or self.max_age_days
        )


@dataclass
class PruneResult:
    deleted_sessions: int = 0
    trimmed_frames: int = 0
    bytes_before: int = 0
    bytes_after: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "deleted": self.deleted_sessions,
            "trimmedFrames": self.trimmed_frames,
            "bytesBefore": self.bytes_before,
            "bytesAfter": self.bytes_after,
        }


#: Finished, unpinned top-level sessions whose tree holds no pinned or running session (a plan's
#: pinned node keeps its plan, and a running child its parent).
_ROOTS = """
WITH RECURSIVE up(id, parent) AS (
    SELECT id, parent_id FROM sessions WHERE pinned != 0 OR state = :running
    UNION SELECT s.id, s.parent_id FROM sessions s JOIN up ON s.id = up.parent
)
SELECT id FROM sessions
WHERE pinned = 0 AND state != :running AND parent_id IS NULL
  AND id NOT IN (SELECT id FROM up WHERE parent IS NULL)
"""


def _used_bytes(conn: sqlite3.Connection) -> int:
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int(page_size * (pages - free))


def file_bytes(conn: sqlite3.Connection) -> int:
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    return int(page_size * pages)


def delete_sessions(
    conn: sqlite3.Connection, ids: list[str], unindexed: Unindexed | None = None
) -> int:
    """Deletes sessions (frames cascade) and their children, whatever their pin state; the
    index rows removed are counted in ``unindexed`` (the caller merges the index)."""
    unindexed = unindexed if unindexed is not None else Unindexed()
    if not ids:
        return 0
    todo, seen = list(ids), set()
    while todo:
        batch = [i for i in todo[:500] if i not in seen]
        todo = todo[500:]
        seen.update(batch)
        if not batch:
            continue
        marks = ",".join("?" * len(batch))
        children = conn.execute(
            f"SELECT id FROM sessions WHERE parent_id IN ({marks})", batch
        ).fetchall()
        todo.extend(c[0] for c in children if c[0] not in seen)
    running = str(State.RUNNING)
    n = 0
    for chunk in _chunks(sorted(seen), 500):
        marks = ",".join("?" * len(chunk))
        for (sid,) in conn.execute(
            f"SELECT id FROM sessions WHERE id IN ({marks}) AND state != ?", [*chunk, running]
        ).fetchall():
            unindexed.rows += unindex(conn, sid)
        marks = ",".join("?" * len(chunk))
        cur = conn.execute(
            f"DELETE FROM sessions WHERE id IN ({marks}) AND state != ?", [*chunk, running]
        )
        n += cur.rowcount
    return n


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def trim_frames(
    conn: sqlite3.Connection, max_frames: int, unindexed: Unindexed | None = None
) -> int:
    """Keeps the newest ``max_frames`` frames of each session; a marker replaces the rest."""
    unindexed = unindexed if unindexed is not None else Unindexed()
    if max_frames <= 0:
        return 0
    over = conn.execute(
        "SELECT session_id, COUNT(*), MIN(seq), MAX(seq) FROM frames GROUP BY session_id HAVING COUNT(*) > ?",
        (max_frames + 1,),
    ).fetchall()
    trimmed = 0
    for sid, count, lo, hi in over:
        # Keep the newest max_frames frames; the marker takes the number of the last frame cut.
        cut = conn.execute(
            "SELECT seq FROM frames WHERE session_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (sid, max_frames),
        ).fetchone()[0]
        prior = conn.execute(
            "SELECT data FROM frames WHERE session_id = ? AND seq = ? AND type = ?",
            (sid, lo, str(FrameType.MARKER)),
        ).fetchone()
        first = lo
        if prior is not None:
            # Merge with an earlier trim marker so a replay shows one continuous gap.
            try:
                first = int(json.loads(prior[0])["trimmed"]["from"])
            except (ValueError, KeyError, TypeError):
                first = lo
        unindexed.rows += unindex(conn, sid, lo, cut)
        cur = conn.execute("DELETE FROM frames WHERE session_id = ? AND seq <= ?", (sid, cut))
        removed = cur.rowcount
        marker = json.dumps(
            {"trimmed": {"from": first, "to": cut, "frames": cut - first + 1}}
        ).encode()
        conn.execute(
            "INSERT INTO frames (session_id, seq, ts_ns, type, data) VALUES (?,?,?,?,?)",
            (sid, cut, now_ns(), str(FrameType.MARKER), marker),
        )
        trimmed += removed - (1 if prior is not None else 0)
        _ = count, hi
    return trimmed


def prune(conn: sqlite3.Connection, policy: RetentionPolicy) -> PruneResult:
    result = PruneResult(bytes_before=file_bytes(conn))
    running = {"running": str(State.RUNNING)}
    doomed: list[str] = []
    if policy.max_age_days:
        cutoff = now_ns() - int(policy.max_age_days * DAY_NS)
        doomed += [
            r[0]
            for r in conn.execute(
                f"{_ROOTS} AND COALESCE(ended_ns, created_ns) < :cutoff",
                {**running, "cutoff": cutoff},
            )
        ]
    if policy.max_sessions:
        total = conn.execute("SELECT COUNT(*) FROM sessions WHERE parent_id IS NULL").fetchone()[0]
        excess = total - len(doomed) - policy.max_sessions
        if excess > 0:
            skip = set(doomed)
            for (sid,) in conn.execute(f"{_ROOTS} ORDER BY created_ns ASC, id ASC", running):
                if excess <= 0:
                    break
                if sid not in skip:
                    doomed.append(sid)
                    excess -= 1
    gone = Unindexed()
    result.deleted_sessions += delete_sessions(conn, doomed, gone)
    result.trimmed_frames = trim_frames(conn, policy.max_frames_per_session, gone)
    if policy.max_store_bytes:
        for _ in range(25):
            # The index gives deleted rows' pages back once merged: merge what waits before
            # measuring (once per round of deletions, not once per session).
            gone.compact(conn)
            excess = _used_bytes(conn) - policy.max_store_bytes
            if excess <= 0:
                break
            oldest = _oldest(conn, excess // 2)
            if not oldest:
                break  # only pinned and running sessions are left: they stay, over the limit
            result.deleted_sessions += delete_sessions(conn, oldest, gone)
    gone.compact(conn)
    return result


def _oldest(conn: sqlite3.Connection, output_bytes: int) -> list[str]:
    """The oldest deletable sessions whose output adds up to ``output_bytes`` (one at least):
    half of what is over the limit at a time, so a pass merges the index a few times, not
    once per session, and never frees much more than it must (the index's share comes on top)."""
    ids: list[str] = []
    total = 0
    # The output a session recorded (its frames' sizes when it says none: a task's, or a test's).
    sql = (
        "SELECT id, CASE WHEN bytes_out > 0 THEN bytes_out ELSE (SELECT COALESCE(SUM(LENGTH(data)), 0) "
        f"FROM frames f WHERE f.session_id = sessions.id) END FROM sessions WHERE id IN ({_ROOTS}) "
        "ORDER BY created_ns, id"
    )
    cursor = conn.execute(sql, {"running": str(State.RUNNING)})
    for sid, size in cursor:
        ids.append(sid)
        total += int(size or 0)
        if total >= output_bytes or len(ids) >= 1000:
            break
    cursor.close()
    return ids
