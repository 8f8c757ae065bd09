"""What every route of the gateway shares: the app's session manager, a session from the
path, the JSON and text answers, and giving memory back after large streams."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ktl_lsp.gateway.auth import Auth
from ktl_lsp.sessions import ids
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import Session

MANAGER = web.AppKey("manager", SessionManager)
AUTH = web.AppKey("auth", Auth)
#: The name of the token a request carried ("" when the gateway needs none): sessions the
#: request starts record it as their ``principal``.
PRINCIPAL = web.RequestKey("principal", str)
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


def _path_id(request: web.Request) -> str:
    sid = request.match_info["id"]
    if not ids.is_valid(sid):
        raise web.HTTPNotFound()
    return sid


async def session_id_of(request: web.Request) -> str:
    """The route's session: its full id, or a unique prefix (SessionManager.resolve_id)."""
    return await manager_of(request).resolve_id(_path_id(request))


async def session_of(request: web.Request) -> Session:
    return await manager_of(request).find(_path_id(request))


#: A streamed answer this large is followed by handing freed memory back to the system.
LARGE_STREAM = 16 << 20
_TRIM_EVERY_S = 1.0
_trim_at = 0.0  #: loop time of the last trim, or of the one scheduled


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc
    return fn


def give_back_memory(streamed: int) -> None:
    """After a large streamed answer, returns the allocator's freed memory to the system.

    Exports and tails encode their frames in worker threads; glibc keeps what they freed in
    per-thread arenas, so without this a few 300 MB exports leave RSS hundreds of megabytes
    above its baseline. ``malloc_trim`` takes tens of milliseconds: it runs in the default
    executor, at most once a second (later calls share the next one), and nothing waits for
    it (a tail often ends by being cancelled). Elsewhere than glibc this does nothing.
    """
    global _trim_at
    trim = _malloc_trim()
    if trim is None or streamed < LARGE_STREAM:
        return
    loop = asyncio.get_running_loop()
    now = loop.time()
    if _trim_at > now:
        return  # one is scheduled
    _trim_at = max(now, _trim_at + _TRIM_EVERY_S)
    loop.call_at(_trim_at, loop.run_in_executor, None, trim, 0)
