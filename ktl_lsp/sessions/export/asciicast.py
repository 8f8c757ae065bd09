"""asciicast v2 export (https://docs.asciinema.org/manual/asciicast/v2/), streamed.

The header takes its size from the session's first resize frame (80x24 when there is none),
its ``timestamp`` from the session's start, and ``title``, ``command`` and ``env.TERM``; the
session's metadata and result also go under the header's ``ktl`` key, which players ignore.
Events, with times in seconds since the session started (never going backwards):

- ``o``: output, decoded as UTF-8 incrementally (a character split across frames survives;
  bytes that are not UTF-8, such as ``cat /bin/ls``, become U+FFFD: asciicast holds text only,
  so use NDJSON for an exact copy);
- ``i``: recorded input (hidden input is only a marker);
- ``r``: resizes, ``"COLSxROWS"`` (the first one is the header's size);
- ``m``: markers for state changes, signals, cancellation, hidden input, trimmed ranges
  (``… N frames trimmed …``), and the session's result at the end when no frame recorded it.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from ktl_lsp.sessions.export._common import (
    ALL,
    Span,
    frame_label,
    resize_size,
    result_label,
    scrubbed,
)
from ktl_lsp.sessions.model import Frame, FrameType, Session, command_line
from ktl_lsp.sessions.redact import Redactor
from ktl_lsp.sessions.store import Store

__all__ = ["DEFAULT_SIZE", "asciicast_lines", "first_size", "first_size_in", "iter_asciicast"]

DEFAULT_SIZE = (80, 24)
#: Frames looked at for the first resize before the default size is used.
SIZE_SCAN_FRAMES = 1000
TERM = "xterm-256color"


def first_size(
    store: Store, session_id: str, span: Span = ALL
) -> tuple[tuple[int, int], int | None]:
    """The terminal size from the first resize frame, and that frame's seq (a bounded peek);
    for a span that starts later, the size in effect where it starts."""
    if span.from_seq > 1:
        before = store.last_frame(session_id, FrameType.RESIZE, span.from_seq)
        size = resize_size(before) if before is not None else None
        if size is not None and before is not None:
            return size, before.seq
    return first_size_in(span.frames(store, session_id, batch=64))


def first_size_in(frames: Iterable[Frame]) -> tuple[tuple[int, int], int | None]:
    """:func:`first_size` of frames in sequence order."""
    for frame in frames:
        if frame.type is FrameType.RESIZE:
            size = resize_size(frame)
            if size is not None:
                return size, frame.seq
        if frame.seq >= SIZE_SCAN_FRAMES:
            break
    return DEFAULT_SIZE, None


def header(session: Session, size: tuple[int, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": 2,
        "width": size[0],
        "height": size[1],
        "timestamp": session.created_ns // 1_000_000_000,
    }
    if session.ended_ns is not None:
        out["duration"] = round(max(0, session.ended_ns - session.created_ns) / 1e9, 6)
    command = command_line(session.meta)
    if command:
        out["command"] = command
    out["title"] = session.title or command or session.id
    out["env"] = {"TERM": TERM}
    ktl: dict[str, Any] = {
        "session_id": session.id,
        "kind": session.kind,
        "state": str(session.state),
    }
    for key in ("exit_code", "signal", "error"):
        value = getattr(session, key)
        if value is not None:
            ktl[key] = value
    if session.meta:
        ktl["meta"] = session.meta
    if session.tags:
        ktl["tags"] = session.tags
    out["ktl"] = ktl
    return out


def _line(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")).encode() + b"\n"


def _event(t: float, code: str, text: str) -> bytes:
    """Same bytes as ``_line([t, code, text])``, without the general encoder (the hot path)."""
    # orjson escapes a string exactly as json does with ensure_ascii=False (text decoded
    # from UTF-8 holds no lone surrogates), twice as fast.
    return f'[{t!r}, "{code}", '.encode() + orjson.dumps(text) + b"]\n"


def iter_asciicast(
    store: Store, session: Session, redactor: Redactor | None = None, span: Span = ALL
) -> Iterator[bytes]:
    """The session (its ``span`` of frames) as asciicast v2 lines, streamed from the store."""
    size, size_seq = first_size(store, session.id, span)
    frames = scrubbed(span.frames(store, session.id), redactor)
    return asciicast_lines(session, frames, size, size_seq)


def asciicast_lines(
    session: Session, frames: Iterable[Frame], size: tuple[int, int], size_seq: int | None
) -> Iterator[bytes]:
    """``frames`` (already redacted as wanted) as asciicast lines; ``size`` and ``size_seq``
    are :func:`first_size`'s."""
    yield _line(header(session, size))
    start = session.created_ns
    out_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    in_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    last_t = 0.0
    saw_end = False
    for frame in frames:
        t = max(last_t, round(max(0, frame.ts_ns - start) / 1e9, 6))
        last_t = t
        if frame.type is FrameType.OUTPUT:
            text = out_decoder.decode(frame.data)
            if text:
                yield _event(t, "o", text)
        elif frame.type is FrameType.INPUT:
            text = in_decoder.decode(frame.data)
            if text:
                yield _line([t, "i", text])
        elif frame.type is FrameType.RESIZE:
            if frame.seq == size_seq:
                continue
            resized = resize_size(frame)
            if resized is not None:
                yield _line([t, "r", f"{resized[0]}x{resized[1]}"])
        else:
            label = frame_label(frame)
            if label and label.startswith("state: ") and not label.startswith("state: running"):
                saw_end = True
            if label:
                yield _line([t, "m", label])
    tail = out_decoder.decode(b"", final=True)
    if tail:
        yield _line([last_t, "o", tail])
    if session.state.final and not saw_end:
        end = last_t
        if session.ended_ns is not None:
            end = max(last_t, round(max(0, session.ended_ns - start) / 1e9, 6))
        yield _line([end, "m", result_label(session)])
