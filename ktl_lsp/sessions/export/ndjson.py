"""NDJSON export: one ktl-agent MirrorFrame per line, in sequence order (ktl-agent's export shape).

The lines are exactly what ``GET /api/v1/mirror/sessions/{id}/export`` of ktl-agent sends, with
our non-output frames under the ``ktl_event`` extension (or, with ``compat=True``, as bare
envelopes); see :mod:`ktl_lsp.sessions.mirror`. :func:`read_ndjson` reads both ours and
ktl-agent's, so a session survives store -> NDJSON -> frames byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pybase64

from ktl_lsp.sessions.export._common import ALL, Span, scrubbed
from ktl_lsp.sessions.mirror import MirrorEncoder, MirrorError, default_producer, mirror_to_frame
from ktl_lsp.sessions.model import Frame, FrameType, Session
from ktl_lsp.sessions.redact import Redactor
from ktl_lsp.sessions.store import Store

__all__ = ["iter_ndjson", "ndjson_lines", "read_ndjson"]


def iter_ndjson(
    store: Store,
    session: Session,
    *,
    from_seq: int = 1,
    producer: str | None = None,
    compat: bool = False,
    redactor: Redactor | None = None,
    span: Span = ALL,
) -> Iterator[bytes]:
    """The session's frames (from ``from_seq``, within ``span``) as NDJSON lines (each ends
    with ``\\n``), streamed from the store."""
    span = Span(max(from_seq, span.from_seq), span.to_seq)
    frames = span.frames(store, session.id)
    return ndjson_lines(session, scrubbed(frames, redactor), producer=producer, compat=compat)


def ndjson_lines(
    session: Session, frames: Iterable[Frame], *, producer: str | None = None, compat: bool = False
) -> Iterator[bytes]:
    """``frames`` (of ``session``, already redacted as wanted) as NDJSON lines."""
    encoder = MirrorEncoder(
        session.id, default_producer(session) if producer is None else producer, compat=compat
    )
    return map(encoder.line, frames)


def read_ndjson(stream: Iterable[bytes | str]) -> Iterator[Frame]:
    """Frames from NDJSON lines (ours or ktl-agent's). Blank lines are skipped.

    Raises :class:`~ktl_lsp.sessions.mirror.MirrorError` naming the line that cannot be read.
    """
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except ValueError:  # orjson is stricter (NaN, huge integers, lone surrogates)
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise MirrorError(f"line {number}: not JSON ({exc})") from exc
        frame = _output_line(obj)
        if frame is not None:
            yield frame
            continue
        try:
            yield mirror_to_frame(obj)
        except MirrorError as exc:
            raise MirrorError(f"line {number}: {exc}") from exc


def _output_line(obj: Any) -> Frame | None:
    """The frame of an output line as our encoder writes it (snake_case names, integers as
    strings, padded standard base64), fast; None for any other line (``mirror_to_frame``
    reads those, and gives the same frame for these)."""
    if type(obj) is not dict or "ktl_event" in obj or "ktlEvent" in obj:
        return None
    sid, seq, ts, raw = (
        obj.get(k) for k in ("session_id", "sequence", "received_unix_nano", "raw")
    )
    if not (type(sid) is str and sid and type(seq) is str and type(ts) is str and type(raw) is str):
        return None
    try:
        return Frame(
            sid, int(seq), int(ts), FrameType.OUTPUT, pybase64.b64decode(raw, validate=True)
        )
    except ValueError:  # binascii.Error too: URL-safe or unpadded base64, a bad number
        return None
