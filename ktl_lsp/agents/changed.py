"""Resource list-changed notifications when a session starts or ends, so a client that shows
``ktl://sessions/...`` resources lists them again: at once for this process's sessions, within
``POLL_S`` for those of other processes on the store (the editor's language server, ``ktl-lsp
run``), read from the store while a client is connected.

Both eras of the protocol are told. A 2026-07-28 client opens ``subscriptions/listen``: the
event goes on the SDK's subscription bus. A client of the ``initialize`` handshake gets
``notifications/resources/list_changed`` (the SDK's ``send_resource_list_changed``) on its
connection: a middleware keeps, per connection, the ``ServerSession`` of its latest request,
and forgets a connection once telling it fails. Starts and ends that come close together are
told once. The agents' own calls are not resources and tell nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.subscriptions import InMemorySubscriptionBus, ResourcesListChanged
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ktl_lsp.agents.tools import AGENT_KIND
from ktl_lsp.sessions.bus import Item, StateChange
from ktl_lsp.sessions.manager import SessionManager

#: Starts and ends within this are told as one change.
COALESCE_S = 0.05
#: Sessions whose last state is remembered (to tell a start or end from other saves).
REMEMBERED = 1000
#: How often the store is looked at for other processes' sessions starting and ending.
POLL_S = 1.0


class ListChanged:
    """MCP server middleware that remembers handshake-era connections, and the manager
    listener that tells every client."""

    def __init__(self, manager: SessionManager) -> None:
        #: The server's subscription bus (``MCPServer(subscriptions=...)``).
        self.bus = InMemorySubscriptionBus()
        #: The SDK's connection -> the ServerSession of its latest request.
        self.connections: dict[Any, Any] = {}
        self._states: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._manager = manager
        self._polling: asyncio.Task[None] | None = None
        self.stop = manager.listen(self._on_item)

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        session = getattr(ctx, "session", None)
        if session is not None and getattr(ctx, "protocol_version", None) in (
            HANDSHAKE_PROTOCOL_VERSIONS
        ):
            self.connections[getattr(session, "_connection", session)] = session
        if self._polling is None:
            self._polling = asyncio.get_running_loop().create_task(self._poll())
        return await call_next(ctx)

    async def _poll(self) -> None:
        """Tells of sessions other processes start and end (this one's are heard at once)."""
        seen = None
        while True:
            with contextlib.suppress(Exception):  # a store that fails: try again later
                now = await self._manager.fingerprint(AGENT_KIND)
                if seen is not None and now != seen:
                    self._soon()
                seen = now
            await asyncio.sleep(POLL_S)

    def _on_item(self, item: Item) -> None:
        if not isinstance(item, StateChange) or item.session.kind == AGENT_KIND:
            return
        s = item.session
        state = str(s.state)
        if self._states.get(s.id) == state:
            return
        if len(self._states) >= REMEMBERED:
            self._states.clear()
        self._states[s.id] = state
        with contextlib.suppress(RuntimeError):  # no loop: nobody to tell
            self._soon()

    def _soon(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._tell())

    async def _tell(self) -> None:
        await asyncio.sleep(COALESCE_S)
        self._task = None
        await self.bus.publish(ResourcesListChanged())
        for connection, session in list(self.connections.items()):
            try:
                await session.send_resource_list_changed()
            except Exception:  # a connection that went away is forgotten
                self.connections.pop(connection, None)
