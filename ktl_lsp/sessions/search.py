"""Full-text search over every session's output: SQLite FTS5 in the session store.

The store's writer thread indexes output frames as it commits them (``Indexer``), in the same
transaction, so a search never converts anything on the request path. What is indexed is the
plain text a reader saw, line by line:

- escape sequences and control characters are removed;
- ``\\r`` (and ``ESC[G``, column 1) returns to the start of the line and what follows
  overwrites it, backspace steps back, ``ESC[K`` / ``ESC[2K`` erase to the end of the line:
  a progress bar is indexed as its last state;
- each output frame is one row of the index, its lines taken on their own, so a match points
  at a ``seq`` a replay can seek to and a row's text depends on its frame alone (it can be
  removed exactly when the frame goes). A line that spans two reads is indexed as two pieces
  (a word cut by the read boundary is not found whole); a match's line is shown whole.

Approximations (documented, accepted): cursor movement across lines (``ESC[A``, absolute
positioning: full-screen programs) is not followed, so such screens index as the text they
wrote in the order they wrote it; an escape sequence split across two reads leaves its tail;
a ``\r`` rewrite that spans reads keeps the earlier state in the earlier frame's row.

The index is contentless (``content=''``) so it costs a fraction of the output: a row's text
is rebuilt from its frame when a match is shown. A row's id is ``n << 32 | seq`` where ``n``
numbers the session in ``search_docs``, so newer sessions sort first and one session's rows
are one range. SQLite before 3.43 cannot delete from a contentless table by id alone, so
retention deletes a session's rows by converting its frames again (``unindex``) before they
go; every answer is also checked against the frames that still exist.
"""

from __future__ import annotations

import codecs
import logging
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SHIFT = 32
SEQ_MASK = (1 << SHIFT) - 1
#: The longest unfinished line kept; beyond it the line is cut (and indexed in pieces).
MAX_PARTIAL = 64 * 1024
#: Frames read back to rebuild the lines of a match.
MAX_LIMIT = 1000

_COLUMN1 = re.compile(rb"\x1b\[[01]?G")
_ERASE = re.compile(rb"\x1b\[[02]?K")
#: CSI, OSC, DCS/SOS/PM/APC strings, other escapes (a pattern that starts with a literal ESC
#: is searched for quickly); then the C0 controls but BS, TAB, LF, CR and SUB are deleted.
_ESCAPES = re.compile(
    rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[ -/]*[0-~])?"
)
_CONTROLS = bytes(range(0x08)) + b"\x0b\x0c" + bytes(range(0x0E, 0x1A)) + bytes(range(0x1B, 0x20))
_CONTROLS += b"\x7f"


def _strip(data: bytes) -> bytes:
    if b"\x1b" in data:
        data = _ESCAPES.sub(b"", data)
    return data.translate(None, _CONTROLS)


_REWRITES = re.compile("[\r\x08\x1a]")
_REWRITTEN_LINE = re.compile("^[^\n\r\x08\x1a]*[\r\x08\x1a][^\n]*", re.M)
#: How long one search goes on looking at frames the index found: a phrase whose words are
#: often in the same frame but rarely together on one line may answer fewer matches than there
#: are, never slowly.
SEARCH_BUDGET_S = 0.08


def resolve(line: str) -> str:
    """What a terminal shows for one line with ``\\r`` rewrites, backspaces and erases
    (``\\x1a`` stands for an erase to the end of the line)."""
    if "\x08" not in line and "\x1a" not in line:
        parts = line.split("\r")
        out = parts[0]
        for part in parts[1:]:
            out = part + out[len(part) :]
        return out
    buf: list[str] = []
    col = 0
    for ch in line:
        if ch == "\r":
            col = 0
        elif ch == "\x08":
            col = max(0, col - 1)
        elif ch == "\x1a":
            del buf[col:]
        else:
            if col < len(buf):
                buf[col] = ch
            else:
                buf.extend(" " * (col - len(buf)))
                buf.append(ch)
            col += 1
    return "".join(buf)


