"""ktl-agent's list filters and SSE parameters, parsed as leniently as it does, and the one
check of numeric parameters every route uses: a number a route cannot take is a 400 naming the
parameter (ktl-agent ignores them; Python's ``int()`` takes Unicode digits and any size)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from ktl_lsp.errors import UserError
from ktl_lsp.sessions.mirror import session_to_mirror
from ktl_lsp.sessions.model import Session

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
_EXACT_META = {
    "requester": "requester",
    "cluster": "cluster",
    "kube_context": "kubeContext",
    "namespace": "namespace",
    "release": "release",
    "chart": "chart",
}
_FALSEY = {"0", "false", "no", "off"}


#: Past any sequence, count or nanosecond time, with room for ``+ 1`` in SQLite's int64.
MAX_WHOLE = 2**62
MAX_REAL = 1e15
_WHOLE = re.compile(r"[+-]?[0-9]{1,19}")
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


class BadParameter(UserError):
    """A numeric parameter the route cannot take; the message starts with its name."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def parse_whole(name: str, text: str, lo: int = 0, hi: int = MAX_WHOLE) -> int:
    """ASCII digits from ``lo`` to ``hi``; anything else is a ``BadParameter`` naming ``name``."""
    text = text.strip(" \t")
    if not _WHOLE.fullmatch(text):
        raise BadParameter(f"{name}: expected a whole number, got {_shown(text)}")
    value = int(text)
    if not lo <= value <= hi:
        raise BadParameter(f"{name}: must be from {lo} to {hi}, got {_shown(text)}")
    return value


def parse_real(name: str, text: str, lo: float = 0.0, hi: float = MAX_REAL) -> float:
    """A finite decimal number (ASCII, an exponent allowed) from ``lo`` to ``hi``."""
    text = text.strip(" \t")
    if len(text) > 40 or not _REAL.fullmatch(text):
        raise BadParameter(f"{name}: expected a number, got {_shown(text)}")
    value = float(text)
    if not lo <= value <= hi:
        raise BadParameter(f"{name}: must be from {lo:g} to {hi:g}, got {_shown(text)}")
    return value


def whole(query: Mapping[str, str], name: str, default: int, lo: int = 0) -> int:
    """The query's ``name`` as a whole number (``parse_whole``); ``default`` when absent or
    empty. Routes clamp what they take on top of this (a limit of 10**9 means their most)."""
    text = query.get(name)
    return default if text is None or not text.strip() else parse_whole(name, text, lo)


def real(query: Mapping[str, str], name: str, default: float, lo: float = 0.0) -> float:
    """The query's ``name`` as a number (``parse_real``); ``default`` when absent or empty."""
    text = query.get(name)
    return default if text is None or not text.strip() else parse_real(name, text, lo)


@dataclass
class ListQuery:
    limit: int = DEFAULT_LIMIT
    command: str = ""
    exact: dict[str, str] = field(default_factory=dict)
    state: str = ""
    since_ns: int | None = None
    until_ns: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def filtered(self) -> bool:
        return bool(self.command or self.exact or self.state or self.tags) or (
            self.since_ns is not None or self.until_ns is not None
        )

    @classmethod
    def parse(cls, q: Mapping[str, str], items: list[tuple[str, str]]) -> ListQuery:
        out = cls()
        limit = whole(q, "limit", 0)
        out.limit = min(limit, MAX_LIMIT) if limit > 0 else DEFAULT_LIMIT
        out.command = q.get("command", "").strip().lower()
        for key in _EXACT_META:
            value = q.get(key, "").strip()
            if value:
                out.exact[key] = value.lower()
        state = q.get("state", "").strip().lower()
        out.state = state if state in ("running", "done", "error") else ""
        for names, attr in (
            (("since_last_seen_unix_nano", "since_unix_nano", "since"), "since_ns"),
            (("until_last_seen_unix_nano", "until_unix_nano", "until"), "until_ns"),
        ):
            for name in names:
                if q.get(name, "").strip():
                    setattr(out, attr, whole(q, name, 0))
                    break
        for key, value in items:
            if key == "tag":
                k, sep, v = value.partition("=")
                if sep and k.strip():
                    out.tags[k.strip()] = v.strip()
            elif key.startswith("tag.") and len(key) > 4:
                out.tags[key[4:].strip()] = value.strip()
        return out

    def matches(self, mirror: dict[str, object]) -> bool:
        meta = mirror.get("meta") or {}
        assert isinstance(meta, dict)
        if self.command and self.command not in str(meta.get("command", "")).lower():
            return False
        for key, value in self.exact.items():
            if str(meta.get(key, "")).lower() != value:
                return False
        status = mirror.get("status") or {}
        assert isinstance(status, dict)
        if self.state and str(status.get("state", "")).rsplit("_", 1)[-1].lower() != self.state:
            return False
        seen = int(str(mirror.get("last_seen_unix_nano", "0")))
        if self.since_ns is not None and seen < self.since_ns:
            return False
        if self.until_ns is not None and seen > self.until_ns:
            return False
        tags = mirror.get("tags") or {}
        assert isinstance(tags, dict)
        return all(not (k not in tags or (v and tags[k] != v)) for k, v in self.tags.items())


def last_seen(session: Session) -> int:
    return session.ended_ns or session.created_ns


def mirror(session: Session) -> dict[str, object]:
    return session_to_mirror(session, last_seen_ns=last_seen(session))


@dataclass
class TailQuery:
    retry_ms: int = 1000
    heartbeat_ms: int = 15000
    from_seq: int = 1
    replay: bool = True

    @classmethod
    def parse(cls, request: web.Request) -> TailQuery:
        q = request.query
        out = cls()
        retry = whole(q, "retry_ms", whole(q, "retry", -1))
        if retry >= 0:
            out.retry_ms = max(250, min(60000, retry))
        hb = whole(q, "heartbeat_ms", -1)
        if hb < 0 and q.get("heartbeat", "").strip():
            hb = _go_duration_ms("heartbeat", q["heartbeat"])
        if hb >= 0:
            out.heartbeat_ms = 0 if hb == 0 else max(1000, min(300_000, hb))
        out.from_seq = max(1, whole(q, "from_sequence", 1))
        replay = q.get("replay")
        if replay is not None and replay.strip().lower() in _FALSEY:
            out.replay = False
        last = whole(request.headers, "Last-Event-ID", whole(q, "last_event_id", 0))
        if last > 0:
            out.from_seq = last + 1
            out.replay = True
        return out


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1000, "m": 60000, "h": 3600000}


def _go_duration_ms(name: str, text: str) -> int:
    """Go's ``time.ParseDuration`` subset ktl-agent clients send (``15s``, ``1m30s``), or
    plain milliseconds."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return parse_whole(name, text)
    parts = _DURATION.findall(text) if len(text) <= 40 else []
    if not parts or "".join(n + u for n, u in parts) != text:
        raise BadParameter(f"{name}: expected a duration such as 15s or 1500ms, got {_shown(text)}")
    return int(min(sum(float(n) * _UNIT_MS[u] for n, u in parts), MAX_WHOLE))
