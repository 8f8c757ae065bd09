"""What the read-only agent tools answer, as plain JSON-able data.

Nothing here knows MCP: ``server`` exposes these methods as tools and resources. Every text
that leaves goes through redaction (``sessions/plain`` for output, :func:`redact_value` for the
rest), whatever the recording's own setting was. Bad input raises ``UserError`` with a message
meant for the caller.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ktl_lsp.errors import UserError
from ktl_lsp.pty.text import strip_ansi
from ktl_lsp.sessions.errors import AmbiguousSession, UnknownSession
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import Session, SessionFilter, State
from ktl_lsp.sessions.plain import clean
from ktl_lsp.sessions.redact import redact_value as shared_redact_value

#: The largest page of text one call may ask for.
MAX_BYTES = 1 << 20
DEFAULT_MAX_BYTES = 65536
#: Sessions ``search_output`` looks through at most (newest first).
SEARCH_SESSIONS = 50
#: Output read per session while searching (its last part).
SEARCH_BYTES_PER_SESSION = 1 << 20
MAX_LOG_LINES = 5000
#: The kind of the sessions that record agents' calls; listings leave them out unless asked.
AGENT_KIND = "agent"


class BadArgument(UserError):
    """An argument out of range or of the wrong shape."""


def redact_text(text: str) -> str:
    return clean(text.encode())[0]


def redact_value(value: Any) -> Any:
    """``value`` with well-known secrets in its strings redacted and values under secret-looking
    keys (``token``, ``password``, ...) hidden."""
    return shared_redact_value(value, redact_text)


def _bounded(name: str, value: int, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise BadArgument(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def session_json(s: Session) -> dict[str, Any]:
    return redact_value(s.to_lsp())  # type: ignore[no-any-return]


@dataclass
class ListQuery:
    """``ktl.sessions.list``'s filters."""

    state: str | None = None
    kind: str | None = None
    meta: dict[str, str] | None = None
    tags: dict[str, str] | None = None
    since: str | None = None
    parent_id: str | None = None
    limit: int = 50

    def to_filter(self) -> SessionFilter:
        since_ns = None
        if self.since:
            try:
                dt = datetime.fromisoformat(self.since.replace("Z", "+00:00"))
            except ValueError as exc:
                raise BadArgument(f"since: not an ISO time: {self.since!r}") from exc
            since_ns = int(dt.timestamp() * 1e9)
        if self.state is not None and self.state not in {str(s) for s in State}:
            raise BadArgument(
                f"state must be one of {', '.join(str(s) for s in State)}, got {self.state!r}"
            )
        return SessionFilter(
            state=self.state,
            kind=self.kind,
            meta=self.meta,
            tags=self.tags,
            since_ns=since_ns,
            parent_id=self.parent_id,
            limit=_bounded("limit", self.limit, 1, 1000),
        )


