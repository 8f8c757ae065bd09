"""ktl-agent's ``MirrorFrame`` / ``MirrorSession`` JSON shapes (protojson, ``UseProtoNames``).

Writing follows ktl-agent exactly (its gateway's MirrorFrame, docs/gateway.md): snake_case names, int64
values (sequence, unix nanoseconds) as JSON strings, int32 (``exit_code``) as numbers, ``bytes``
as standard base64, zero or empty fields omitted, states as ``MIRROR_SESSION_STATE_*`` names.

Terminal output is a ``raw`` payload. ktl-agent has no payload for our other frame types
(input, resize, event, marker), so by default they carry one extension key that loose readers
(protojson with ``DiscardUnknown``, plain JSON readers) ignore::

    {"session_id": "...", "sequence": "2", "received_unix_nano": "...",
     "ktl_event": {"type": "resize", "json": "{\\"cols\\":80,\\"rows\\":24}"}}

``ktl_event.type`` is the frame type; the frame's bytes are ``json`` (a string, as in ktl's
``deploy.json``) when they are UTF-8 JSON, otherwise ``raw`` (base64), so every frame round-trips
byte for byte. Sessions carry the fields ktl-agent has no place for under ``ktl``.

``compat=True`` writes only what ktl-agent itself knows: non-output frames keep their
envelope (so sequences stay contiguous and no reader reports a gap) but carry no payload
(they read back as empty output), and sessions lose the ``ktl`` key. Use it for strict
protojson readers.

Reading (:func:`mirror_to_frame`, :func:`mirror_to_session`) is loose, like protojson's own
reader: camelCase or snake_case names, numbers or strings for integers, and ktl-agent's own
payloads (``log``, ``build``, ``deploy``, ``verify``) are turned into our frame types.

This module depends only on the data model, so the HTTP gateway can use it as it is.
"""

from __future__ import annotations

import binascii
import contextlib
import json
from collections.abc import Mapping
from typing import Any

import pybase64  # SIMD base64: a bundle's import decodes every frame

from ktl_lsp.sessions.model import Frame, FrameType, Session, State

__all__ = [
    "EXTENSION_KEY",
    "MIRROR_STATES",
    "MirrorEncoder",
    "MirrorError",
    "default_producer",
    "frame_to_mirror",
    "mirror_to_frame",
    "mirror_to_session",
    "session_to_mirror",
]

EXTENSION_KEY = "ktl_event"
SESSION_EXTENSION_KEY = "ktl"

STATE_UNSPECIFIED = "MIRROR_SESSION_STATE_UNSPECIFIED"
STATE_RUNNING = "MIRROR_SESSION_STATE_RUNNING"
STATE_DONE = "MIRROR_SESSION_STATE_DONE"
STATE_ERROR = "MIRROR_SESSION_STATE_ERROR"
MIRROR_STATES = (STATE_UNSPECIFIED, STATE_RUNNING, STATE_DONE, STATE_ERROR)

#: ktl-agent's MirrorSession.meta fields, with the key our Session.meta uses for each.
_META_FIELDS = (
    ("command", "command"),
    ("args", "args"),
    ("requester", "requester"),
    ("cluster", "cluster"),
    ("kube_context", "kubeContext"),
    ("namespace", "namespace"),
    ("release", "release"),
    ("chart", "chart"),
)
#: Our meta keys that ktl-agent has no field for: kept under the ``ktl`` extension.
_EXTRA_META = ("repo", "cwd")

#: How ktl-agent finishes a cancelled operation (DONE/130 "canceled").
CANCELLED_EXIT_CODE = 130


class MirrorError(ValueError):
    """A JSON object is not a MirrorFrame / MirrorSession we can read."""


# writing -------------------------------------------------------------------------------------


def default_producer(session: Session) -> str:
    """ktl's convention: the operation kind, with ``:<requester>`` when one is known."""
    requester = session.meta.get("requester")
    kind = session.kind or "ktl-lsp"
    return f"{kind}:{requester}" if isinstance(requester, str) and requester else kind


