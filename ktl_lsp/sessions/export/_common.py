"""What the exporters share: the error hierarchy, chunked writing, and frame labels.

Errors::

    ExportError              a user-facing message; nothing partial is left at the target path
    ├── UnknownFormat        the format is not one of FORMATS
    ├── SessionNotFound      the store has no such session
    └── ExportWriteError     the output could not be written (permissions, missing dir, disk full)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from ktl_lsp.fullwrite import write_all
from ktl_lsp.sessions.blocks import Block, block_label
from ktl_lsp.sessions.errors import SessionError
from ktl_lsp.sessions.model import Frame, FrameType, Session, State
from ktl_lsp.sessions.redact import Redactor
from ktl_lsp.sessions.scrub import scrub_frames

if TYPE_CHECKING:
    from ktl_lsp.sessions.store import Store

#: Bytes gathered before one write to the output.
CHUNK = 256 * 1024


@dataclasses.dataclass(frozen=True)
class Span:
    """The frames an export covers: all of a session's, or one command block's."""

    from_seq: int = 1
    to_seq: int | None = None

    def frames(self, store: Store, session_id: str, batch: int = 2000) -> Iterator[Frame]:
        for frame in store.iter_frames(session_id, from_seq=max(1, self.from_seq), batch=batch):
            if self.to_seq is not None and frame.seq > self.to_seq:
                return
            yield frame


ALL = Span()


def block_view(session: Session, block: Block) -> Session:
    """The session as one of its command blocks shows it: the block's command, its start and
    end, its exit code (times in an export count from the block's start)."""
    state = session.state
    if block.exit_code is not None:
        state = State.DONE if block.exit_code == 0 else State.ERROR
    meta = {
        **session.meta,
        "command": block.command,
        "block": {"index": block.index, "cwd": block.cwd, "of": session.id},
    }
    return dataclasses.replace(
        session,
        title=block.command or f"block {block.index}",
        state=state,
        created_ns=block.started_ns,
        ended_ns=block.ended_ns,
        exit_code=block.exit_code,
        meta=meta,
    )


def scrubbed(frames: Iterable[Frame], redactor: Redactor | None) -> Iterator[Frame]:
    """``frames`` with well-known secrets replaced (output as one stream, so a secret split
    across frames is found: ``sessions/scrub.py``); as they are when ``redactor`` is None (an
    explicit reveal)."""
    if redactor is None:
        yield from frames
        return
    yield from scrub_frames(frames, redactor.rules)


#: Events that hold what a session produced besides its terminal: ``{"result": ...}`` (an
#: apply's resources and diffs, verify's findings) and ``{"planFile": ...}`` (the plan as run).
#: ``event_data`` sorts keys, and these are the only key of their event.
RECORDED_EVENTS = (b'{"planFile":', b'{"result":')


def is_recorded(frame: Frame) -> bool:
    return frame.type is FrameType.EVENT and frame.data.startswith(RECORDED_EVENTS)


def scrubbed_recorded(frame: Frame, redactor: Redactor) -> tuple[Frame, list[str]]:
    """A recorded-result event with secrets in every string replaced, and what was replaced.
    Strings are scanned decoded: a key block in a diff matches across its real newlines, not
    JSON's escapes."""
    names: list[str] = []

    def clean(obj: Any) -> Any:
        if isinstance(obj, str):
            out = redactor.scan(obj.encode())
            if not out.names:
                return obj
            names.extend(out.names)
            return out.data.decode("utf-8", errors="replace")
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    cleaned = clean(json.loads(frame.data))
    if not names:
        return frame, names
    data = json.dumps(cleaned, separators=(",", ":"), sort_keys=True).encode()
    return Frame(frame.session_id, frame.seq, frame.ts_ns, frame.type, data), names


def scrubbed_session(session: Session, redactor: Redactor | None) -> tuple[Session, list[str]]:
    """``session`` with secrets in its title and meta (the command line) replaced, and the
    names of what was replaced; as it is when ``redactor`` is None."""
    if redactor is None:
        return session, []
    described = json.dumps({"title": session.title, "meta": session.meta}, sort_keys=True)
    cleaned = redactor.scan(described.encode())
    if not cleaned.names:
        return session, []
    fields = json.loads(cleaned.data)
    return dataclasses.replace(session, title=fields["title"], meta=fields["meta"]), cleaned.names


class ExportError(SessionError):
    """An export failed; ``str(err)`` is a message for the user."""


class UnknownFormat(ExportError):
    pass


class SessionNotFound(ExportError):
    pass


class ExportWriteError(ExportError):
    pass


def write_chunks(out: BinaryIO, parts: Iterable[bytes], chunk: int = CHUNK) -> None:
    """Writes ``parts`` to ``out`` in chunks of about ``chunk`` bytes (few syscalls, flat memory)."""
    buf: list[bytes] = []
    size = 0
    for part in parts:
        buf.append(part)
        size += len(part)
        if size >= chunk:
            write_all(out, b"".join(buf))
            buf.clear()
            size = 0
    if buf:
        write_all(out, b"".join(buf))


def frame_json(frame: Frame) -> dict[str, Any] | None:
    """The JSON object an event/marker/resize frame holds, or None."""
    try:
        obj = json.loads(frame.data)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def resize_size(frame: Frame) -> tuple[int, int] | None:
    obj = frame_json(frame)
    if obj is None:
        return None
    cols, rows = obj.get("cols"), obj.get("rows")
    if isinstance(cols, int) and isinstance(rows, int) and cols > 0 and rows > 0:
        return cols, rows
    return None


def _int_of(obj: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def trimmed_count(obj: dict[str, Any]) -> int | None:
    """How many frames a retention marker says were trimmed (loose about its exact shape)."""
    inner = obj.get("trimmed")
    if isinstance(inner, dict):
        obj = {**obj, **inner}
    elif isinstance(inner, int) and not isinstance(inner, bool):
        return inner
    count = _int_of(obj, "count", "frames", "n")
    if count is not None:
        return count
    lo = _int_of(obj, "from", "from_seq", "fromSeq", "from_sequence")
    hi = _int_of(obj, "to", "to_seq", "toSeq", "to_sequence")
    if lo is not None and hi is not None and hi >= lo:
        return hi - lo + 1
    return None


def frame_label(frame: Frame) -> str | None:
    """A short human label for an event or marker frame (asciicast markers, the player's list).

    None for frames that need no label (the first ``running`` state is labelled too: it is the
    start of the run).
    """
    if frame.type not in (FrameType.EVENT, FrameType.MARKER):
        return None
    obj = frame_json(frame)
    if obj is None:
        text = frame.text().strip()
        return text or None
    if frame.type is FrameType.MARKER or "trimmed" in obj:
        count = trimmed_count(obj)
        if count is not None:
            return f"… {count} frames trimmed …"
        label = obj.get("label") or obj.get("text") or obj.get("message")
        return str(label) if label else _generic(obj)
    if isinstance(obj.get("block"), dict):
        return block_label(obj["block"])
    if isinstance(obj.get("result"), dict):
        return result_summary(obj["result"])
    if isinstance(obj.get("planFile"), dict):
        return f"plan file {obj['planFile'].get('path')}"
    if "state" in obj:
        parts = [f"state: {obj['state']}"]
        if obj.get("exitCode") is not None:
            parts.append(f"exit {obj['exitCode']}")
        if obj.get("signal"):
            parts.append(f"signal {obj['signal']}")
        if obj.get("error"):
            parts.append(str(obj["error"]))
        return ", ".join(parts)
    if "signal" in obj:
        return f"signal: {obj['signal']}"
    if "cancel" in obj:
        return f"cancel: {obj['cancel']}" if obj["cancel"] else "cancel"
    if obj.get("input") == "hidden":
        return f"input hidden ({obj.get('bytes', '?')} bytes)"
    return _generic(obj)


def result_summary(result: dict[str, Any]) -> str:
    """A recorded result (``{"result": ...}`` event) in a few words: counts, not contents."""
    parts = []
    for key in ("resources", "findings"):
        items = result.get(key)
        if isinstance(items, list):
            parts.append(f"{len(items)} {key if len(items) != 1 else key[:-1]}")
    if isinstance(result.get("changed"), int):
        parts.append(f"{result['changed']} changed")
    if isinstance(result.get("passed"), bool):
        parts.append("passed" if result["passed"] else "not passed")
    return "result: " + (", ".join(parts) or ", ".join(sorted(result)))


def _generic(obj: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in obj.items())


def result_label(session: Session) -> str:
    parts = [str(session.state)]
    if session.exit_code is not None:
        parts.append(f"exit {session.exit_code}")
    if session.signal:
        parts.append(f"signal {session.signal}")
    if session.error:
        parts.append(session.error)
    return ", ".join(parts)
