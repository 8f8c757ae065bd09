"""A remote gateway (ours or ktl-agent's): its sessions in the list, and ``ktl.session.attach``.

Attaching records the remote session into a local one as it streams (kind ``remote``), so it is
shown like any local session (progress, terminal data, cancel stops watching) and kept after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from ktl_lsp.aio import import_off_loop
from ktl_lsp.lsp.arguments import ArgumentError, StartArgs
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.features.session_host import SessionHost
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.manager import LiveSession, RunSpec, TaskOutcome
from ktl_lsp.sessions.model import FrameType, Session, State
from ktl_lsp.sessions.redact import well_known
from ktl_lsp.sessions.scrub import Paced, Scrubber, scrub_session

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # httpx is imported when a remote gateway is first used
    from ktl_lsp.gateway.remote import RemoteGateway, TailItem


@dataclass
class AttachArgs(StartArgs):
    sessionId: str  #: a session running in the session host, else one of the remote gateway
    fromSeq: int = 1
    #: secrets as they are (the remote gateway redacts them unless its token holder asks)
    reveal: bool = False


class RemoteSessions(Feature):
    """The configured remote gateway: its sessions in the list, and attaching to one."""

    def __init__(self, server: KtlServer, runs: Runs, host: SessionHost) -> None:
        self.server = server
        self.runs = runs
        self.host = host
        self.gateway: RemoteGateway | None = None
        self._told: str | None = None  #: the TLS refusal last shown, shown once

    def connect(self, reveal: bool = False) -> RemoteGateway | None:
        """The client for the ``agent`` setting (rebuilt when it changes), or None; with
        ``reveal`` a client of its own, for one attach.

        Raises RemoteTlsRefused when its TLS files cannot be used."""
        agent = self.server.settings.agent
        if not agent.url:
            return None
        from ktl_lsp.gateway.remote import RemoteGateway
        from ktl_lsp.gateway.tls import ClientTls

        def path(value: str | None) -> Path | None:
            return Path(value).expanduser() if value else None

        tls = ClientTls(
            path(agent.ca_file), path(agent.cert_file), path(agent.key_file), agent.server_name
        )
        token = agent.token or os.environ.get("KTL_AGENT_TOKEN")
        if reveal:
            return RemoteGateway(agent.url, token, tls=tls, reveal=True)  # for this attach only
        g = self.gateway
        if g is None or g.url != agent.url.rstrip("/") or g.tls != tls:
            self.gateway = RemoteGateway(agent.url, token, tls=tls)
        return self.gateway

    def _tls_refused(self, message: str, show: bool) -> None:
        """Logs a TLS refusal; ``show`` also puts it in front of the person. The sessions list
        is asked for often, so the same refusal is told (and logged) once."""
        if show and message == self._told:
            return
        log.warning("%s", message)
        if show:
            self._told = message
            self.server.notice(message)
        else:
            self.server.log(message, lsp.MessageType.Warning)

    async def sessions(
        self, limit: int, state: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Remote sessions in the LSP shape (marked with ``remote``), or why there are none."""
        if not self.server.settings.agent.url:
            return [], None
        await import_off_loop("ktl_lsp.gateway.remote")
        from ktl_lsp.gateway.remote import RemoteError, RemoteTlsRefused

        filters = {"state": state} if state in ("running", "done", "error") else {}
        try:
            remote = self.connect()
            if remote is None:
                return [], None
            found = await remote.list_sessions(limit=limit, **filters)
        except RemoteTlsRefused as exc:
            self._tls_refused(str(exc), show=True)
            return [], str(exc)
        except RemoteError as exc:
            return [], str(exc)
        self._told = None  # a refusal that comes back later is told again
        return [{**s.to_lsp(), "remote": remote.url} for s in found], None

    async def _open(self, a: AttachArgs) -> tuple[RemoteGateway, Session]:
        """The gateway client for ``a`` and the remote session as it is; ArgumentError says
        why not (a client made for this attach is closed then)."""
        await import_off_loop("ktl_lsp.gateway.remote")
        from ktl_lsp.gateway.remote import RemoteError, RemoteRefused, RemoteTlsRefused

        remote = None
        try:
            remote = self.connect(a.reveal)
            if remote is None:
                raise ArgumentError("no remote gateway is configured (setting agent.url)")
            return remote, await remote.get(a.sessionId)
        except RemoteError as exc:
            if remote is not None and remote is not self.gateway:
                await remote.close()
            if isinstance(exc, RemoteTlsRefused):
                self._tls_refused(str(exc), show=False)  # the command's error shows it
            if isinstance(exc, RemoteRefused):
                raise ArgumentError(f"cannot attach to {a.sessionId}: {exc}") from exc
            raise ArgumentError(str(exc)) from exc

    @command("ktl.session.attach")
    async def attach(self, a: AttachArgs) -> dict[str, Any]:
        local = await self.host.attach(a.sessionId, self.runs.watcher(a))
        if local is not None:
            screen = await self.host.screen_from(local.id)
            return {**(await self.runs.answer(local, a.detach)), "screenFromSeq": screen}
        remote, first = await self._open(a)
        own = remote is not self.gateway  # a revealing client, made for this attach
        scrubber = None
        if not a.reveal:
            # A ktl-agent gateway sends secrets as recorded: redact here too.
            redaction = self.server.manager.outgoing_redaction()
            assert redaction is not None  # None only when revealing
            await asyncio.to_thread(well_known)  # detect-secrets' import, off the loop
            scrubber = Scrubber.of(redaction)
            first = scrub_session(first, redaction.redactor())

        async def work(live: LiveSession) -> TaskOutcome:
            try:
                return await _mirror(self.server, remote, first, live, a.fromSeq, scrubber)
            finally:
                if own:
                    await remote.close()

        spec = RunSpec(
            argv=[],
            command=str(first.meta.get("command") or first.title),
            kind="remote",
            title=f"attach: {first.title}"[:200],
            meta={**first.meta, "remote": remote.url, "remoteSessionId": first.id},
            tags=dict(first.tags),
        )
        live = self.server.manager.start_task(spec, work)
        return await self.runs.follow(live, a, a.detach)


