"""Routes and middleware. ktl-agent's routes first, then ours under ``/api/v1/sessions``.

Order of checks per request, as ktl-agent: CORS preflight, then auth, then method. Errors are
``text/plain`` with ``nosniff`` and a trailing newline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ktl_lsp.gateway import approvals, audit, bundles, seek
from ktl_lsp.gateway.auth import COOKIE, Auth, GatewayAuthError
from ktl_lsp.gateway.http import (
    AUTH,
    MANAGER,
    PRINCIPAL,
    give_back_memory,
    json_response,
    manager_of,
    session_id_of,
    session_of,
    text_error,
)
from ktl_lsp.gateway.query import BadParameter, ListQuery, TailQuery, last_seen, mirror, whole
from ktl_lsp.gateway.reveal import AROUND, outgoing, prime
from ktl_lsp.gateway.sse import EventCache, Tail
from ktl_lsp.sessions import ids
from ktl_lsp.sessions.errors import (
    AmbiguousSession,
    RecordingOff,
    SessionNotRunning,
    UnknownBlock,
    UnknownSession,
)
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import Frame, Session, SessionFilter
from ktl_lsp.sessions.scrub import Scrubber

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPTIONS = web.AppKey("options", dict)
CACHE = web.AppKey("cache", EventCache)


PUBLIC = ("/healthz", "/ui/login")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    options = request.app[OPTIONS]
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in options.get("cors_origins", ())
    if request.method == "OPTIONS":
        resp: web.StreamResponse = web.Response(status=204)
    elif request.method in CHANGING and _from_another_site(request, allowed):
        return text_error(403, "cross-site request refused: open the replay from the gateway")
    elif (
        request.path in PUBLIC
        or request.path.startswith("/ui/assets/")
        or (request.path == "/api/v1/auth/cookie" and request.method == "DELETE")
    ):
        resp = await _handle(request, handler)
    else:
        auth = request.app[AUTH]
        query_token = request.query.get("token") if options.get("allow_query_token") else None
        try:
            request[PRINCIPAL] = auth.check(
                request.headers.get("Authorization") or query_token,
                request.headers.get("X-KTL-Token"),
                request.cookies.get(COOKIE),
            )
        except GatewayAuthError as exc:
            if request.path.startswith("/ui/"):
                return _login_page(str(exc))
            return text_error(401, str(exc))
        resp = await _handle(request, handler)
    # No wildcard: only origins the user listed may read responses cross-site.
    if allowed and not resp.prepared:
        resp.headers["Access-Control-Allow-Origin"] = origin or ""
        resp.headers["Access-Control-Allow-Credentials"] = "true"
        resp.headers["Vary"] = "Origin"
        resp.headers["Access-Control-Allow-Headers"] = (
            "authorization,x-ktl-token,last-event-id,content-type"
        )
        resp.headers["Access-Control-Allow-Methods"] = "GET,POST,DELETE,OPTIONS"
    return resp


CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _from_another_site(request: web.Request, listed: bool) -> bool:
    """Whether a browser sent this from a page that is not ours (nor a listed CORS origin).

    ``SameSite=Strict`` cookies reach us from any port of the same host, so the cookie alone
    does not show the request came from our pages. Clients that send neither header are not
    browsers and are judged by their token alone.
    """
    if listed:
        return False
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != f"{request.scheme}://{request.host}".lower():
        return True
    return request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site")


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return text_error(405, "method not allowed")
    except web.HTTPNotFound:
        return text_error(404, "404 page not found")
    except BadParameter as exc:
        return text_error(400, str(exc))
    except AmbiguousSession as exc:
        # The text is well formed and the request could succeed once the id is longer: a
        # conflict with what the store holds now, not a bad request.
        return text_error(409, str(exc))
    except UnknownSession:
        return text_error(404, "session not found")
    except UnknownBlock as exc:
        return text_error(404, str(exc))
    except RecordingOff as exc:
        return text_error(503, str(exc))
    except asyncio.CancelledError:
        return text_error(408, "request canceled")


#: No other page may frame ours (a framed UI could be clicked through unseen).
NO_FRAMES = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def _login_page(reason: str) -> web.Response:
    body = (
        "<!doctype html><meta charset=utf-8><title>ktl-lsp: sign in</title>"
        "<body style='font-family:sans-serif;margin:3em'><h1>ktl-lsp replay</h1>"
        f"<p>{reason}. Open the replay from your editor (it carries a one-time sign-in link), "
        "or run <code>ktl-lsp sessions replay ID</code>.</p></body>"
    )
    return web.Response(
        status=401,
        text=body,
        content_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            + NO_FRAMES["Content-Security-Policy"],
            "X-Frame-Options": NO_FRAMES["X-Frame-Options"],
            "X-Content-Type-Options": "nosniff",
        },
    )


# ktl-agent compatible -------------------------------------------------------------------
async def auth_cookie(request: web.Request) -> web.StreamResponse:
    token = request.app[AUTH].token
    resp = web.Response(status=204)
    secure = request.secure
    if request.method == "POST":
        if token:
            resp.set_cookie(
                COOKIE, token, path="/", httponly=True, samesite="Strict", secure=secure
            )
    elif request.method == "DELETE":
        resp.set_cookie(
            COOKIE, "", path="/", httponly=True, samesite="Strict", secure=secure, max_age=0
        )
    else:
        raise web.HTTPMethodNotAllowed(request.method, ["POST", "DELETE"])
    return resp


async def list_sessions(request: web.Request) -> web.StreamResponse:
    q = ListQuery.parse(request.query, list(request.query.items()))
    manager = request.app[MANAGER]
    scan = 1000 if q.filtered else q.limit
    found = await manager.list_sessions(SessionFilter(limit=scan))
    found.sort(key=lambda s: (last_seen(s), s.id), reverse=True)
    # Filters see what is shown: a secret cannot be guessed by filtering on it.
    shown = await outgoing(request)
    out = [m for m in (mirror(shown.session(s)) for s in found) if q.matches(m)][: q.limit]
    return json_response({"sessions": out})  # never `{}` for an empty list (ktl-agent's ⚠)


async def get_session(request: web.Request) -> web.StreamResponse:
    shown = await outgoing(request)
    return json_response(mirror(shown.session(await session_of(request))))


async def export_jsonl(request: web.Request) -> web.StreamResponse:
    session = await session_of(request)
    from_seq = max(1, whole(request.query, "from_sequence", 1))
    return await _stream_export(request, session, "ndjson", from_seq)


async def _stream_export(
    request: web.Request, session: Session, fmt: str, from_seq: int = 1
) -> web.StreamResponse:
    from ktl_lsp.sessions.export import EXTENSIONS

    shown = await outgoing(request)
    try:
        session, iterator = await manager_of(request).export_pieces(
            session.id, fmt, from_seq, reveal=shown.reveal
        )
    except RecordingOff:
        return text_error(503, "the session store is not available")
    types = {
        "ndjson": "application/x-ndjson; charset=utf-8",
        "asciicast": "application/x-asciicast; charset=utf-8",
        "html": "text/html; charset=utf-8",
    }
    headers = {"Content-Type": types[fmt], "X-Content-Type-Options": "nosniff"}
    if fmt != "ndjson" or request.query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="{session.id}{EXTENSIONS[fmt]}"'
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    streamed = 0
    try:
        while True:
            chunk = await asyncio.to_thread(_next_chunk, iterator)
            if not chunk:
                break
            streamed += len(chunk)
            await resp.write(chunk)
        await resp.write_eof()
    finally:
        give_back_memory(streamed)
    return resp


def _next_chunk(iterator: Any, size: int = 256 * 1024) -> bytes:
    parts: list[bytes] = []
    total = 0
    for piece in iterator:
        parts.append(piece)
        total += len(piece)
        if total >= size:
            break
    return b"".join(parts)


async def tail(request: web.Request) -> web.StreamResponse:
    session = await session_of(request)
    q = TailQuery.parse(request)
    shown = await outgoing(request)
    tail = Tail(request.app[MANAGER], request.app[CACHE], session, shown.scrubber())
    return await tail.run(request, q)


async def not_found(request: web.Request) -> web.StreamResponse:
    return text_error(404, "404 page not found")


# ours -----------------------------------------------------------------------------------
async def our_session(request: web.Request) -> web.StreamResponse:
    if request.method == "DELETE":
        manager = request.app[MANAGER]
        try:
            await manager.delete(await session_id_of(request))
        except SessionNotRunning as exc:
            return text_error(409, str(exc))
        return web.Response(status=204)
    shown = await outgoing(request)
    return json_response(shown.session(await session_of(request)).to_lsp())


async def our_list(request: web.Request) -> web.StreamResponse:
    q = request.query
    limit = min(whole(q, "limit", 200), 1000)
    flt = SessionFilter(
        state=q.get("state") or None,
        kind=q.get("kind") or None,
        parent_id=q.get("parent") or None,
        limit=limit,
    )
    shown = await outgoing(request)
    sessions = [shown.session(s) for s in await request.app[MANAGER].list_sessions(flt)]
    text = q.get("q", "").strip().lower()
    if text:
        sessions = [
            s
            for s in sessions
            if text in s.title.lower() or text in str(s.meta.get("command", "")).lower()
        ]
    return json_response({"sessions": [s.to_lsp() for s in sessions]})


async def pin(request: web.Request) -> web.StreamResponse:
    if request.method not in ("POST", "DELETE"):
        raise web.HTTPMethodNotAllowed(request.method, ["POST", "DELETE"])
    session = await request.app[MANAGER].set_pinned(
        await session_id_of(request), request.method == "POST"
    )
    return json_response((await outgoing(request)).session(session).to_lsp())


async def upload_bundle(request: web.Request) -> web.StreamResponse:
    cap = request.app[OPTIONS].get("bundle_max_bytes", bundles.MAX_BYTES)
    return await bundles.upload(request, int(cap))


async def export_any(request: web.Request) -> web.StreamResponse:
    from ktl_lsp.sessions.export import FORMATS

    fmt = request.query.get("format", "ndjson")
    if fmt not in FORMATS:
        return text_error(400, f"unknown format {fmt!r} (ndjson, asciicast or html)")
    return await _stream_export(request, await session_of(request), fmt)


async def frames(request: web.Request) -> web.StreamResponse:
    """Frames for the replay UI, paged: ``from_seq``, ``limit`` (<= 5000), ``max_bytes``."""
    from ktl_lsp.sessions.mirror import frame_to_mirror

    session = await session_of(request)
    q = request.query
    from_seq = max(1, whole(q, "from_seq", 1))
    limit = min(5000, whole(q, "limit", 2000))
    max_bytes = min(8 << 20, whole(q, "max_bytes", 2 << 20))
    manager = request.app[MANAGER]
    shown = await outgoing(request)
    got, last_seq = await manager.frames(session.id, from_seq, limit)
    page: list[Frame] = []
    size = 0
    for f in got:
        if page and size + len(f.data) > max_bytes:
            break
        page.append(f)
        size += len(f.data)
    scrubber = shown.scrubber()
    if scrubber is not None and page:
        page = await _scrubbed_page(manager, session.id, page, scrubber)
    out = [frame_to_mirror(f) for f in page]
    session_json = shown.session(session).to_lsp()
    return json_response({"frames": out, "last_seq": last_seq, "session": session_json})


async def _scrubbed_page(
    manager: SessionManager, session_id: str, page: list[Frame], scrubber: Scrubber
) -> list[Frame]:
    """``page`` redacted as the stream it is part of: with the output before and after it."""
    await prime(manager, session_id, scrubber, page[0].seq)
    after, _ = await manager.frames(session_id, page[-1].seq + 1, AROUND)
    done: dict[int, Frame] = {}
    for f in (*page, *after):
        done.update((g.seq, g) for g in scrubber.push(f))
    done.update((g.seq, g) for g in scrubber.flush())
    return [done.get(f.seq, f) for f in page]


async def diff(request: web.Request) -> web.StreamResponse:
    a, b = request.query.get("a", ""), request.query.get("b", "")
    (a_id, a_sep, a_block), (b_id, b_sep, b_block) = a.partition("#"), b.partition("#")
    if not (ids.is_valid(a_id) and ids.is_valid(b_id)):
        return text_error(400, "a and b must be session ids (or ID#blockN)")
    manager = request.app[MANAGER]
    comparison = await manager.compare(
        await manager.resolve_id(a_id) + a_sep + a_block,
        await manager.resolve_id(b_id) + b_sep + b_block,
    )
    return json_response((await outgoing(request)).json(comparison.to_lsp()))


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


# the replay UI --------------------------------------------------------------------------
def _asset(name: str) -> bytes | None:
    if "/" in name or name.startswith("."):
        return None
    for package in ("ktl_lsp.web", "ktl_lsp.web.vendor"):
        try:
            f = resources.files(package).joinpath(name)
            if f.is_file():
                return f.read_bytes()
        except (FileNotFoundError, ModuleNotFoundError):
            continue
    return None


_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    data = _asset(name)
    if data is None:
        return text_error(404, "404 page not found")
    ctype = next((t for ext, t in _TYPES.items() if name.endswith(ext)), "application/octet-stream")
    return web.Response(
        body=data,
        headers={"Content-Type": f"{ctype}; charset=utf-8", "Cache-Control": "max-age=300"},
    )


async def ui_page(request: web.Request) -> web.StreamResponse:
    page = _asset("ui.html")
    if page is None:
        return text_error(404, "the replay UI is not installed")
    return web.Response(
        body=page,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; " + NO_FRAMES["Content-Security-Policy"],
            "X-Frame-Options": NO_FRAMES["X-Frame-Options"],
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


async def ui_login(request: web.Request) -> web.StreamResponse:
    code = request.query.get("code", "")
    target = request.query.get("next", "/ui/")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/ui/") or "\\" in target:
        target = "/ui/"
    auth = request.app[AUTH]
    if not auth.enabled:
        raise web.HTTPSeeOther(target)
    if not auth.redeem(code):
        return _login_page("this sign-in link has expired or was already used")
    # The redirect takes the code out of the address bar and the browser history.
    resp = web.HTTPSeeOther(target)
    assert auth.token
    resp.set_cookie(
        COOKIE, auth.token, path="/", httponly=True, samesite="Strict", secure=request.secure
    )
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    raise resp


def build_app(manager: SessionManager, auth: Auth, **options: Any) -> web.Application:
    app = web.Application(middlewares=[guard])
    app[MANAGER] = manager
    app[AUTH] = auth
    app[OPTIONS] = options
    app[CACHE] = EventCache(options.get("event_cache_bytes", 16 << 20))
    r = app.router
    r.add_route("*", "/api/v1/auth/cookie", auth_cookie)
    r.add_get("/api/v1/mirror/sessions", list_sessions)
    r.add_get("/api/v1/mirror/sessions/{id}", get_session)
    r.add_get("/api/v1/mirror/sessions/{id}/export", export_jsonl)
    r.add_get("/api/v1/mirror/sessions/{id}/tail", tail)
    r.add_route("*", "/api/v1/mirror/sessions/{id}/{rest:.*}", not_found)
    r.add_get("/api/v1/sessions", our_list)
    r.add_post("/api/v1/bundles", upload_bundle)
    r.add_get("/api/v1/sessions/diff", diff)
    r.add_route("GET", "/api/v1/sessions/{id}", our_session)
    r.add_route("DELETE", "/api/v1/sessions/{id}", our_session)
    r.add_route("*", "/api/v1/sessions/{id}/pin", pin)
    r.add_get("/api/v1/sessions/{id}/export", export_any)
    r.add_get("/api/v1/sessions/{id}/frames", frames)
    seek.register(app)  # /index and /seek for the replay UI
    approvals.register(app)  # questions sessions wait on, answered from a browser or CI
    audit.register(app)  # the changes recorded, with who, where, against what and why
    r.add_get("/healthz", healthz)
    r.add_get("/ui/login", ui_login)
    r.add_get("/ui/assets/{name}", asset)
    r.add_get("/ui/", ui_page)
    r.add_get("/ui/s/{id}", ui_page)
    r.add_get("/ui", to_ui)
    r.add_get("/", to_ui)
    return app


async def to_ui(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")
