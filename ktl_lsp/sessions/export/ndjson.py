"""NDJSON export: one ktl-agent MirrorFrame per line, in sequence order (ktl-agent's export shape).

The lines are exactly what ``GET /api/v1/mirror/sessions/{id}/export`` of ktl-agent sends, with
our non-output frames under the ``ktl_event`` extension (or, with ``compat=True``, as bare
envelopes); see :mod:`ktl_lsp.sessions.mirror`. :func:`read_ndjson` reads both ours and
ktl-agent's, so a session survives store -> NDJSON -> frames byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from ktl_lsp.sessions.export._common import ALL, Span, scrubbed
from ktl_lsp.sessions.mirror import MirrorEncoder, MirrorError, default_producer, mirror_to_frame
from ktl_lsp.sessions.model import Frame, Session
from ktl_lsp.sessions.redact import Redactor
from ktl_lsp.sessions.store import Store

__all__ = ["iter_ndjson", "read_ndjson"]


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
    encoder = MirrorEncoder(
        session.id, default_producer(session) if producer is None else producer, compat=compat
    )
    line = encoder.line
    span = Span(max(from_seq, span.from_seq), span.to_seq)
    for frame in scrubbed(span.frames(store, session.id), redactor):
        yield line(frame)


def read_ndjson(stream: Iterable[bytes | str]) -> Iterator[Frame]:
    """Frames from NDJSON lines (ours or ktl-agent's). Blank lines are skipped.

    Raises :class:`~ktl_lsp.sessions.mirror.MirrorError` naming the line that cannot be read.
    """
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise MirrorError(f"line {number}: not JSON ({exc})") from exc
        try:
            yield mirror_to_frame(obj)
        except MirrorError as exc:
            raise MirrorError(f"line {number}: {exc}") from exc
