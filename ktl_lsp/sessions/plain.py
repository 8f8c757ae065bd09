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

#: Frames read per query while paging.
BATCH = 256
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
        if self.redacted:
            out["redacted"] = self.redacted
        return out


def clean(raw: bytes) -> tuple[str, list[str]]:
    """Plain text of terminal output: redacted, escapes gone, each line at its last redraw."""
    red = _REDACTION.redactor().scan(raw)
    text = strip_ansi(red.data.decode("utf-8", "replace")).replace("\r\n", "\n")
    lines = [visible_line(line).rstrip() if "\r" in line else line for line in text.split("\n")]
    return "\n".join(lines), red.names


def _cap_head(text: str, max_bytes: int) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode("utf-8", "ignore"), True


def cap_tail(text: str, max_bytes: int) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= max_bytes:
        return text, False
    cut = data[len(data) - max_bytes :]
    nl = cut.find(b"\n")
    if 0 <= nl < len(cut) - 1:
        cut = cut[nl + 1 :]  # start at a whole line when one fits
    return cut.decode("utf-8", "ignore"), True


def read_forward(
    conn: sqlite3.Connection, session_id: str, from_seq: int, max_bytes: int
) -> PlainPage:
    """Whole output frames from ``from_seq`` while their plain text fits ``max_bytes``."""
    raw = bytearray()
    first = last = 0
    next_seq: int | None = None
    seq = from_seq
    budget = max(max_bytes, 1) * RAW_FACTOR
    done = False
    while not done:
        rows = conn.execute(
            "SELECT seq, data FROM frames WHERE session_id = ? AND seq >= ? AND type = 'output'"
            " ORDER BY seq LIMIT ?",
            (session_id, seq, BATCH),
        ).fetchall()
        for s, data in rows:
            if raw and len(raw) + len(data) > budget:
                next_seq, done = s, True
                break
            raw += data
            first, last = first or s, s
        if not done:
            if len(rows) < BATCH:
                done = True
            else:
                seq = rows[-1][0] + 1
    text, names = clean(bytes(raw))
    capped, truncated = _cap_head(text, max_bytes)
    if truncated and next_seq is None:
        next_seq = last + 1 if last else None
    return PlainPage(capped, first, last, next_seq, truncated, names)


def read_tail(conn: sqlite3.Connection, session_id: str, lines: int, max_bytes: int) -> PlainPage:
    """The last ``lines`` lines (fewer if they would pass ``max_bytes``), read from the end."""
    chunks: list[bytes] = []
    breaks = 0
    held = 0
    first = last = 0
    upper = None
    budget = max(max_bytes, 1) * RAW_FACTOR
    while breaks <= lines and held < budget:
        sql = "SELECT seq, data FROM frames WHERE session_id = ? AND type = 'output'"
        args: list[Any] = [session_id]
        if upper is not None:
            sql += " AND seq < ?"
            args.append(upper)
        rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, BATCH)).fetchall()
        for s, data in rows:
            chunk = bytes(data)
            chunks.append(chunk)
            breaks += chunk.count(b"\n")
            held += len(chunk)
            first, last = s, last or s
            if breaks > lines or held >= budget:
                break
        if len(rows) < BATCH:
            break
        upper = rows[-1][0]
    text, names = clean(b"".join(reversed(chunks)))
    shown = text.split("\n")
    if shown and shown[-1] == "":
        shown.pop()
    short = breaks <= lines and held >= budget  # stopped by the byte budget, not the count
    text = "\n".join(shown[-lines:]) + ("\n" if shown and lines else "") if lines else ""
    capped, truncated = cap_tail(text, max_bytes)
    return PlainPage(capped, first, last, None, truncated or short, names)