class PlainLines:
    """Turns a stream of terminal output into the plain lines it showed."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.partial = ""

    def feed(self, data: bytes) -> list[str]:
        if b"\x1b[" in data:
            data = _COLUMN1.sub(b"\r", data)
            data = _ERASE.sub(b"\x1a", data)
        data = _strip(data)
        text = self._decoder.decode(data)
        if not text:
            return []
        if self.partial:
            text = self.partial + text
        if "\r\n" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        partial = lines.pop()
        if len(partial) > 4096 and _REWRITES.search(partial):
            partial = resolve(partial)
        if len(partial) > MAX_PARTIAL:
            lines.append(partial)
            partial = ""
        self.partial = partial
        return [resolve(x) if _REWRITES.search(x) else x for x in lines]

    def finish(self) -> str:
        """The unfinished last line, as shown."""
        rest, self.partial = self.partial, ""
        return resolve(rest).rstrip("\r") if _REWRITES.search(rest) else rest


def frame_text(data: bytes) -> str:
    """The plain text one output frame adds to the index: its lines as shown, on their own.

    A row depends on its frame's bytes alone, so the text removed from the index when the
    frame goes is exactly the text that was added (contentless FTS5 needs both to match)."""
    if b"\x1b[" in data:
        data = _COLUMN1.sub(b"\r", data)
        data = _ERASE.sub(b"\x1a", data)
    data = _strip(data)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    text = data.decode("utf-8", "replace")
    if "\r" in text or "\x08" in text or "\x1a" in text:
        text = _resolve_lines(text)
    return text if not text.isspace() else ""


def _resolve_lines(text: str) -> str:
    """``text`` with each line that holds a rewrite resolved: only those lines are looked at
    (a regular expression over every line cost more than the rest of the conversion)."""
    out: list[str] = []
    pos = 0
    size = len(text)
    while pos < size:
        at = min((i for i in (text.find(c, pos) for c in "\r\x08\x1a") if i >= 0), default=-1)
        if at < 0:
            break
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        if end < 0:
            end = size
        out.append(text[pos:start])
        out.append(resolve(text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


class Indexer:
    """The writer thread's side: output frames in, index rows out (same transaction)."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def _number(self, conn: sqlite3.Connection, session_id: str) -> int:
        n = self._numbers.get(session_id)
        if n is None:
            conn.execute("INSERT OR IGNORE INTO search_docs (session_id) VALUES (?)", (session_id,))
            row = conn.execute(
                "SELECT n FROM search_docs WHERE session_id = ?", (session_id,)
            ).fetchone()
            n = self._numbers[session_id] = int(row[0])
        return n

    def add(self, conn: sqlite3.Connection, frames: Iterable[tuple[str, int, bytes]]) -> None:
        rows: list[tuple[int, str]] = []
        for session_id, seq, data in frames:
            text = frame_text(data)
            if text:
                rows.append(((self._number(conn, session_id) << SHIFT) | seq, text))
        if rows:
            conn.executemany("INSERT INTO search_text (rowid, text) VALUES (?, ?)", rows)

    def forget(self, session_ids: Iterable[str]) -> None:
        """Sessions that ended: their numbers need not be remembered."""
        for sid in session_ids:
            self._numbers.pop(sid, None)


def unindex(
    conn: sqlite3.Connection, session_id: str, from_seq: int = 1, to_seq: int = SEQ_MASK
) -> int:
    """Removes the rows of a session's frames ``from_seq..to_seq`` before the frames go, by
    converting them again. Runs on the writer connection; a failure leaves the rows (every
    answer is checked against the frames that exist) and never stops retention."""
    row = conn.execute("SELECT n FROM search_docs WHERE session_id = ?", (session_id,)).fetchone()
    if row is None:
        return 0
    base = int(row[0]) << SHIFT
    frames = conn.execute(
        "SELECT seq, data FROM frames WHERE session_id = ? AND type = 'output' AND seq >= ? "
        "AND seq <= ? ORDER BY seq",
        (session_id, from_seq, to_seq),
    )
    rows = [("delete", base | seq, text) for seq, d in frames if (text := frame_text(bytes(d)))]
    conn.execute("SAVEPOINT unindex")
    try:
        conn.executemany(
            "INSERT INTO search_text (search_text, rowid, text) VALUES (?, ?, ?)", rows
        )
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK TO unindex")
        log.warning("search index: rows of session %s not removed: %s", session_id, exc)
        rows = []
    conn.execute("RELEASE unindex")
    return len(rows)


