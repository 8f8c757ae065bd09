"""The MCP server's Streamable HTTP transport under ``/mcp`` on the gateway's own aiohttp app.

The SDK's transport is an ASGI application; each request to ``/mcp`` is handed to it through a
small ASGI bridge, after the gateway's middleware has done what it does for every route (the
token or cookie, the cross-site check, the header deadline). So ``/mcp`` has the gateway's
auth, TLS, loopback default and port, and no second server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import Any

from aiohttp import web
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from ktl_lsp.gateway.http import PRINCIPAL
from ktl_lsp.sessions.provenance import REQUEST_PRINCIPAL

PATH = "/mcp"
#: The largest request body accepted (one JSON-RPC message).
MAX_BODY = 4 << 20

Message = MutableMapping[str, Any]


class McpEndpoint:
    """``/mcp``: owns the SDK's session manager, whose task group lives in its own task."""

    def __init__(self, server: MCPServer, host: str) -> None:
        server.streamable_http_app(streamable_http_path=PATH, host=host)
        self.sessions: StreamableHTTPSessionManager = server.session_manager
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def mount(self, app: web.Application) -> None:
        app.router.add_route("*", PATH, self.handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._cleanup)

    async def _start(self, _: web.Application) -> None:
        started = asyncio.get_running_loop().create_future()

        async def run() -> None:
            async with self.sessions.run():
                started.set_result(None)
                await self._stop.wait()

        self._task = asyncio.create_task(run(), name="mcp-http")
        await asyncio.wait({started, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            self._task.result()  # raises what stopped it

    async def _cleanup(self, _: web.Application) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
            self._task = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="request body too large\n")
        body = await request.read() if request.can_read_body else b""
        gone = asyncio.Event()
        sent_body = False
        response: web.StreamResponse | None = None

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal response
            if message["type"] == "http.response.start":
                response = web.StreamResponse(status=message["status"])
                for name, value in message.get("headers") or []:
                    key = name.decode("latin-1")
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        response.headers.add(key, value.decode("latin-1"))
                await response.prepare(request)
            elif message["type"] == "http.response.body" and response is not None:
                data = message.get("body") or b""
                if data:
                    await response.write(data)
                if not message.get("more_body"):
                    await response.write_eof()

        try:
            await self.sessions.handle_request(_scope(request), receive, send)
        finally:
            gone.set()
        if response is None:
            return web.Response(status=500, text="the MCP transport gave no answer\n")
        return response


def _scope(request: web.Request) -> dict[str, Any]:
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode(),
        "query_string": request.query_string.encode(),
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if peer else None,
        "server": tuple(sock[:2]) if sock else None,
        # the token the gateway accepted: recorded with each call (agents/record.py)
        "state": {REQUEST_PRINCIPAL: request.get(PRINCIPAL)},
    }