def _b64(data: bytes) -> str:
    return pybase64.b64encode(data).decode("ascii")


def _json_text(data: bytes) -> str | None:
    """The frame's bytes as a string when they are UTF-8 JSON (so ``json`` keeps them exact)."""
    if not data or data[:1] not in b'{["':
        return None
    try:
        text = data.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None
    return text


def event_payload(frame: Frame) -> dict[str, str]:
    """The ``ktl_event`` extension object for a non-output frame."""
    payload = {"type": str(frame.type)}
    text = _json_text(frame.data)
    if text is not None:
        payload["json"] = text
    elif frame.data:
        payload["raw"] = _b64(frame.data)
    return payload


def frame_to_mirror(frame: Frame, producer: str = "", *, compat: bool = False) -> dict[str, Any]:
    """One frame as a MirrorFrame object (zero values omitted, int64 as strings)."""
    out: dict[str, Any] = {}
    if frame.session_id:
        out["session_id"] = frame.session_id
    if producer:
        out["producer"] = producer
    if frame.seq:
        out["sequence"] = str(frame.seq)
    if frame.ts_ns:
        out["received_unix_nano"] = str(frame.ts_ns)
    if frame.type is FrameType.OUTPUT:
        if frame.data:
            out["raw"] = _b64(frame.data)
    elif not compat:
        out[EXTENSION_KEY] = event_payload(frame)
    return out


class MirrorEncoder:
    """Encodes the frames of one session as NDJSON lines, fast (the envelope is pre-encoded).

    ``encoder.line(frame)`` is byte-for-byte ``json.dumps(frame_to_mirror(...))`` with compact
    separators plus ``\\n``; tests hold the two together.
    """

    def __init__(self, session_id: str, producer: str = "", *, compat: bool = False) -> None:
        self.session_id = session_id
        self.producer = producer
        self.compat = compat
        head = "{"
        if session_id:
            head += f'"session_id":{_dumps(session_id)},'
        if producer:
            head += f'"producer":{_dumps(producer)},'
        self._head = head

    def line(self, frame: Frame) -> bytes:
        if frame.session_id != self.session_id or not frame.seq or not frame.ts_ns:
            return (
                _dumps(frame_to_mirror(frame, self.producer, compat=self.compat)).encode() + b"\n"
            )
        env = f'{self._head}"sequence":"{frame.seq}","received_unix_nano":"{frame.ts_ns}"'
        if frame.type is FrameType.OUTPUT:
            if frame.data:
                return f'{env},"raw":"{_b64(frame.data)}"}}\n'.encode()
            return f"{env}}}\n".encode()
        if self.compat:
            return f"{env}}}\n".encode()
        return f'{env},"{EXTENSION_KEY}":{_dumps(event_payload(frame))}}}\n'.encode()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _status(session: Session) -> dict[str, Any]:
    state = session.state
    exit_code = session.exit_code
    error = session.error or ""
    if state is State.RUNNING:
        name = STATE_RUNNING
    elif state is State.DONE:
        name = STATE_DONE
    elif state is State.CANCELLED:
        # ktl-agent finishes cancelled operations as DONE/130 "canceled".
        name = STATE_DONE
        exit_code = CANCELLED_EXIT_CODE if exit_code is None else exit_code
        error = error or "canceled"
    else:  # ERROR, INTERRUPTED
        name = STATE_ERROR
        exit_code = 1 if exit_code is None else exit_code
        if state is State.INTERRUPTED and not error:
            error = "interrupted"
    out: dict[str, Any] = {"state": name}
    if state is not State.RUNNING:
        if exit_code:
            out["exit_code"] = exit_code
        if error:
            out["error_message"] = error
        if session.ended_ns:
            out["completed_unix_nano"] = str(session.ended_ns)
    return out


