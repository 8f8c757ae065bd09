"""Running the gateway: in the language server's loop (started on first need) or on its own.

A non-loopback bind needs TLS and a token: the gateway serves terminal output that may hold
secrets, so it never goes on the network in the clear or open.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ktl_lsp.gateway.app import Handler, build_app
from ktl_lsp.gateway.auth import Auth, load_or_create_token, token_path, used_codes_dir
from ktl_lsp.gateway.http import AUTH
from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.gateway.tls import require_client_certificates

log = logging.getLogger(__name__)

#: How long stopping waits for requests still being answered (open tails are cut).
STOP_GRACE_S = 1.0


class GatewayConfigError(Exception):
    """The gateway cannot be started as configured; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


class HeaderDeadline:
    """Closes connections that have not sent a complete request head ``seconds`` after they
    were accepted, so slow or silent clients cannot hold sockets (slowloris).

    aiohttp bounds the wait for a request only by its keep-alive timeout, counted from the
    connection's start or its last answer; this makes the first wait shorter. A connection
    counts as started once a request reaches the app (the middleware sees it).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._seen: dict[RequestHandler, float] = {}
        self._started: set[RequestHandler] = set()
        self._task: asyncio.Task[None] | None = None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._started.add(request.protocol)
        return await handler(request)

    def start(self, server: web.Server) -> None:
        if self.seconds > 0:
            self._task = asyncio.get_running_loop().create_task(self._sweep(server))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sweep(self, server: web.Server) -> None:
        loop = asyncio.get_running_loop()
        tick = min(1.0, self.seconds / 4)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            open_now = set(server.connections)
            self._started &= open_now
            self._seen = {c: t for c, t in self._seen.items() if c in open_now}
            for conn in open_now - self._started:
                if now - self._seen.setdefault(conn, now) >= self.seconds:
                    conn.force_close()


class Gateway:
    def __init__(
        self,
        manager: Any,
        store_path: Path,
        options: GatewayOptions | None = None,
        mount: Callable[[web.Application], None] | None = None,
    ) -> None:
        """``mount`` adds routes of its own (the MCP endpoint) behind the same middleware."""
        self.manager = manager
        self._mount = mount
        self.store_path = store_path
        self.options = options or GatewayOptions()
        self.auth = Auth(None)
        self._runner: web.AppRunner | None = None
        self._deadline: HeaderDeadline | None = None
        self.app: web.Application | None = None
        self._prepared: web.Application | None = None
        self.port = 0

    def _validate(self) -> ssl.SSLContext | None:
        o = self.options
        tls: ssl.SSLContext | None = None
        if o.tls_cert or o.tls_key:
            if not (o.tls_cert and o.tls_key):
                raise GatewayConfigError("--tls-cert and --tls-key go together")
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                tls.load_cert_chain(o.tls_cert, o.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise GatewayConfigError(f"cannot load the TLS certificate: {exc}") from exc
        if o.tls_client_ca is not None:
            if tls is None:
                raise GatewayConfigError("--tls-client-ca needs --tls-cert and --tls-key")
            try:
                require_client_certificates(tls, o.tls_client_ca)
            except (OSError, ssl.SSLError) as exc:
                raise GatewayConfigError(
                    f"cannot load the client CA {o.tls_client_ca}: {exc}"
                ) from exc
        if not is_loopback(o.host):
            if tls is None:
                raise GatewayConfigError(
                    f"refusing to serve sessions on {o.host} without TLS: pass --tls-cert and "
                    "--tls-key, or bind 127.0.0.1"
                )
            if o.token is not None and not o.token:
                raise GatewayConfigError(f"refusing to serve sessions on {o.host} without a token")
        return tls

    def prepare(self) -> None:
        """Builds the app before it is served (its routes' patterns compile: ~15 ms on a 2-core
        machine), in a worker thread: nothing is bound, read or written."""
        if self._prepared is None:
            self._prepared = self._build()

    def _build(self) -> web.Application:
        app = build_app(
            self.manager,
            self.auth,
            allow_query_token=self.options.allow_query_token,
            cors_origins=self.options.cors_origins,
            event_cache_bytes=self.options.event_cache_bytes,
            bundle_max_bytes=self.options.bundle_max_bytes,
        )
        if self._mount is not None:
            self._mount(app)
        return app

    async def start(self) -> None:
        tls = self._validate()
        try:
            token = self.options.token or load_or_create_token(self.store_path)
        except OSError as exc:
            raise GatewayConfigError(
                f"cannot keep the gateway token beside {self.store_path}: {exc}"
            ) from exc
        # A token given on the command line is fixed; the store's token file may be rotated.
        self.auth = Auth(
            token,
            None if self.options.token else token_path(self.store_path),
            used_codes_dir(self.store_path),
        )
        app, self._prepared = self._prepared or self._build(), None
        app[AUTH] = self.auth  # a prepared app was built before the token was read
        deadline = HeaderDeadline(self.options.header_timeout_s)
        app.middlewares.insert(0, deadline.middleware)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handler_cancellation=True,
            keepalive_timeout=self.options.idle_timeout_s,
            # a tail of a running session never ends by itself: stopping cuts it after this
            # (aiohttp's default waited 60 s, holding up the editor's shutdown)
            shutdown_timeout=STOP_GRACE_S,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise GatewayConfigError(
                f"cannot listen on {self.options.host}:{self.options.port}: {exc}"
            ) from exc
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        assert self._runner.server is not None
        deadline.start(self._runner.server)
        self._deadline = deadline
        self.app = app
        self._write_info()
        log.info("gateway listening on %s", self.base_url)

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.options.tls_cert else "http"
        host = self.options.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    def replay_url(self, session_id: str) -> str:
        """A browser link that signs in once and then shows the session (no token in it)."""
        code = self.auth.mint_code()
        target = f"/ui/s/{quote(session_id, safe='')}"
        if not code:
            return self.base_url + target
        return f"{self.base_url}/ui/login?code={quote(code)}&next={quote(target)}"

    def info_path(self) -> Path:
        return self.store_path.with_name(self.store_path.name + ".gateway.json")

    def _write_info(self) -> None:
        # Lets `ktl-lsp sessions replay` find a running gateway; holds no secret.
        with contextlib.suppress(OSError):
            self.info_path().write_text(json.dumps({"url": self.base_url, "pid": os.getpid()}))

    async def stop(self) -> None:
        if self._deadline is not None:
            await self._deadline.stop()
            self._deadline = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.app = None
            try:
                info = json.loads(self.info_path().read_text())
                if info.get("pid") == os.getpid():
                    self.info_path().unlink()
            except (OSError, ValueError):
                pass