async def _mirror(
    ls: KtlServer,
    remote: RemoteGateway,
    first: Session,
    live: LiveSession,
    from_seq: int,
    scrubber: Scrubber | None,
) -> TaskOutcome:
    extra = {"remote": remote.url, "remoteSessionId": first.id}
    async for item in _items(remote, first.id, from_seq, scrubber):
        if item.frame is not None:
            f = item.frame
            if f.type is FrameType.OUTPUT:
                live.on_output(f.data, "")
            elif f.type is FrameType.RESIZE:
                live.emit(FrameType.RESIZE, f.data)
            else:
                live.event(remote_frame=str(f.type), seq=f.seq)
        elif item.dropped is not None:
            lo, hi = item.dropped
            live.event(remote_dropped={"from": lo, "to": hi})
        elif item.reconnecting is not None:
            live.event(remote="reconnecting", reason=item.reconnecting)
            ls.log(
                f"[{live.id[:8]}] connection to {remote.url} lost: {item.reconnecting}",
                lsp.MessageType.Info,
            )
        elif item.end is not None:
            end = item.end
            state = end.state if end.state.final else State.DONE
            return TaskOutcome(state=state, exit_code=end.exit_code, error=end.error, extra=extra)
    return TaskOutcome(extra=extra)


async def _items(
    remote: RemoteGateway, session_id: str, from_seq: int, scrubber: Scrubber | None
) -> AsyncIterator[TailItem]:
    """The remote tail; with ``scrubber``, its frames redacted as one stream (frames held for
    the output after them go out with time, ``Paced``, or before a gap or the end)."""
    if scrubber is None:
        async for item in remote.tail(session_id, from_seq):
            yield item
        return
    from ktl_lsp.gateway.remote import TailItem

    queue: asyncio.Queue[TailItem | Exception | None] = asyncio.Queue(maxsize=256)

    async def pump() -> None:
        try:
            async for item in remote.tail(session_id, from_seq):
                await queue.put(item)
        except Exception as exc:  # handed to the reader, raised there
            await queue.put(exc)
            return
        await queue.put(None)

    task = asyncio.create_task(pump())
    paced = Paced(scrubber)
    try:
        while True:
            try:
                got = await asyncio.wait_for(queue.get(), paced.timeout(None))
            except TimeoutError:
                for f in paced.due():  # what is held goes out as it is known
                    yield TailItem(frame=f)
                continue
            if isinstance(got, Exception):
                raise got
            if got is not None and got.frame is not None:
                for f in paced.push(got.frame):
                    yield TailItem(frame=f)
                continue
            for f in scrubber.flush():
                yield TailItem(frame=f)
            if got is None:
                return
            if got.dropped is not None:
                scrubber.prime(b"")  # the output around a gap is not one stream
            if got.dropped or got.reconnecting or got.end or got.ended:
                yield got
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