def session_to_mirror(
    session: Session, *, last_seen_ns: int | None = None, compat: bool = False
) -> dict[str, Any]:
    """A session as a MirrorSession object.

    ``last_seen_ns`` is the time of the session's last frame when the caller knows it; it
    defaults to the end time, or the start time of a running session.
    """
    out: dict[str, Any] = {}
    if session.id:
        out["session_id"] = session.id
    if session.created_ns:
        out["created_unix_nano"] = str(session.created_ns)
    seen = last_seen_ns or session.ended_ns or session.created_ns
    if seen:
        out["last_seen_unix_nano"] = str(seen)
    if session.last_seq:
        out["last_sequence"] = str(session.last_seq)
    meta: dict[str, Any] = {}
    for proto_name, our_key in _META_FIELDS:
        value = session.meta.get(our_key)
        if our_key == "args":
            if isinstance(value, list | tuple) and value:
                meta[proto_name] = [str(v) for v in value]
        elif isinstance(value, str) and value:
            meta[proto_name] = value
    if meta:
        out["meta"] = meta
    tags = {str(k): str(v) for k, v in session.tags.items() if k and v}
    if tags:
        out["tags"] = tags
    out["status"] = _status(session)
    if not compat:
        ext: dict[str, Any] = {"kind": session.kind, "state": str(session.state)}
        if session.title:
            ext["title"] = session.title
        if session.exit_code is not None:
            ext["exit_code"] = session.exit_code
        if session.signal:
            ext["signal"] = session.signal
        if session.pinned:
            ext["pinned"] = True
        if session.parent_id:
            ext["parent_id"] = session.parent_id
        for key in _EXTRA_META:
            value = session.meta.get(key)
            if isinstance(value, str) and value:
                ext[key] = value
        out[SESSION_EXTENSION_KEY] = ext
    return out


# reading -------------------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], snake: str) -> Any:
    """A field by its proto name or its camelCase JSON name (protojson accepts both)."""
    if snake in obj:
        return obj[snake]
    head, *rest = snake.split("_")
    camel = head + "".join(p[:1].upper() + p[1:] for p in rest)
    return obj.get(camel)


