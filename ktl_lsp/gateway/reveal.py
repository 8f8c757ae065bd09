"""What the gateway hands out is redacted (``sessions/scrub.py``) unless the token holder asks.

``reveal=1`` shows secrets only on a request that carries the token itself, in the
``Authorization`` or ``X-KTL-Token`` header. The replay UI signs in with a one-time link that
leaves the token in a cookie: a link is made to be shared, so a cookie never reveals (nor a
``?token=`` in an address, which ends up in histories and logs). A gateway with no token
(on loopback only) reveals on ``reveal=1`` alone:
there is no holder to ask.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ktl_lsp.gateway.auth import Auth
from ktl_lsp.gateway.http import AUTH, manager_of
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import FrameType, Session
from ktl_lsp.sessions.redact import Redaction, Redactor, well_known
from ktl_lsp.sessions.scrub import Scrubber, scrub_json, scrub_session, text_of

REFUSED = (
    "reveal needs the token in the Authorization or X-KTL-Token header "
    "(a sign-in cookie or a token in the address never reveals)"
)


def asks_reveal(request: web.Request) -> bool:
    return request.query.get("reveal", "").strip().lower() in ("1", "true")


def may_reveal(request: web.Request, auth: Auth) -> bool:
    """Whether the request carries the token itself (the guard has checked it is right)."""
    if not auth.enabled:
        return True
    h = request.headers
    return bool((h.get("Authorization") or "").strip() or (h.get("X-KTL-Token") or "").strip())


@dataclass
class Outgoing:
    """One answer's redaction; ``redaction`` None when the token holder asked to see secrets."""

    redaction: Redaction | None

    @property
    def reveal(self) -> bool:
        return self.redaction is None

    @functools.cached_property
    def redactor(self) -> Redactor | None:
        """One for the whole answer (a list of sessions scans many strings)."""
        return self.redaction.redactor() if self.redaction is not None else None

    def json(self, obj: Any) -> Any:
        redactor = self.redactor
        return obj if redactor is None else scrub_json(obj, redactor)

    def session(self, session: Session) -> Session:
        redactor = self.redactor
        return session if redactor is None else scrub_session(session, redactor)

    def text(self) -> Callable[[str], str]:
        redactor = self.redactor
        return (lambda s: s) if redactor is None else text_of(redactor)

    def scrubber(self) -> Scrubber | None:
        return None if self.redaction is None else Scrubber.of(self.redaction)


async def outgoing(request: web.Request) -> Outgoing:
    """How to redact the answer to ``request``; a 403 when it asks to reveal without the token
    in a header."""
    if asks_reveal(request):
        if not may_reveal(request, request.app[AUTH]):
            raise web.HTTPForbidden(
                text=REFUSED + "\n", headers={"X-Content-Type-Options": "nosniff"}
            )
        return Outgoing(None)
    if well_known.cache_info().currsize == 0:
        await asyncio.to_thread(well_known)  # detect-secrets' import: not on the loop
    return Outgoing(manager_of(request).outgoing_redaction())


#: Frames read before a starting point for the output that leads up to it.
AROUND = 64


async def prime(manager: SessionManager, session_id: str, scrubber: Scrubber, first: int) -> None:
    """Starts ``scrubber`` at sequence ``first`` with the output recorded before it, so the rest
    of a secret that began earlier is still removed."""
    if first <= 1:
        return
    lo = max(1, first - AROUND)
    before, _ = await manager.frames(session_id, lo, first - lo)
    scrubber.prime(b"".join(f.data for f in before if f.type is FrameType.OUTPUT))
