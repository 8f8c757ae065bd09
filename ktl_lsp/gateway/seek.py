"""Opening and seeking large sessions without replaying them from the start.

Two routes for the replay UI:

``GET /api/v1/sessions/{id}/index``
    A compact timeline: at most ``points`` (default 1000, at most 5000) sampled
    ``[seq, play_ms, bytes_so_far]`` triples, the resizes and markers (bounded), the play
    duration and the first terminal size. Play time is wall time with idle gaps longer than
    ``idle_ms`` (default 2000, as the player) shortened to it.

``GET /api/v1/sessions/{id}/search?q=TEXT&limit=N``
    Where the output (escape sequences removed, case-insensitive) contains ``q``: at most
    ``limit`` (default 1000) ``{seq, play_ms}`` matches in order, ``truncated`` when there are
    more. A match that spans two frames counts for the later one.

``GET /api/v1/sessions/{id}/seek?seq=N`` or ``?t_ms=T``
    A start sequence ``S <= N`` such that writing frames ``S..N`` into a reset terminal of the
    size in effect at ``S`` (``cols``/``rows`` in the answer) shows the screen at ``N``. With
    ``t_ms``, ``N`` is the last frame whose play time is ``<= T``.

The timeline, the seek and the search themselves are the sessions core's
(``ktl_lsp/sessions/timeline.py``), reached through the session manager.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from ktl_lsp.gateway.http import json_response, manager_of, session_of
from ktl_lsp.gateway.query import MAX_REAL, real, whole
from ktl_lsp.gateway.reveal import Outgoing, outgoing
from ktl_lsp.sessions.errors import RecordingOff
from ktl_lsp.sessions.model import Session
from ktl_lsp.sessions.search import Hit, Query, highlights
from ktl_lsp.sessions.timeline import DEFAULT_BUDGET, IDLE_MS, MAX_BUDGET, SeekResult, Timeline


async def _timeline(request: web.Request) -> tuple[Session, Timeline]:
    session = await session_of(request)
    idle = min(real(request.query, "idle_ms", IDLE_MS), 3_600_000) or float("inf")
    try:
        return session, await manager_of(request).timeline(session.id, idle)
    except RecordingOff:
        raise web.HTTPServiceUnavailable(text="the session store is not available\n") from None


async def index(request: web.Request) -> web.StreamResponse:
    session, tl = await _timeline(request)
    points = max(2, min(5000, whole(request.query, "points", 1000)))
    out = tl.summary(points)
    out["session"] = session.to_lsp()
    return json_response((await outgoing(request)).json(out))


async def seek(request: web.Request) -> web.StreamResponse:
    _, tl = await _timeline(request)
    q = request.query
    budget = max(4096, min(MAX_BUDGET, whole(q, "budget", DEFAULT_BUDGET)))
    if q.get("seq"):
        i = tl.index_of(min(whole(q, "seq", 0), tl.last_seq))
    elif q.get("t_ms"):
        i = tl.at_time(max(-1.0, real(q, "t_ms", 0, lo=-MAX_REAL)))
    else:
        return web.Response(status=400, text="seq or t_ms is required\n")
    if i < 0:
        first = tl.seqs[0] if tl.seqs else 1
        return json_response(SeekResult(0, first, "start", True, 0).to_json(tl))
    n = tl.seqs[i]
    rows = tl.size_at(n)[1]
    result = await manager_of(request).find_start(tl, n, rows, budget)
    return json_response(result.to_json(tl))


async def search(request: web.Request) -> web.StreamResponse:
    _, tl = await _timeline(request)
    query = request.query.get("q", "")
    if not query.strip() or len(query) > 1000:
        return web.Response(status=400, text="q: 1 to 1000 characters\n")
    limit = max(1, min(10000, whole(request.query, "limit", 1000)))
    shown = await outgoing(request)
    matches, truncated = await manager_of(request).search_output(tl, query, limit, shown.redaction)
    return json_response({"matches": matches, "truncated": truncated})


async def search_all(request: web.Request) -> web.StreamResponse:
    """``/api/v1/search?q=``: lines of every session's output, newest first."""
    from datetime import datetime

    from ktl_lsp.sessions.timespec import parse_since

    q = request.query
    text = q.get("q", "")
    if not text.strip() or len(text) > 1000:
        return web.Response(status=400, text="q: 1 to 1000 characters\n")
    since_ns = None
    if q.get("since"):
        try:
            since_ns = parse_since(q["since"], datetime.now())
        except ValueError as exc:
            return web.Response(status=400, text=f"since: {exc}\n")
    limit = max(1, min(1000, whole(q, "limit", 50)))
    shown = await outgoing(request)
    hits = await manager_of(request).search(
        text, limit, q.get("state") or None, q.get("kind") or None, since_ns
    )
    return json_response({"matches": _shown_hits(hits, text, shown)})


def _shown_hits(hits: list[Hit], text: str, shown: Outgoing) -> list[dict[str, Any]]:
    """Hits with their lines redacted; a hit whose terms matched only inside a secret is left
    out (else searching would tell a secret apart, character by character)."""
    if shown.reveal:
        return [h.to_json() for h in hits]
    terms = Query.parse(text).terms
    redact = shown.text()
    out: list[dict[str, Any]] = []
    for h in hits:
        line = redact(h.line)
        if line != h.line:
            if not all(highlights(line, [t]) for t in terms):
                continue
            h = dataclasses.replace(h, line=line, highlights=highlights(line, terms))
        out.append(shown.json(h.to_json()))
    return out


async def blocks(request: web.Request) -> web.StreamResponse:
    """``/api/v1/sessions/{id}/blocks``: a shell session's command blocks."""
    from ktl_lsp.sessions.model import now_ns

    session = await session_of(request)
    now = now_ns()
    found = await manager_of(request).blocks(session.id)
    shown = await outgoing(request)
    return json_response(shown.json({"blocks": [b.to_lsp(now) for b in found]}))


async def block_output(request: web.Request) -> web.StreamResponse:
    """``/api/v1/sessions/{id}/blocks/{n}/output``: a block's output as plain text (copy)."""
    session = await session_of(request)
    n = request.match_info["n"]
    if not n.isdigit():
        return web.Response(status=400, text="the block is a number\n")
    text = await manager_of(request).block_output(session.id, int(n))
    text = (await outgoing(request)).text()(text)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def register(app: web.Application) -> None:
    app.router.add_get("/api/v1/sessions/{id}/blocks/{n}/output", block_output)
    app.router.add_get("/api/v1/search", search_all)
    app.router.add_get("/api/v1/sessions/{id}/blocks", blocks)
    app.router.add_get("/api/v1/sessions/{id}/index", index)
    app.router.add_get("/api/v1/sessions/{id}/seek", seek)
    app.router.add_get("/api/v1/sessions/{id}/search", search)