def _int(value: Any, name: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise MirrorError(f"{name} must be an integer, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise MirrorError(f"{name} must be an integer, not {value!r}")


def _unb64(value: Any, name: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise MirrorError(f"{name} must be a base64 string")
    # protojson accepts standard or URL-safe base64, padded or not.
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MirrorError(f"{name} is not valid base64") from exc


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def mirror_to_frame(obj: Mapping[str, Any], session_id: str | None = None) -> Frame:
    """A Frame from a MirrorFrame object written by us or by ktl-agent.

    - ``raw`` is terminal output;
    - our ``ktl_event`` extension restores the original frame type and bytes;
    - ktl-agent's ``log`` payload becomes output (the rendered line, else the raw one, + CRLF);
    - ``build``, ``deploy`` and ``verify`` become event frames holding ``{"<kind>": payload}``;
    - a frame with no payload (an empty output frame, or a ``compat`` export of a non-output
      frame) becomes an empty output frame: no bytes, nothing to show.
    """
    if not isinstance(obj, Mapping):
        raise MirrorError("a MirrorFrame must be a JSON object")
    sid = _get(obj, "session_id") or session_id or ""
    if not isinstance(sid, str):
        raise MirrorError("session_id must be a string")
    seq = _int(_get(obj, "sequence"), "sequence")
    ts = _int(_get(obj, "received_unix_nano"), "received_unix_nano")
    ext = _get(obj, EXTENSION_KEY)
    raw = _get(obj, "raw")
    if ext is not None:
        if not isinstance(ext, Mapping):
            raise MirrorError(f"{EXTENSION_KEY} must be an object")
        try:
            ftype = FrameType(str(ext.get("type", "")))
        except ValueError as exc:
            raise MirrorError(f"unknown {EXTENSION_KEY}.type {ext.get('type')!r}") from exc
        if "json" in ext:
            text = ext["json"]
            if not isinstance(text, str):
                raise MirrorError(f"{EXTENSION_KEY}.json must be a string")
            data = text.encode("utf-8")
        else:
            data = _unb64(ext.get("raw"), f"{EXTENSION_KEY}.raw")
        return Frame(sid, seq, ts, ftype, data)
    if raw is not None:
        return Frame(sid, seq, ts, FrameType.OUTPUT, _unb64(raw, "raw"))
    log = _get(obj, "log")
    if isinstance(log, Mapping):
        line = log.get("rendered") or log.get("raw") or ""
        return Frame(sid, seq, ts, FrameType.OUTPUT, str(line).encode("utf-8") + b"\r\n")
    for kind in ("build", "deploy", "verify"):
        payload = obj.get(kind)
        if payload is not None:
            return Frame(sid, seq, ts, FrameType.EVENT, _compact({kind: payload}))
    return Frame(sid, seq, ts, FrameType.OUTPUT, b"")


_STATE_FROM_MIRROR = {
    STATE_RUNNING: State.RUNNING,
    STATE_DONE: State.DONE,
    STATE_ERROR: State.ERROR,
    "1": State.RUNNING,
    "2": State.DONE,
    "3": State.ERROR,
}


def mirror_to_session(obj: Mapping[str, Any]) -> Session:
    """A Session from a MirrorSession object (ours or ktl-agent's), loosely."""
    if not isinstance(obj, Mapping):
        raise MirrorError("a MirrorSession must be a JSON object")
    sid = _get(obj, "session_id")
    if not isinstance(sid, str) or not sid:
        raise MirrorError("a MirrorSession needs a session_id")
    ext = obj.get(SESSION_EXTENSION_KEY)
    ext = ext if isinstance(ext, Mapping) else {}
    meta: dict[str, Any] = {}
    raw_meta = _get(obj, "meta")
    if isinstance(raw_meta, Mapping):
        for proto_name, our_key in _META_FIELDS:
            value = _get(raw_meta, proto_name)
            if value:
                meta[our_key] = [str(v) for v in value] if our_key == "args" else str(value)
    for key in _EXTRA_META:
        if isinstance(ext.get(key), str):
            meta[key] = ext[key]
    raw_tags = _get(obj, "tags")
    tags = {str(k): str(v) for k, v in raw_tags.items()} if isinstance(raw_tags, Mapping) else {}
    status = _get(obj, "status")
    status = status if isinstance(status, Mapping) else {}
    state_name = str(status.get("state", STATE_RUNNING))
    state = _STATE_FROM_MIRROR.get(state_name.upper(), State.RUNNING)
    with contextlib.suppress(ValueError):
        state = State(str(ext["state"])) if "state" in ext else state
    exit_code: int | None = None
    if "exit_code" in ext:
        exit_code = _int(ext["exit_code"], "exit_code")
    elif state.final:
        exit_code = _int(_get(status, "exit_code"), "exit_code")
    completed = _int(_get(status, "completed_unix_nano"), "completed_unix_nano")
    error = _get(status, "error_message")
    return Session(
        id=sid,
        kind=str(ext.get("kind") or "remote"),
        title=str(ext.get("title") or meta.get("command") or sid),
        state=state,
        created_ns=_int(_get(obj, "created_unix_nano"), "created_unix_nano"),
        ended_ns=completed or None,
        exit_code=exit_code,
        signal=str(ext["signal"]) if ext.get("signal") else None,
        error=str(error) if error else None,
        last_seq=_int(_get(obj, "last_sequence"), "last_sequence"),
        pinned=bool(ext.get("pinned")),
        meta=meta,
        tags=tags,
        parent_id=str(ext["parent_id"]) if ext.get("parent_id") else None,
    )