class SessionTools:
    """The session tools over one manager (shared with a language server or a gateway)."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    async def find(self, session_id: str) -> Session:
        try:
            return await self.manager.find(session_id)
        except AmbiguousSession as exc:
            raise BadArgument(str(exc)) from exc
        except UnknownSession as exc:
            raise BadArgument(str(exc)) from exc

    async def list_sessions(self, q: ListQuery) -> dict[str, Any]:
        flt = q.to_filter()
        if flt.kind is None:
            flt.not_kind = AGENT_KIND
        return {"sessions": [session_json(s) for s in await self.manager.list_sessions(flt)]}

    async def get_session(self, session_id: str) -> dict[str, Any]:
        s = await self.find(session_id)
        out = session_json(s)
        if s.kind == "plan":
            out["children"] = [
                c.id
                for c in await self.manager.list_sessions(SessionFilter(parent_id=s.id, limit=1000))
            ]
        return out

    async def read_output(
        self,
        session_id: str,
        from_seq: int | None = None,
        tail_lines: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        offset: int = 0,
    ) -> dict[str, Any]:
        _bounded("maxBytes", max_bytes, 1, MAX_BYTES)
        _bounded("offset", offset, 0, 1 << 40)
        if offset and from_seq is None:
            raise BadArgument("offset goes with fromSeq (as nextSeq and nextOffset came)")
        if from_seq is not None and tail_lines is not None:
            raise BadArgument("give fromSeq or tailLines, not both")
        if from_seq is not None:
            _bounded("fromSeq", from_seq, 1, 1 << 62)
        if tail_lines is not None:
            _bounded("tailLines", tail_lines, 0, 1_000_000)
        s = await self.find(session_id)
        page = await self.manager.plain_output(
            s.id, from_seq=from_seq, offset=offset, tail_lines=tail_lines, max_bytes=max_bytes
        )
        return {"sessionId": s.id, "state": str(s.state), "lastSeq": s.last_seq, **page.to_json()}

    async def search_output(
        self,
        query: str,
        session_id: str | None = None,
        regex: bool = False,
        limit: int = 50,
        sessions: int = 20,
    ) -> dict[str, Any]:
        """Lines holding ``query`` (case-insensitive text, or a regex) in the newest sessions'
        output (their last ``SEARCH_BYTES_PER_SESSION``), or in one session's."""
        _bounded("limit", limit, 1, 500)
        _bounded("sessions", sessions, 1, SEARCH_SESSIONS)
        if not query:
            raise BadArgument("query must not be empty")
        match = _matcher(query, regex)
        if session_id is not None:
            targets = [await self.find(session_id)]
        else:
            targets = await self.manager.list_sessions(
                SessionFilter(limit=sessions, not_kind=AGENT_KIND)
            )
        hits: list[dict[str, Any]] = []
        more = False
        deadline = time.monotonic() + 10.0
        for s in targets:
            page = await self.manager.plain_output(
                s.id, tail_lines=1_000_000, max_bytes=SEARCH_BYTES_PER_SESSION
            )
            lines = page.text.split("\n")
            found = await asyncio.to_thread(_search_lines, lines, match, limit - len(hits) + 1)
            for number, line in found:
                if len(hits) >= limit:
                    more = True
                    break
                hits.append(
                    {"sessionId": s.id, "title": s.title, "line": number, "text": line[:500]}
                )
            if more or time.monotonic() > deadline:
                more = more or s is not targets[-1]
                break
        return {"matches": hits, "more": more, "searched": len(targets)}

    async def compare_sessions(self, a: str, b: str) -> dict[str, Any]:
        sa, sb = await self.find(a), await self.find(b)
        result = (await self.manager.compare(sa.id, sb.id)).to_lsp()
        diff = redact_text(str(result["outputDiff"]))
        capped = diff.encode()[:DEFAULT_MAX_BYTES].decode("utf-8", "ignore")
        result["outputDiff"] = capped
        result["truncated"] = bool(result["truncated"]) or capped != diff
        return redact_value(result)  # type: ignore[no-any-return]

    async def last_good(self, session_id: str) -> Session | None:
        """The newest earlier session that ran the same command (or plan) and succeeded."""
        s = await self.find(session_id)
        flt = SessionFilter(kind=s.kind, state="done", limit=200)
        if s.kind == "plan" and "plan" in s.tags:
            flt.tags = {"plan": s.tags["plan"]}
        command = s.meta.get("command")
        for other in await self.manager.list_sessions(flt):
            if other.id == s.id or other.created_ns >= s.created_ns:
                continue
            if s.kind == "plan" or other.meta.get("command") == command:
                return other
        return None

    async def get_plan(self, session_id: str) -> dict[str, Any]:
        s = await self.find(session_id)
        if s.kind != "plan" and s.parent_id:
            s = await self.find(s.parent_id)
        record = s.meta.get("plan")
        if s.kind != "plan" or not isinstance(record, dict):
            raise BadArgument(f"session {s.id} is not a plan run (kind {s.kind})")
        nodes = [n for n in record.get("nodes") or [] if isinstance(n, dict)]
        failed = []
        for n in nodes:
            if n.get("state") not in ("failed", "cancelled", "interrupted"):
                continue
            entry = {k: n.get(k) for k in ("id", "state", "exitCode", "reason", "sessionId")}
            child = n.get("sessionId")
            if isinstance(child, str) and child:
                try:
                    tail = await self.manager.plain_output(child, tail_lines=20, max_bytes=4096)
                    entry["outputTail"] = tail.text
                except UnknownSession:
                    pass
            failed.append({k: v for k, v in entry.items() if v is not None})
        return redact_value(  # type: ignore[no-any-return]
            {
                "session": s.to_lsp(),
                "plan": record.get("name") or s.tags.get("plan"),
                "states": _count(str(n.get("state")) for n in nodes),
                "nodes": nodes,
                "failed": failed,
                "skipped": [
                    {"id": n.get("id"), "reason": n.get("reason")}
                    for n in nodes
                    if n.get("state") == "skipped"
                ],
            }
        )


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


#: Constructs that can make a backtracking engine take exponential time: a quantified group
#: holding a quantifier, or a backreference. Refused rather than run with a timer.
_NESTED = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{?]|\\[1-9]")


def _matcher(query: str, regex: bool) -> re.Pattern[str]:
    if not regex:
        return re.compile(re.escape(query), re.IGNORECASE)
    if len(query) > 500:
        raise BadArgument("regex longer than 500 characters")
    if _NESTED.search(query):
        raise BadArgument(
            "regex refused: a quantified group that holds a quantifier (or a backreference) "
            "can take exponential time; search for plain text or simplify it"
        )
    try:
        return re.compile(query, re.IGNORECASE)
    except re.error as exc:
        raise BadArgument(f"regex does not compile: {exc}") from exc


def _search_lines(lines: list[str], match: re.Pattern[str], limit: int) -> list[tuple[int, str]]:
    out = []
    for i, line in enumerate(lines, 1):
        if len(line) <= 20000 and match.search(line):
            out.append((i, line))
            if len(out) >= limit:
                break
    return out


def plain_lines(text: str) -> str:
    """Terminal text written for a session (colours, ``\\r\\n``) as redacted plain text."""
    return redact_text(strip_ansi(text).replace("\r\n", "\n"))


def check_paths_json(paths: list[str], k8s_version: str | None) -> dict[str, Any]:
    """``ktl-lsp check``'s findings (its JSON shape) for files and directories."""
    from ktl_lsp.checks.check_paths import check_paths
    from ktl_lsp.checks.k8s_schemas import UnsupportedVersionError, resolve_version
    from ktl_lsp.cli.check import add_chart_findings, render_json

    if not paths:
        raise BadArgument("paths must name at least one file or directory")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise BadArgument(f"no such file or directory: {missing[0]}")
    try:
        version = resolve_version(k8s_version)
    except UnsupportedVersionError as exc:
        raise BadArgument(str(exc)) from exc
    results = check_paths(paths, version)
    add_chart_findings(results, paths, version, "auto")
    findings = render_json(results, Path.cwd().resolve())
    errors = sum(1 for f in findings if f.get("severity") == "error")
    return {"findings": findings, "errors": errors, "files": len(results)}
