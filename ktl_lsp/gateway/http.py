"""What every route of the gateway shares: the app's session manager, a session from the
path, and the JSON and text answers."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ktl_lsp.sessions import ids
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import Session

MANAGER = web.AppKey("manager", SessionManager)
JSON_TYPE = "application/json; charset=utf-8"


def text_error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        text=message + "\n",
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(obj, separators=(",", ":")).encode(),
        headers={"Content-Type": JSON_TYPE, "Cache-Control": "no-store"},
    )


def manager_of(request: web.Request) -> SessionManager:
    return request.app[MANAGER]


async def session_id_of(request: web.Request) -> str:
    """The route's session: its full id, or a unique prefix (SessionManager.resolve_id)."""
    sid = request.match_info["id"]
    if not ids.is_valid(sid):
        raise web.HTTPNotFound()
    return await manager_of(request).resolve_id(sid)


async def session_of(request: web.Request) -> Session:
    return await manager_of(request).get(await session_id_of(request))
