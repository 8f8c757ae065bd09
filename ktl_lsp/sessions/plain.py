"""A session's output as plain text in bounded pages, for readers that are not terminals (agents).

Escape sequences are removed, ``\\r`` redraws (progress bars) collapse to their last state and
well-known secrets are redacted, whatever the recording's own redaction setting was: this text
leaves the machine. A page never holds more than ``max_bytes`` of UTF-8, so a 100 MB session
costs what the caller asked for, not what it holds.

Two ways in: forward from a sequence number (``next_seq`` continues), or the last ``tail_lines``
lines, read backwards by the frames' primary key until enough line breaks are seen.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from ktl_lsp.pty.text import strip_ansi, visible_line
from ktl_lsp.sessions.redact import Redaction

#: Raw bytes read per byte of answer before giving up on finding more line breaks (escape
#: sequences and redraws shrink when cleaned).
RAW_FACTOR = 8

_REDACTION = Redaction.default()


@dataclass
class PlainPage:
    text: str
    #: First and last output frame the text comes from (0 when there was none).
    first_seq: int
    last_seq: int
    #: Where the next forward page starts, or None at the end of what is recorded.
    next_seq: int | None
    #: Text was left out to stay within the byte budget.
    truncated: bool
    redacted: list[str]
    #: With ``next_seq``: bytes of that frame's text already given (a frame bigger than a page).
    next_offset: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "bytes": len(self.text.encode()),
            "fromSeq": self.first_seq,
            "toSeq": self.last_seq,
            "truncated": self.truncated,
        }
        if self.next_seq is not None:
            out["nextSeq"] = self.next_seq
        if self.next_offset:
            out["nextOffset"] = self.next_offset
        if self.redacted:
            out["redacted"] = self.redacted
        return out


def clean(raw: bytes) -> tuple[str, list[str]]:
    """Plain text of terminal output: redacted, escapes gone, each line at its last redraw."""
    red = _REDACTION.redactor().scan(raw)
    text = strip_ansi(red.data.decode("utf-8", "replace")).replace("\r\n", "\n")
    lines = [visible_line(line).rstrip() if "\r" in line else line for line in text.split("\n")]
    return "\n".join(lines), red.names


def cap_tail(text: str, max_bytes: int) -> tuple[str, bool]:
    """The end of ``text`` within ``max_bytes`` (from a line start when one fits), and if
    anything was cut."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text, False
    cut = data[len(data) - max_bytes :]
    nl = cut.find(b"\n")
    if 0 <= nl < len(cut) - 1:
        cut = cut[nl + 1 :]  # start at a whole line when one fits
    return cut.decode("utf-8", "ignore"), True


def read_forward(
    conn: sqlite3.Connection, session_id: str, from_seq: int, max_bytes: int, offset: int = 0
) -> PlainPage:
    """Whole output frames from ``from_seq`` while their plain text fits ``max_bytes``; a frame
    too big for a page on its own is given in pieces (``offset`` bytes into its text)."""
    rows: list[tuple[int, bytes]] = []
    held = 0
    budget = max(max_bytes, 1) * RAW_FACTOR
    # Rows are read one by one from the cursor: a frame can be large, so no batch is fetched
    # beyond what the page needs.
    cursor = conn.execute(
        "SELECT seq, data FROM frames WHERE session_id = ? AND seq >= ? AND type = 'output'"
        " ORDER BY seq",
        (session_id, from_seq),
    )
    more = False
    for s, data in cursor:
        if held >= budget:
            more = True
            break
        rows.append((s, bytes(data)))
        held += len(data)
    cursor.close()
    if not rows:
        return PlainPage("", 0, 0, None, False, [])
    if offset > 0:
        return _piece(rows[0], max_bytes, offset)

    def fits(k: int) -> tuple[str, list[str]] | None:
        text, names = clean(b"".join(d for _, d in rows[:k]))
        return (text, names) if len(text.encode()) <= max_bytes else None

    # The most whole frames whose text fits (the text grows with the frames taken).
    lo, hi = 0, len(rows)
    best = fits(hi)
    if best is None:
        while lo < hi - 1:
            mid = (lo + hi) // 2
            if fits(mid) is None:
                hi = mid
            else:
                lo = mid
        if lo == 0:
            return _piece(rows[0], max_bytes, 0)
        best = fits(lo)
        assert best is not None
        taken = lo
    else:
        taken = len(rows)
    text, names = best
    at_end = taken == len(rows) and not more
    next_seq = None if at_end else rows[taken - 1][0] + 1
    return PlainPage(text, rows[0][0], rows[taken - 1][0], next_seq, False, names, 0)


def _piece(row: tuple[int, bytes], max_bytes: int, offset: int) -> PlainPage:
    """Part of one frame's text, from ``offset`` bytes in."""
    seq, data = row
    text, names = clean(data)
    rest = text.encode()[offset:]
    piece = rest[:max_bytes].decode("utf-8", "ignore")
    used = len(piece.encode())
    if used < len(rest):
        return PlainPage(piece, seq, seq, seq, True, names, offset + used)
    return PlainPage(piece, seq, seq, seq + 1, False, names, 0)


def read_tail(conn: sqlite3.Connection, session_id: str, lines: int, max_bytes: int) -> PlainPage:
    """The last ``lines`` lines (fewer if they would pass ``max_bytes``), read from the end."""
    chunks: list[bytes] = []
    breaks = 0
    held = 0
    first = last = 0
    budget = max(max_bytes, 1) * RAW_FACTOR
    cursor = conn.execute(
        "SELECT seq, data FROM frames WHERE session_id = ? AND type = 'output' ORDER BY seq DESC",
        (session_id,),
    )
    for s, data in cursor:
        chunk = bytes(data)
        chunks.append(chunk)
        breaks += chunk.count(b"\n")
        held += len(chunk)
        first, last = s, last or s
        if breaks > lines or held >= budget:
            break
    cursor.close()
    text, names = clean(b"".join(reversed(chunks)))
    ended = text.endswith("\n")
    shown = text.split("\n")
    if ended:
        shown.pop()
    short = breaks <= lines and held >= budget  # stopped by the byte budget, not the count
    text = "\n".join(shown[-lines:]) + ("\n" if ended else "") if lines else ""
    capped, truncated = cap_tail(text, max_bytes)
    return PlainPage(capped, first, last, None, truncated or short, names)