def compact(conn: sqlite3.Connection) -> None:
    """Merges the index so rows deleted by ``unindex`` give their pages back (retention)."""
    conn.execute("INSERT INTO search_text (search_text) VALUES ('optimize')")


# queries (reader connections) ----------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
#: A token as FTS5's unicode61 tokenizer cuts them: letters and digits, no underscore (a word
#: quoted whole that the index holds as two would be a phrase, which ``detail=none`` refuses).
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass
class Query:
    """A search as people type it: words that must all appear (in any order, any case); a
    ``"quoted phrase"`` must appear as it is; ``word*`` matches words that start so. FTS5's own
    syntax is not exposed, so no query is a syntax error."""

    text: str
    match: str
    terms: list[str]

    @classmethod
    def parse(cls, text: str) -> Query:
        parts: list[str] = []
        terms: list[str] = []
        for phrase, word in re.findall(r'"([^"]*)"?|(\S+)', text):
            chunk = phrase if phrase else word
            prefix = bool(word) and word.endswith("*")
            tokens = _TOKEN.findall(chunk)
            if not tokens:
                continue
            terms.append(" ".join(_WORD.findall(chunk)) if phrase else chunk.rstrip("*"))
            # The index keeps no positions: a phrase is its words, checked on the line after.
            quoted = [f'"{t}"' for t in tokens]
            if prefix:
                quoted[-1] += "*"
            parts.extend(quoted)
        return cls(text, " ".join(parts), terms)


@dataclass
class Hit:
    session_id: str
    seq: int
    line: str
    highlights: list[list[int]]
    block: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sessionId": self.session_id,
            "seq": self.seq,
            "line": self.line,
            "highlights": self.highlights,
        }
        if self.block is not None:
            out["block"] = self.block
        return out


def highlights(line: str, terms: list[str]) -> list[list[int]]:
    """Where each term is in ``line`` (case-insensitive), as [start, end] offsets."""
    low = line.lower()
    spans: list[list[int]] = []
    for term in terms:
        t = term.lower()
        if not t:
            continue
        words = _WORD.findall(t)
        pattern = r"\W+".join(re.escape(w) for w in words) if words else re.escape(t)
        for m in re.finditer(pattern, low):
            spans.append([m.start(), m.end()])
    spans.sort()
    return spans


def match_lines(conn: sqlite3.Connection, session_id: str, seq: int) -> list[str]:
    """The lines of frame ``seq`` as shown, its first and last completed from the frames
    before and after it (a line may span reads)."""
    row = conn.execute(
        "SELECT data FROM frames WHERE session_id = ? AND seq = ?", (session_id, seq)
    ).fetchone()
    if row is None:
        return []
    data = bytes(row[0])
    before = conn.execute(
        "SELECT data FROM frames WHERE session_id = ? AND type = 'output' AND seq < ? "
        "ORDER BY seq DESC LIMIT 1",
        (session_id, seq),
    ).fetchone()
    after = conn.execute(
        "SELECT data FROM frames WHERE session_id = ? AND type = 'output' AND seq > ? "
        "ORDER BY seq LIMIT 1",
        (session_id, seq),
    ).fetchone()
    head = b""
    if before is not None and not data.startswith((b"\n", b"\r\n")):
        prev = bytes(before[0])
        head = prev[prev.rfind(b"\n") + 1 :]
    tail = b""
    if after is not None and not data.endswith(b"\n"):
        nxt = bytes(after[0])
        nl = nxt.find(b"\n")
        tail = nxt if nl < 0 else nxt[:nl]
    lines = PlainLines()
    out = lines.feed(head + data + tail)
    rest = lines.finish()
    return [x for x in out if x.strip()] + ([rest] if rest.strip() else [])


