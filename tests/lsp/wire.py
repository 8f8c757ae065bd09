"""A raw JSON-RPC peer for ``python -m ktl_lsp`` over pipes.

pytest-lsp always reads the server's stdout and always frames its messages well; the transport
tests need to send broken frames and to stop reading on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import server_command


class Wire:
    """One server process; stderr (its log) goes to ``log_path``."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self.notifications: list[dict[str, Any]] = []
        #: Responses to requests other than the one awaited (sent raw with `send_bytes`).
        self.responses: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    @classmethod
    async def start(cls, store: Path, *extra: str, env: dict[str, str] | None = None) -> Wire:
        log_path = store.with_name("server.log")
        with open(log_path, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *server_command(store, *extra),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env={**os.environ, **(env or {})},
                limit=1 << 20,
            )
        return cls(proc, log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        await self.send_bytes(b"Content-Length: %d\r\n\r\n%b" % (len(body), body))

    async def read(self) -> dict[str, Any]:
        """The next message from the server."""
        assert self.proc.stdout is not None
        length = 0
        while (line := await self.proc.stdout.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if not length:
            raise EOFError("the server closed its stdout")
        message: dict[str, Any] = json.loads(await self.proc.stdout.readexactly(length))
        return message

    async def request(self, method: str, params: Any, timeout: float = 20) -> dict[str, Any]:
        """Sends a request and returns its response; notifications meanwhile are kept, requests
        from the server answered with null."""
        msg_id = next(self._ids)
        await self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        async with asyncio.timeout(timeout):
            while True:
                message = await self.read()
                if message.get("id") == msg_id and "method" not in message:
                    return message
                if "method" in message and "id" in message:
                    await self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                elif "method" in message:
                    self.notifications.append(message)
                else:
                    self.responses.append(message)

    async def initialize(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"processId": None, "rootUri": None, "capabilities": {}}
        answer = await self.request(
            "initialize", {**params, "initializationOptions": options or {}}
        )
        await self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return answer

    async def command(self, command: str, args: Any = None) -> dict[str, Any]:
        arguments = [] if args is None else [args]
        return await self.request(
            "workspace/executeCommand", {"command": command, "arguments": arguments}
        )

    async def close(self) -> None:
        """Asks the server to exit; kills it if it does not within a few seconds."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.request("shutdown", None), 5)
            await self.send({"jsonrpc": "2.0", "method": "exit"})
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
