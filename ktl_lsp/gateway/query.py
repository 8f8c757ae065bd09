"""ktl-agent's list filters and SSE parameters, parsed the same lenient way it does."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

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


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


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
        limit = _int(q.get("limit"))
        out.limit = min(limit, MAX_LIMIT) if limit and limit > 0 else DEFAULT_LIMIT
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
                bound = _int(q.get(name))
                if bound is not None:
                    setattr(out, attr, bound)
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
        retry = _int(q.get("retry_ms")) or _int(q.get("retry"))
        if retry is not None:
            out.retry_ms = max(250, min(60000, retry))
        hb = _int(q.get("heartbeat_ms"))
        if hb is None and q.get("heartbeat"):
            hb = _go_duration_ms(q["heartbeat"])
        if hb is not None and hb >= 0:
            out.heartbeat_ms = 0 if hb == 0 else max(1000, min(300_000, hb))
        start = _int(q.get("from_sequence"))
        out.from_seq = start if start and start > 0 else 1
        replay = q.get("replay")
        if replay is not None and replay.strip().lower() in _FALSEY:
            out.replay = False
        last = _int(request.headers.get("Last-Event-ID"))
        if last is None:
            last = _int(q.get("last_event_id"))
        if last is not None and last > 0:
            out.from_seq = last + 1
            out.replay = True
        return out


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1000, "m": 60000, "h": 3600000}


def _go_duration_ms(text: str) -> int | None:
    text = text.strip()
    if text.isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return int(sum(float(n) * _UNIT_MS[u] for n, u in parts))