def search(
    conn: sqlite3.Connection,
    query: Query,
    limit: int,
    state: str | None = None,
    kind: str | None = None,
    since_ns: int | None = None,
    *,
    session_id: str | None = None,
    not_kind: str | None = None,
) -> list[Hit]:
    """Lines that hold every term of ``query``, newest first (a newer session, then a later
    frame, then the line order); frames are found by the index, lines checked on their text.
    ``session_id`` keeps to one session, ``not_kind`` leaves a kind of session out."""
    if not query.match or limit <= 0:
        return []
    where = ["search_text MATCH ?", "t.rowid < ?"]
    filters: list[Any] = []
    for clause, value in (
        ("d.session_id = ?", session_id),
        ("s.kind != ?", not_kind),
        ("s.state = ?", state),
        ("s.kind = ?", kind),
        ("s.created_ns >= ?", since_ns),
    ):
        if value is not None and value != "":
            where.append(clause)
            filters.append(value)
    sql = (
        f"SELECT t.rowid, d.session_id, f.seq, f.data FROM search_text t "
        f"JOIN search_docs d ON d.n = (t.rowid >> {SHIFT}) "
        "JOIN sessions s ON s.id = d.session_id "
        f"JOIN frames f ON f.session_id = d.session_id AND f.seq = (t.rowid & {SEQ_MASK}) "
        f"WHERE {' AND '.join(where)} AND f.type = 'output' "
        "ORDER BY t.rowid DESC LIMIT ?"
    )
    hits: list[Hit] = []
    below = 1 << 62
    deadline = time.monotonic() + SEARCH_BUDGET_S
    page = max(limit, 20)
    while len(hits) < limit and time.monotonic() < deadline:
        rows = conn.execute(sql, [query.match, below, *filters, page]).fetchall()
        for rowid, session_id, seq, data in rows:
            below = rowid
            for line in _lines_of(conn, session_id, seq, bytes(data), query.terms):
                if not hits or hits[-1].session_id != session_id or hits[-1].seq != seq:
                    block = _block_at(conn, session_id, seq)
                hits.append(Hit(session_id, seq, line, highlights(line, query.terms), block))
                if len(hits) >= limit:
                    return hits
        if len(rows) < page:
            break
    return hits


def _lines_of(
    conn: sqlite3.Connection, session_id: str, seq: int, data: bytes, terms: list[str]
) -> list[str]:
    """The lines of a matching frame to answer: those with every term, else (the index found
    the words in the frame, not on one line) the first with any; a phrase must be on one line.
    A line at the frame's edge is completed from the frames around it."""
    lines = [x for x in frame_text(data).split("\n") if x.strip()]
    found = [i for i, x in enumerate(lines) if all(highlights(x, [t]) for t in terms)]
    if not found and not any(" " in t for t in terms):
        found = [i for i, x in enumerate(lines) if highlights(x, terms)][:1]
    if not found:
        return []
    out = [lines[i] for i in found]
    if found[0] == 0 or found[-1] == len(lines) - 1:
        whole = match_lines(conn, session_id, seq)
        if len(whole) == len(lines):  # line for line, the edges completed
            out = [whole[i] for i in found]
    return out


def _block_at(conn: sqlite3.Connection, session_id: str, seq: int) -> int | None:
    row = conn.execute(
        "SELECT idx FROM blocks WHERE session_id = ? AND from_seq <= ? "
        "AND (to_seq IS NULL OR to_seq >= ?) ORDER BY idx DESC LIMIT 1",
        (session_id, seq, seq),
    ).fetchone()
    return int(row[0]) if row else None


def index_bytes(conn: sqlite3.Connection) -> int:
    """What the index takes on disk (its shadow tables' pages)."""
    try:
        row = conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'search_text%' OR name = 'search_docs'"
        ).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)
