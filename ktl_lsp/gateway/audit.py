"""``GET /api/v1/audit``: the audit trail (``sessions/audit.py``) over HTTP, behind the token.

Query parameters as ``ktl-lsp audit``'s options: ``since`` (``7d``, ``today``, an ISO time),
``context`` (a glob such as ``prod-*``) and ``limit``; the answer is ``{"changes": [...]}``,
newest first, secrets redacted.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from ktl_lsp.gateway.http import json_response, manager_of
from ktl_lsp.gateway.query import BadParameter, whole
from ktl_lsp.sessions.audit import MAX_LIMIT, AuditQuery, audit_rows
from ktl_lsp.sessions.timespec import parse_since

DEFAULT_LIMIT = 500


async def audit(request: web.Request) -> web.StreamResponse:
    q = request.query
    since_ns: int | None = None
    if q.get("since", "").strip():
        try:
            since_ns = parse_since(q["since"], datetime.now())
        except ValueError as exc:
            raise BadParameter(f"since: {exc}") from None
    query = AuditQuery(
        since_ns=since_ns,
        context=q.get("context") or None,
        limit=min(whole(q, "limit", DEFAULT_LIMIT), MAX_LIMIT),
    )
    return json_response({"changes": await audit_rows(manager_of(request), query)})


def register(app: web.Application) -> None:
    app.router.add_get("/api/v1/audit", audit)
