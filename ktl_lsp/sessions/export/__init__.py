"""Session export: NDJSON (ktl-agent's MirrorFrame lines), asciicast v2, self-contained HTML.

Every exporter streams: it is a generator over ``Store.iter_frames`` and the output is written
in chunks, so a session of millions of frames exports in flat memory. Errors are
:class:`ExportError` subclasses whose message is meant for the user::

    ExportError
    ├── UnknownFormat      fmt is not one of FORMATS
    ├── SessionNotFound    no such session in the store
    └── ExportWriteError   the target cannot be written (nothing partial is left behind)

Exported files are owner-only (0600), like the store they come from, and so is the default
``exports/`` folder beside the store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from ktl_lsp.sessions import private
from ktl_lsp.sessions.blocks import Block
from ktl_lsp.sessions.export._common import (
    ALL,
    ExportError,
    ExportWriteError,
    SessionNotFound,
    Span,
    UnknownFormat,
    block_view,
    scrubbed_session,
    write_chunks,
)
from ktl_lsp.sessions.export.asciicast import iter_asciicast
from ktl_lsp.sessions.export.html import iter_html
from ktl_lsp.sessions.export.ndjson import iter_ndjson, read_ndjson
from ktl_lsp.sessions.model import Session
from ktl_lsp.sessions.redact import Redaction
from ktl_lsp.sessions.store import Store

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "ExportError",
    "ExportFormat",
    "ExportWriteError",
    "SessionNotFound",
    "UnknownFormat",
    "default_filename",
    "export_session",
    "export_to_path",
    "exports_dir",
    "iter_export",
    "read_ndjson",
]

log = logging.getLogger(__name__)

ExportFormat = Literal["ndjson", "asciicast", "html"]
FORMATS: tuple[str, ...] = ("ndjson", "asciicast", "html")
#: File name extension per format.
EXTENSIONS = {"ndjson": ".ndjson", "asciicast": ".cast", "html": ".html"}
#: Other names accepted for a format.
_ALIASES = {"jsonl": "ndjson", "cast": "asciicast", "asciinema": "asciicast", "htm": "html"}


def _format(fmt: str) -> str:
    name = str(fmt).strip().lower()
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise UnknownFormat(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    return name


def _session(store: Store, session_id: str) -> Session:
    session = store.get_session(session_id)
    if session is None:
        raise SessionNotFound(f"no session {session_id!r} in the session store {store.path}")
    return session


def iter_export(
    store: Store,
    session_id: str,
    fmt: str,
    *,
    compat: bool = False,
    redaction: Redaction | None = None,
    block: Block | None = None,
) -> Iterator[bytes]:
    """The export as byte pieces (for an HTTP response body, say). Checks fmt and id first.
    With ``redaction``, secrets in output and input frames are replaced; with ``block``, only
    that command block's frames, as a recording of its own."""
    name = _format(fmt)
    session = _session(store, session_id)
    span = ALL
    if block is not None:
        session, span = block_view(session, block), Span(block.from_seq, block.to_seq)
    redactor = redaction.redactor() if redaction is not None else None
    session, _ = scrubbed_session(session, redactor)
    if name == "ndjson":
        return iter_ndjson(store, session, compat=compat, redactor=redactor, span=span)
    if name == "asciicast":
        return iter_asciicast(store, session, redactor, span)
    return iter_html(store, session, redactor, span)


def export_session(
    store: Store,
    session_id: str,
    fmt: str,
    out: BinaryIO,
    *,
    compat: bool = False,
    redaction: Redaction | None = None,
    block: Block | None = None,
) -> None:
    """Writes the session (or one of its command blocks) to ``out`` in ``fmt`` ("ndjson",
    "asciicast" or "html").

    ``compat=True`` (NDJSON only) writes only what ktl-agent knows: see
    :mod:`ktl_lsp.sessions.mirror`. Write failures raise :class:`ExportWriteError`.
    """
    pieces = iter_export(store, session_id, fmt, compat=compat, redaction=redaction, block=block)
    try:
        write_chunks(out, pieces)
        out.flush()
    except OSError as exc:
        raise ExportWriteError(f"cannot write the export: {exc.strerror or exc}") from exc


def default_filename(session_id: str, fmt: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id).lstrip(".")
    return (safe or "session") + EXTENSIONS[_format(fmt)]


def _default_dir(store: Store) -> Path:
    return (store.path.parent / "exports").absolute()


def exports_dir(store: Store) -> Path:
    """The default folder for exports, ``exports/`` beside the store, created owner-only."""
    path = _default_dir(store)
    private.make_dirs(path)
    return path


def export_to_path(
    store: Store,
    session_id: str,
    fmt: str,
    path: str | os.PathLike[str],
    *,
    compat: bool = False,
    redaction: Redaction | None = None,
    block: Block | None = None,
) -> Path:
    """Exports to a file, atomically (a temp file beside it, then rename); returns the path.

    An existing directory gets ``<session id>.<ext>`` (``<id>_block<N>.<ext>``) inside it. Nothing is created when the
    format or the session is unknown, and nothing partial is left when writing fails.
    """
    name = _format(fmt)
    _session(store, session_id)
    target = Path(path).expanduser()
    if target.is_dir():
        ref = session_id if block is None else f"{session_id}#block{block.index}"
        target = target / default_filename(ref, name)
    target = target.absolute()
    parent = target.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ExportWriteError(f"cannot write {target}: the folder {parent} {what}")
    if parent == _default_dir(store):
        problem = private.tighten([parent])  # made by an older version or a plain mkdir
        if problem:
            log.warning("%s", problem)
    try:
        # mkstemp creates the file 0600 whatever the umask: the export stays owner-only.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise ExportWriteError(
            f"cannot write {target}: {exc.strerror or exc} (choose a folder you can write to)"
        ) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            export_session(
                store, session_id, name, out, compat=compat, redaction=redaction, block=block
            )
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except ExportWriteError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ExportWriteError(f"cannot write {target}: {str(exc).split(': ', 1)[-1]}") from exc
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ExportWriteError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target
