"""A remote gateway (ours or ktl-agent's): its sessions in the list, and ``ktl.session.attach``.

Attaching records the remote session into a local one as it streams (kind ``remote``), so it is
shown like any local session (progress, terminal data, cancel stops watching) and kept after.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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

if TYPE_CHECKING:  # httpx is imported when a remote gateway is first used
    from ktl_lsp.gateway.remote import RemoteGateway


@dataclass
class AttachArgs(StartArgs):
    sessionId: str  #: a session running in the session host, else one of the remote gateway
    fromSeq: int = 1


class RemoteSessions(Feature):
    """The configured remote gateway: its sessions in the list, and attaching to one."""

    def __init__(self, server: KtlServer, runs: Runs, host: SessionHost) -> None:
        self.server = server
        self.runs = runs
        self.host = host
        self.gateway: RemoteGateway | None = None

    def connect(self) -> RemoteGateway | None:
        """The client for the ``agent`` setting (rebuilt when the URL changes), or None."""
        agent = self.server.settings.agent
        if not agent.url:
            return None
        from ktl_lsp.gateway.remote import RemoteGateway

        if self.gateway is None or self.gateway.url != agent.url.rstrip("/"):
            token = agent.token or os.environ.get("KTL_AGENT_TOKEN")
            self.gateway = RemoteGateway(agent.url, token)
        return self.gateway

    async def sessions(
        self, limit: int, state: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Remote sessions in the LSP shape (marked with ``remote``), or why there are none."""
        if not self.server.settings.agent.url:
            return [], None
        await import_off_loop("ktl_lsp.gateway.remote")
        remote = self.connect()
        if remote is None:
            return [], None
        from ktl_lsp.gateway.remote import RemoteError

        filters = {"state": state} if state in ("running", "done", "error") else {}
        try:
            found = await remote.list_sessions(limit=limit, **filters)
        except RemoteError as exc:
            return [], str(exc)
        return [{**s.to_lsp(), "remote": remote.url} for s in found], None

    @command("ktl.session.attach")
    async def attach(self, a: AttachArgs) -> dict[str, Any]:
        local = await self.host.attach(a.sessionId, self.runs.watcher(a))
        if local is not None:
            screen = await self.host.screen_from(local.id)
            return {**(await self.runs.answer(local, a.detach)), "screenFromSeq": screen}
        await import_off_loop("ktl_lsp.gateway.remote")
        from ktl_lsp.gateway.remote import RemoteError, RemoteRefused

        remote = self.connect()
        if remote is None:
            raise ArgumentError("no remote gateway is configured (setting agent.url)")
        try:
            first = await remote.get(a.sessionId)
        except RemoteRefused as exc:
            raise ArgumentError(f"cannot attach to {a.sessionId}: {exc}") from exc
        except RemoteError as exc:
            raise ArgumentError(str(exc)) from exc

        async def work(live: LiveSession) -> TaskOutcome:
            return await _mirror(self.server, remote, first, live, a.fromSeq)

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
    ls: KtlServer, remote: RemoteGateway, first: Session, live: LiveSession, from_seq: int
) -> TaskOutcome:
    extra = {"remote": remote.url, "remoteSessionId": first.id}
    async for item in remote.tail(first.id, from_seq):
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
