"""``ktl.session.replay`` and ``replayUrl`` in results: the gateway, started on first need.

The gateway runs in the language server's own loop. Replay links carry a one-time sign-in
code, never the store's token, so a link left in a terminal scrollback or a browser history
cannot be used again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from ktl_lsp.aio import background, import_off_loop
from ktl_lsp.lsp.arguments import ArgumentError
from ktl_lsp.lsp.feature import Feature, NoArgs, command
from ktl_lsp.lsp.server import KtlServer

if TYPE_CHECKING:  # aiohttp costs ~200 ms to import: only when the gateway first starts
    from ktl_lsp.gateway import Gateway
    from ktl_lsp.sessions.manager import SessionManager

log = logging.getLogger(__name__)


@dataclass
class ReplayArgs:
    sessionId: str


class Replay(Feature):
    """The in-process gateway and the links into its replay UI."""

    def __init__(self, server: KtlServer) -> None:
        self.server = server
        self.gateway: Gateway | None = None
        self._lock = asyncio.Lock()
        self.failed: str | None = None

    async def prepare(self) -> None:
        """Loads the gateway's code (aiohttp: ~250 ms) and builds its app in the background
        after `initialized`, so the first session's `replayUrl` waits for neither. Nothing is
        bound or opened: a window that never runs anything serves nothing."""
        if self.server.settings.gateway.enabled:
            await import_off_loop("ktl_lsp.gateway", "ktl_lsp.gateway.server")
            self.server.when_sessions_open(self._prepare_app)

    def _prepare_app(self, manager: SessionManager) -> None:
        background(self._build(), "ktl-prepare-gateway-app")

    async def _build(self) -> None:
        async with self._lock:
            if self.gateway is None:
                gateway = self._new_gateway()
                await asyncio.to_thread(gateway.prepare)
                self.gateway = gateway

    def _new_gateway(self) -> Gateway:
        from ktl_lsp.gateway import Gateway
        from ktl_lsp.gateway.options import GatewayOptions

        settings = self.server.settings.gateway
        return Gateway(
            self.server.manager,
            self.server.store_path,
            GatewayOptions(host=settings.host, port=settings.port),
        )

    async def ensure(self) -> Gateway | None:
        if self.gateway is not None and self.gateway.running:
            return self.gateway
        if self.failed is not None or not self.server.settings.gateway.enabled:
            return None
        await import_off_loop("ktl_lsp.gateway", "ktl_lsp.gateway.server")
        async with self._lock:
            if self.gateway is not None and self.gateway.running:
                return self.gateway
            if self.failed is None:
                gateway = self.gateway or self._new_gateway()
                settings = self.server.settings.gateway
                problem = await self._start(gateway)
                if problem and settings.port:
                    # The configured port is taken (another window?): any free port will do.
                    gateway.options.port = 0
                    problem = await self._start(gateway)
                if problem:
                    self.failed = problem
                    self.server.notice(f"ktl: the replay gateway could not start: {problem}")
                    return None
                self.gateway = gateway
        # Prepared is not serving: a gateway that failed to start has no links to give.
        return self.gateway if self.gateway is not None and self.gateway.running else None

    @staticmethod
    async def _start(gateway: Gateway) -> str | None:
        from ktl_lsp.gateway import GatewayConfigError

        try:
            await gateway.start()
        except GatewayConfigError as exc:
            return str(exc)
        return None

    @property
    def serving(self) -> bool:
        return self.gateway is not None and self.gateway.running

    async def url(self, session_id: str) -> str | None:
        """A replay link, or None: a result never fails because the gateway cannot start."""
        gateway = await self._ensured()
        return gateway.replay_url(session_id) if gateway is not None else None

    def start_soon(self) -> None:
        """Starts the gateway beside a session that will want a link when it ends (binding
        takes ~1 ms the first command need not wait for)."""
        if not self.serving and self.failed is None and self.server.settings.gateway.enabled:
            background(self._ensured(), "ktl-start-gateway")

    async def _ensured(self) -> Gateway | None:
        try:
            return await self.ensure()
        except Exception as exc:  # contained: replay is a convenience on top of the result
            log.exception("replay gateway")
            self.failed = self.failed or str(exc)
            return None

    @command("ktl.session.replay")
    async def replay(self, a: ReplayArgs) -> dict[str, Any]:
        manager = self.server.manager
        session = await manager.find(a.sessionId)
        url = await self.url(session.id)
        if url is None:
            raise ArgumentError(
                f"the replay gateway is not available: {self.failed or 'disabled in settings'}"
            )
        return {"url": url}

    @command("ktl.session.openReplay")
    async def open_replay(self, a: ReplayArgs) -> dict[str, Any]:
        """Opens the replay in the user's browser (window/showDocument), for lenses and menus."""
        result = await self.replay(a)
        opened = False
        caps = self.server.client_capabilities
        window = caps.window if caps else None
        if window and window.show_document and window.show_document.support:
            shown = await self.server.window_show_document_async(
                lsp.ShowDocumentParams(uri=result["url"], external=True)
            )
            opened = bool(shown and shown.success)
        return {**result, "opened": opened}

    @command("ktl.gateway.rotateToken")
    async def rotate_token(self, _: NoArgs) -> dict[str, Any]:
        """A new gateway token for this store; every gateway serving it switches at once."""
        from ktl_lsp.gateway.auth import rotate_token, token_path

        try:
            await asyncio.to_thread(rotate_token, self.server.store_path)
        except OSError as exc:
            raise ArgumentError(f"cannot rotate the gateway token: {exc}") from exc
        return {"path": str(token_path(self.server.store_path))}
