"""Talking to a remote gateway (ours or a real ktl-agent) with httpx.

A tail survives network drops: it reconnects after the server's ``retry:`` delay (backing off
while the server stays away) with ``Last-Event-ID``, so nothing is repeated or skipped. ktl-agent
never ends a tail by itself, so completion is also checked by polling the session's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ktl_lsp.gateway.sse_client import SseEvent, SseParser
from ktl_lsp.gateway.tls import ClientTls, ClientTlsError
from ktl_lsp.sessions.mirror import MirrorError, mirror_to_frame, mirror_to_session
from ktl_lsp.sessions.model import Frame, Session

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STATUS_POLL_S = 2.0


class RemoteError(Exception):
    """The remote gateway could not be reached or refused us; the message says which."""


class RemoteRefused(RemoteError):
    """Retrying will not help: a wrong token, or no such session."""


class RemoteTlsRefused(RemoteRefused):
    """TLS failed in a way retrying will not fix (a certificate either side refused, a client
    certificate that cannot be loaded); the message names the cause and the setting."""


@dataclass
class TailItem:
    """One thing from a remote tail: a frame, a gap, or the end with the final session."""

    frame: Frame | None = None
    dropped: tuple[int, int] | None = None
    end: Session | None = None
    reconnecting: str | None = None
    ended: bool = False  #: the server said the session is over (ours sends `event: end`)


class RemoteGateway:
    """With ``reveal``, asks for what the gateway would redact (our gateway gives it to the
    token in the Authorization header, which is how we send it)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout_s: float = 10.0,
        tls: ClientTls | None = None,
        reveal: bool = False,
    ) -> None:
        """RemoteTlsRefused when ``tls`` cannot be used (a file that does not load)."""
        self.url = url.rstrip("/")
        self.reveal = reveal
        self.tls = tls or ClientTls()
        verify: ssl.SSLContext | bool = True
        if self.tls.configured:
            if not self.url.startswith("https://"):
                raise RemoteTlsRefused(
                    f"agent.caFile, agent.certFile, agent.keyFile and agent.serverName need an "
                    f"https agent.url, not {self.url}"
                )
            try:
                verify = self.tls.context()
            except ClientTlsError as exc:
                raise RemoteTlsRefused(str(exc)) from exc
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, read=None),
            verify=verify,
        )

    def _tls_refused(self, exc: Exception) -> RemoteTlsRefused | None:
        why = self.tls.refusal(exc, httpx.URL(self.url).host)
        if why is None:
            return None
        return RemoteTlsRefused(f"cannot connect to {self.url}: {why}")

    async def close(self) -> None:
        await self._client.aclose()

    def _path(self, session_id: str, suffix: str = "") -> str:
        return f"/api/v1/mirror/sessions/{quote(session_id, safe='')}{suffix}"

    async def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        if self.reveal:
            params = {**(params or {}), "reveal": "1"}
        try:
            r = await self._client.get(
                path, params=params, timeout=10.0, extensions=self.tls.extensions
            )
        except (httpx.HTTPError, ssl.SSLError) as exc:  # httpx passes a TLS alert on as it is
            raise self._tls_refused(exc) or RemoteError(f"cannot reach {self.url}: {exc}") from exc
        if r.status_code == 401:
            raise RemoteRefused(f"{self.url} refused the token ({r.text.strip()})")
        if r.status_code == 404:
            raise RemoteRefused(f"not found on {self.url}")
        if r.status_code >= 400:
            raise RemoteError(f"{self.url} answered {r.status_code}: {r.text.strip()[:200]}")
        return r.json()

    async def list_sessions(self, limit: int = 200, **filters: str) -> list[Session]:
        body = await self._get_json("/api/v1/mirror/sessions", {"limit": str(limit), **filters})
        out = []
        for obj in (body or {}).get("sessions", []):  # ktl-agent sends `{}` for none
            try:
                out.append(mirror_to_session(obj))
            except MirrorError as exc:
                log.warning("skipping a remote session: %s", exc)
        return out

    async def get(self, session_id: str) -> Session:
        try:
            return mirror_to_session(await self._get_json(self._path(session_id)))
        except MirrorError as exc:
            raise RemoteError(f"{self.url} sent a session we cannot read: {exc}") from exc

    async def tail(self, session_id: str, from_seq: int = 1) -> AsyncIterator[TailItem]:
        """Frames from ``from_seq`` on, across reconnects, ending when the session does."""
        last = from_seq - 1
        retry_s = 1.0
        failures = 0
        while True:
            parser = SseParser()
            headers = {"Last-Event-ID": str(last)} if last > 0 else {}
            params = {"heartbeat_ms": "5000", **({"reveal": "1"} if self.reveal else {})}
            try:
                async with self._client.stream(
                    "GET",
                    self._path(session_id, "/tail"),
                    headers=headers,
                    params=params,
                    extensions=self.tls.extensions,
                ) as r:
                    if r.status_code == 404:
                        raise RemoteRefused(f"session {session_id} is not on {self.url}")
                    if r.status_code == 401:
                        raise RemoteRefused(f"{self.url} refused the token")
                    r.raise_for_status()
                    failures = 0
                    poll = asyncio.get_running_loop().time() + STATUS_POLL_S
                    async for chunk in r.aiter_text():
                        for ev in parser.feed(chunk):
                            if ev.retry:
                                retry_s = ev.retry / 1000
                            item = self._item(session_id, ev)
                            if item is None:
                                continue
                            if item.ended:
                                yield TailItem(end=await self.get(session_id))
                                return
                            if item.frame is not None:
                                if item.frame.seq <= last:
                                    continue
                                last = item.frame.seq
                            elif item.dropped is not None:
                                last = max(last, item.dropped[1])
                            yield item
                            if item.end is not None:
                                return
                        now = asyncio.get_running_loop().time()
                        if now >= poll:
                            # ktl-agent never ends a tail: ask whether it is over.
                            poll = now + STATUS_POLL_S
                            session = await self.get(session_id)
                            if session.state.final and last >= session.last_seq:
                                yield TailItem(end=session)
                                return
            except (httpx.HTTPError, ssl.SSLError, RemoteError) as exc:
                if not isinstance(exc, RemoteError) and (refused := self._tls_refused(exc)):
                    raise refused from exc
                if (
                    isinstance(exc, RemoteRefused)
                    or (isinstance(exc, RemoteError) and "refused" in str(exc))
                    or "not on" in str(exc)
                ):
                    raise
                failures += 1
                delay = min(MAX_BACKOFF_S, retry_s * (2 ** min(failures - 1, 5)))
                yield TailItem(
                    reconnecting=f"{exc.__class__.__name__}: {exc}; retrying in {delay:.1f}s"
                )
                await asyncio.sleep(delay)
                continue
            # The server closed the stream without an end (ktl-agent restarting?): resume.
            final: Session | None = None
            with contextlib.suppress(RemoteError):
                final = await self.get(session_id)
            if final is not None and final.state.final and last >= final.last_seq:
                yield TailItem(end=final)
                return
            await asyncio.sleep(retry_s)

    def _item(self, session_id: str, ev: SseEvent) -> TailItem | None:
        if ev.event == "frame":
            try:
                return TailItem(frame=mirror_to_frame(json.loads(ev.data), session_id))
            except (ValueError, MirrorError) as exc:
                log.warning("unreadable frame from %s: %s", self.url, exc)
                return None
        if ev.event == "dropped":
            try:
                d = json.loads(ev.data)
                return TailItem(dropped=(int(d["from_sequence"]), int(d["to_sequence"])))
            except (ValueError, KeyError, TypeError):
                return None
        if ev.event == "end":
            return TailItem(reconnecting=None, dropped=None, frame=None, end=None, ended=True)
        return None
