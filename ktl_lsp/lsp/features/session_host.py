"""Sessions that outlive the editor (docs/protocol.md): with ``sessions.persist`` on, terminal
sessions run in the session host (``ktl_lsp/host``), started on first need, and a language
server started later re-attaches to the ones still running there."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

from ktl_lsp.errors import UserError
from ktl_lsp.host.client import HostClient, connect
from ktl_lsp.host.protocol import HostError, HostPaths, spec_to_wire
from ktl_lsp.lsp.feature import Feature
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.errors import RecordingOff, UnknownSession
from ktl_lsp.sessions.manager import LiveSession, RunSpec
from ktl_lsp.sessions.model import State
from ktl_lsp.sessions.timeline import DEFAULT_BUDGET, IDLE_MS

Adopted = Callable[[LiveSession], None]


class SessionHost(Feature):
    """The connection to the session host of this server's store (one, made on first need)."""

    def __init__(self, server: KtlServer) -> None:
        self.server = server
        self.client: HostClient | None = None
        self._connecting: asyncio.Lock | None = None
        self._bringing: asyncio.Lock | None = None

    def persists(self) -> bool:
        """Whether sessions that can outlive the editor run in the host (``sessions.persist``)."""
        return self.server.settings.sessions.persist and os.name == "posix"

    def takes(self, spec: RunSpec) -> bool:
        """Whether ``spec`` runs in the host: a local process, with ``sessions.persist`` on."""
        return self.persists() and spec.opener is None

    async def _connected(self, start: bool) -> HostClient | None:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            # A host stopped a moment ago: its dropped connection is not tried again here,
            # a new host is started (or connected to) instead.
            if self.client is not None and await self.client.usable():
                return self.client
            store = self.server.store_path
            timeout = self.server.settings.sessions.host_idle_timeout
            conn = await connect(HostPaths.of(store), store, start, timeout)
            if conn is None:
                return None
            self.client = HostClient(self.server.manager, *conn, HostPaths.of(store))
            return self.client

    async def _started(self) -> HostClient:
        client = await self._connected(start=True)
        assert client is not None
        return client

    def _redact_rules(self) -> dict[str, Any]:
        redact = self.server.settings.redact
        return {"enabled": redact.enabled, "patterns": redact.rules()}

    async def launch(self, spec: RunSpec, adopted: Adopted) -> LiveSession:
        """Starts ``spec`` in the host (starting the host if none runs)."""
        return await (await self._started()).run(spec, self._redact_rules(), adopted)

    async def port_forward(
        self, spec: RunSpec, request: dict[str, Any], adopted: Adopted
    ) -> tuple[LiveSession, list[dict[str, Any]] | None]:
        """Starts a port-forward in the host (``request``: ``ktl_lsp/host/forwards.py``); the
        session, and its URLs once its ports listen (None: it ended first)."""
        client = await self._started()
        wire = {**request, "spec": spec_to_wire(spec), "redact": self._redact_rules()}
        live = await client.port_forward(wire, adopted)
        forwards = await client.forwards(live.id)
        if forwards is not None:
            live.session.meta["forwards"] = forwards  # as the host recorded it
        return live, forwards

    async def attach(self, session_id: str, adopted: Adopted) -> LiveSession | None:
        """The running session ``session_id`` (an id or prefix) of this store, shown here again;
        None when the store has no such session (it may be a remote gateway's)."""
        manager = self.server.manager
        try:
            sid = await manager.resolve_id(session_id)
        except UnknownSession:
            return None
        live = manager.live.get(sid)
        if live is not None and not live.done.done():
            adopted(live)
            return live
        session = await manager.get(sid)
        if session.state is not State.RUNNING:
            raise UserError(
                f"cannot attach to {sid}: it is {session.state} (its recording stays readable)"
            )
        client = await self._connected(start=False)
        if client is None:
            raise HostError(f"cannot attach to {sid}: no session host runs for this store")
        return await client.attach(sid, adopted)

    async def bring_here(self, session_id: str) -> None:
        """Attaches (without showing it) a session that runs in the host but not here yet, so
        input, resizes, signals and cancels reach it; anything else is left as it is."""
        if session_id in self.server.manager.live:
            return  # no await: keystrokes keep their order
        if self._bringing is None:
            self._bringing = asyncio.Lock()
        async with self._bringing:  # in turn: what was typed first is sent first
            if session_id in self.server.manager.live:
                return
            # Not one of the host's running sessions (ended, imported, unknown): the command
            # itself says why it cannot be done.
            with contextlib.suppress(UserError):
                await self.attach(session_id, lambda live: None)

    async def screen_from(self, session_id: str) -> int:
        """The frame to replay from so the terminal shows the screen as it is now (from the
        last clear, or enough lines to fill it: ``sessions/timeline.py``)."""
        manager = self.server.manager
        try:
            await manager.flush()
            tl = await manager.timeline(session_id, IDLE_MS)
            _, rows = tl.size_at(tl.last_seq)
            found = await manager.find_start(tl, tl.last_seq, rows, DEFAULT_BUDGET)
        except RecordingOff:
            return 1
        return max(1, found.start)
