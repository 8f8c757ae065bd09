"""Where to start replaying so the screen at any point is right, and search in the output.

A large session is opened and seeked without replaying it from the start (the gateway's
``/index``, ``/seek`` and ``/search`` routes serve these through the session manager).

How ``S`` is found (a backwards scan of raw output bytes from ``N``, no terminal emulation):

- a full reset (``ESC c``), a full clear (``ESC[2J``) or a switch to the alternate screen
  (``ESC[?1049h``, ``ESC[?1047h``, ``ESC[?47h``) wipes the screen: everything visible at ``N``
  was written after it (``reason`` "reset", "clear", "alt");
- otherwise, ``2 * rows + SCROLLBACK_LINES`` newlines with no cursor-addressing sequence between
  them and ``N`` (CUP/HVP, cursor up, VPA, scroll region, insert/delete/scroll lines, reverse
  index, save/restore cursor): the cursor only moved down, so at most ``rows`` newlines reach
  the bottom and ``rows`` more scroll every older line off the screen (``reason`` "lines");
- an alternate-screen segment that ended before ``N`` (``...1049h ... 1049l``) is skipped as a
  whole: the main screen it restores is what was there before it;
- the scan reaches the first frame (``reason`` "start"), or gives up after ``budget`` output
  bytes (default 1 MiB, at most 8 MiB) and answers the frame it reached (``reason`` "budget",
  ``exact`` false): the screen may then miss cells drawn before ``S`` that were never
  overwritten.

Approximations (documented, accepted): the cursor position, SGR attributes, charsets, modes and
scroll region in effect at ``S`` are those of a reset terminal, not the recorded ones; an escape
sequence split across two frames is not recognised; ``ESC[2J`` without a cursor move leaves the
cursor where a reset terminal has it. Each of these shows at most until the program draws again.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import re
import sqlite3
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ktl_lsp.sessions.blocks import block_label
from ktl_lsp.sessions.model import Frame, FrameType, Session
from ktl_lsp.sessions.redact import Redaction
from ktl_lsp.sessions.scrub import scrub_frames
from ktl_lsp.sessions.store import Store

IDLE_MS = 2000.0
DEFAULT_SIZE = (80, 24)
SCROLLBACK_LINES = 100
DEFAULT_BUDGET = 1 << 20
MAX_BUDGET = 8 << 20
MAX_RESIZES = 2000
MAX_MARKERS = 500
SCAN_BATCH = 256

# What matters when scanning backwards, one alternative per kind (see the module docstring).
_RESET = rb"\x1bc"
_ALT = rb"\x1b\[\?(?:1049|1047|47)[hl]"
_CLEAR = rb"\x1b\[2J"
_ADDRESS = rb"\x1b\[[0-9;]*[HfAFdrLMST]|\x1b[M78]|\x1b\[[su]"
TOKENS = re.compile(b"|".join([_RESET, _ALT, _CLEAR, _ADDRESS, rb"\n"]))


def _label(data: bytes) -> str:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(obj, dict):
        return ""
    trimmed = obj.get("trimmed")
    if isinstance(trimmed, dict):
        return f"{trimmed.get('frames', '?')} frames not kept"
    block = obj.get("block")
    if isinstance(block, dict):
        return block_label(block)
    for key in ("label", "state", "signal", "event", "name", "type"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _size(data: bytes) -> tuple[int, int] | None:
    try:
        obj = json.loads(data)
        cols, rows = int(obj["cols"]), int(obj["rows"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if 0 < cols <= 2000 and 0 < rows <= 1000:
        return cols, rows
    return None


@dataclass
class Timeline:
    """Per-frame play times and byte offsets of one session, extended as it grows."""

    session_id: str
    created_ns: int
    idle_ms: float
    seqs: array[int] = field(default_factory=lambda: array("q"))
    play: array[float] = field(default_factory=lambda: array("d"))
    bytes_to: array[int] = field(default_factory=lambda: array("q"))
    resizes: list[tuple[int, int, int]] = field(default_factory=list)
    markers: list[tuple[int, float, str]] = field(default_factory=list)
    last_ts: int = 0
    total: int = 0

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    @property
    def duration(self) -> float:
        return self.play[-1] if self.play else 0.0

    @property
    def nbytes(self) -> int:
        """About what it holds: 24 bytes a frame, and the bounded resizes and markers."""
        return 24 * len(self.seqs) + 96 * (len(self.resizes) + len(self.markers))

    def extend(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute(
            "SELECT seq, ts_ns, type, length(data), CASE WHEN type = 'output' THEN NULL "
            "ELSE data END FROM frames WHERE session_id = ? AND seq > ? ORDER BY seq",
            (self.session_id, self.last_seq),
        )
        idle_ns = self.idle_ms * 1e6
        for seq, ts, ftype, length, data in rows:
            if not self.seqs:
                pt = min(max(0.0, (ts - self.created_ns) / 1e6), self.idle_ms)
            else:
                pt = self.play[-1] + min(max(0, ts - self.last_ts), idle_ns) / 1e6
            self.last_ts = ts
            if ftype == "output":
                self.total += length
            elif ftype == "resize" and data is not None:
                size = _size(bytes(data))
                if size is not None and len(self.resizes) < MAX_RESIZES:
                    self.resizes.append((seq, *size))
            elif ftype in ("event", "marker") and data is not None:
                label = _label(bytes(data))
                if label and len(self.markers) < MAX_MARKERS:
                    self.markers.append((seq, round(pt, 1), label))
            self.seqs.append(seq)
            self.play.append(pt)
            self.bytes_to.append(self.total)

    def size_at(self, seq: int) -> tuple[int, int]:
        best: tuple[int, int] | None = None
        for rseq, cols, rows in self.resizes:
            if rseq > seq:
                break
            best = (cols, rows)
        if best is None:
            best = (self.resizes[0][1], self.resizes[0][2]) if self.resizes else DEFAULT_SIZE
        return best

    def at_time(self, t_ms: float) -> int:
        """Index of the last frame whose play time is <= t_ms (-1: before the first)."""
        return bisect.bisect_right(self.play, t_ms + 0.001) - 1  # answers round to 1 µs

    def index_of(self, seq: int) -> int:
        """Index of the last frame with a sequence <= seq (-1: none)."""
        return bisect.bisect_right(self.seqs, seq) - 1

    def summary(self, points: int) -> dict[str, Any]:
        n = len(self.seqs)
        step = max(1, -(-n // max(1, points)))
        picks = list(range(0, n, step))
        if n and picks[-1] != n - 1:
            picks.append(n - 1)
        first = self.resizes[0][1:] if self.resizes else DEFAULT_SIZE
        return {
            "frames": n,
            "last_seq": self.last_seq,
            "duration_ms": round(self.duration, 1),
            "bytes": self.total,
            "idle_ms": self.idle_ms,
            "size": list(first),
            "points": [[self.seqs[i], round(self.play[i], 1), self.bytes_to[i]] for i in picks],
            "resizes": [list(r) for r in self.resizes],
            "markers": [list(m) for m in self.markers],
        }


@dataclass
class SeekResult:
    seq: int  #: N: the frame the screen is wanted at (0: before the first frame)
    start: int  #: S
    reason: str
    exact: bool
    scanned: int  #: output bytes looked at

    def to_json(self, timeline: Timeline) -> dict[str, Any]:
        i = timeline.index_of(self.start)
        if i < 0 or timeline.seqs[i] != self.start:
            i += 1
        start_play = timeline.play[i] if 0 <= i < len(timeline.play) else 0.0
        n = timeline.index_of(self.seq)
        cols, rows = timeline.size_at(self.start)
        return {
            "seq": self.seq,
            "start": self.start,
            "start_play_ms": round(start_play, 3),
            "play_ms": round(timeline.play[n], 3) if n >= 0 else 0.0,
            "cols": cols,
            "rows": rows,
            "reason": self.reason,
            "exact": self.exact,
            "scanned_bytes": self.scanned,
            "last_seq": timeline.last_seq,
        }


def find_start(
    conn: sqlite3.Connection, session_id: str, seq: int, rows: int, budget: int
) -> SeekResult:
    """The backwards scan described in the module docstring."""
    need = 2 * rows + SCROLLBACK_LINES
    newlines = 0
    addressed = False
    in_alt_segment = False  # between an alternate-screen exit (seen first) and its entry
    scanned = 0
    upper = seq
    earliest = seq
    while True:
        batch = conn.execute(
            "SELECT seq, type, data FROM frames WHERE session_id = ? AND seq <= ? "
            "ORDER BY seq DESC LIMIT ?",
            (session_id, upper, SCAN_BATCH),
        ).fetchall()
        if not batch:
            return SeekResult(seq, earliest if earliest < seq else 1, "start", True, scanned)
        for fseq, ftype, data in batch:
            earliest = fseq
            if ftype != "output":
                continue
            raw = bytes(data)
            scanned += len(raw)
            for tok in reversed(TOKENS.findall(raw)):
                if tok == b"\n":
                    if not addressed and not in_alt_segment:
                        newlines += 1
                        if newlines >= need:
                            return SeekResult(seq, fseq, "lines", True, scanned)
                    continue
                if tok.startswith(b"\x1b[?"):
                    if tok.endswith(b"l"):
                        in_alt_segment = True
                    elif in_alt_segment:
                        in_alt_segment = False
                    else:
                        return SeekResult(seq, fseq, "alt", True, scanned)
                    continue
                if in_alt_segment:
                    continue
                if tok == b"\x1bc":
                    return SeekResult(seq, fseq, "reset", True, scanned)
                if tok == b"\x1b[2J":
                    return SeekResult(seq, fseq, "clear", True, scanned)
                addressed = True
            if scanned >= budget:
                return SeekResult(seq, fseq, "budget", False, scanned)
        if len(batch) < SCAN_BATCH:
            return SeekResult(seq, earliest, "start", True, scanned)
        upper = earliest - 1


class Timelines:
    """A small cache of timelines, extended when their session has grown; at most ``size``
    of them and ``max_bytes`` together (a timeline grows with its session's frame count),
    but always the one asked for last."""

    def __init__(self, size: int = 8, max_bytes: int = 64 << 20) -> None:
        self._items: OrderedDict[tuple[str, float], Timeline] = OrderedDict()
        self._size = size
        self.max_bytes = max_bytes
        self._lock = asyncio.Lock()

    @property
    def held_bytes(self) -> int:
        return sum(tl.nbytes for tl in self._items.values())

    async def get(self, store: Store, session: Session, idle_ms: float) -> Timeline:
        key = (session.id, idle_ms)
        async with self._lock:
            tl = self._items.get(key)
            if tl is None or tl.created_ns != session.created_ns or tl.last_seq > session.last_seq:
                tl = Timeline(session.id, session.created_ns, idle_ms)
            self._items[key] = tl
            self._items.move_to_end(key)
            if tl.last_seq < session.last_seq:
                await store.flush()
                await asyncio.to_thread(lambda: tl.extend(store.reader()))
            held = self.held_bytes
            while len(self._items) > 1 and (len(self._items) > self._size or held > self.max_bytes):
                _, old = self._items.popitem(last=False)
                held -= old.nbytes
            return tl


# CSI, OSC (BEL or ST), DCS/PM/APC, other two-byte escapes, C0 controls but \n and \t (player.js).
_ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[P^_][^\x1b]*\x1b\\"
    rb"|\x1b[@-Z\\-_c78=>]|[\x00-\x08\x0b-\x1f\x7f]"
)


def find_text(
    conn: sqlite3.Connection,
    tl: Timeline,
    query: str,
    limit: int,
    redaction: Redaction | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """With ``redaction``, the output searched is the redacted one (what is shown can be
    searched, a secret cannot be guessed by searching for it)."""
    needle = query.lower()
    keep = len(needle) - 1
    carry = ""
    out: list[dict[str, Any]] = []
    rows = conn.execute(
        "SELECT seq, data FROM frames WHERE session_id = ? AND type = 'output' ORDER BY seq",
        (tl.session_id,),
    )
    chunks: Iterable[tuple[int, bytes]] = ((s, bytes(d)) for s, d in rows)
    if redaction is not None:
        chunks = (
            (f.seq, f.data)
            for f in scrub_frames(
                (Frame(tl.session_id, s, 0, FrameType.OUTPUT, d) for s, d in chunks),
                redaction.rules,
            )
        )
    for seq, data in chunks:
        text = _ANSI.sub(b"", data).decode("utf-8", "replace").lower()
        hay = carry + text
        at = hay.find(needle)
        while at >= 0:
            if at + len(needle) > len(carry):
                if len(out) >= limit:
                    return out, True
                i = tl.index_of(seq)
                out.append({"seq": seq, "play_ms": round(tl.play[i], 3) if i >= 0 else 0.0})
            at = hay.find(needle, at + 1)
        carry = hay[-keep:] if keep else ""
    return out, False
