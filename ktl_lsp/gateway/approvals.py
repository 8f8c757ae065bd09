"""Questions sessions put to a person, listed and answered over HTTP (``docs/gateway.md``).

The routes read and answer the session manager's :class:`~ktl_lsp.sessions.approvals.Approvals`,
the same questions the editor is asked, so a run started from CI or an agent can be approved
from a browser: the first answer wins wherever it comes from. Questions of sessions that other
processes run on the same store (``ktl-lsp mcp``, another server) are listed and answered too.
"""

from __future__ import annotations

import json

from aiohttp import web

from ktl_lsp.gateway.http import json_response, manager_of, session_id_of, text_error
from ktl_lsp.gateway.reveal import outgoing
from ktl_lsp.sessions.approvals import ApprovalError, NotWaiting

#: What the answerer may say about themselves (recorded as given, beside the gateway's word).
MAX_WHO = 100


async def all_pending(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/approvals``: every question waiting, here or in another process."""
    pending = await manager_of(request).approvals.pending_everywhere()
    shown = await outgoing(request)
    return json_response(shown.json({"pending": [q.to_json() for q in pending]}))


async def of_session(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/sessions/{id}/approvals``: its open questions and everything recorded."""
    manager = manager_of(request)
    sid = await session_id_of(request)
    session = await manager.get(sid)
    body = {
        "pending": [q.to_json() for q in await manager.approvals.pending_everywhere(sid)],
        "approvals": session.meta.get("approvals") or [],
    }
    return json_response((await outgoing(request)).json(body))


async def answer(request: web.Request) -> web.StreamResponse:
    """``POST /api/v1/sessions/{id}/approvals/{n}`` ``{"choice": "Apply", "who"?: "alice"}``."""
    manager = manager_of(request)
    sid = await session_id_of(request)
    try:
        n = int(request.match_info["n"])
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        return text_error(400, 'expected a question number and a JSON body {"choice": ...}')
    if not isinstance(body, dict) or "choice" not in body:
        return text_error(400, 'expected a JSON body {"choice": ...} (null declines)')
    choice, who = body.get("choice"), body.get("who")
    if choice is not None and not isinstance(choice, str):
        return text_error(400, "'choice' must be a string or null")
    said = f"{str(who)[:MAX_WHO]} " if isinstance(who, str) and who.strip() else ""
    answerer = f"{said}(gateway, {request.remote or 'unknown'})"
    try:
        q = await manager.approvals.answer_anywhere(sid, n, choice, answerer)
    except NotWaiting as exc:
        return text_error(409, str(exc))
    except ApprovalError as exc:
        return text_error(400, str(exc))
    return json_response((await outgoing(request)).json(q.to_json()))


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/approvals", all_pending)
    r.add_get("/api/v1/sessions/{id}/approvals", of_session)
    r.add_post("/api/v1/sessions/{id}/approvals/{n}", answer)
