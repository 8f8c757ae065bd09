"""A real gateway on a loopback port over a real store, and an httpx client for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio

from ktl_lsp.gateway import Gateway
from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.model import Session


@dataclass
class Served:
    manager: SessionManager
    gateway: Gateway
    http: httpx.AsyncClient  # authenticated
    anon: httpx.AsyncClient  # no credentials
    token: str

    async def run(self, command: str, **kw: object) -> Session:
        live = self.manager.start(RunSpec(argv=["sh", "-c", command], command=command, **kw))  # type: ignore[arg-type]
        session = await live.done
        assert self.manager.store is not None
        await self.manager.store.flush()
        return session

    async def raw(self, request: bytes, timeout: float = 10) -> bytes:
        """Sends ``request`` as it is on a new connection; returns all the server answered."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.gateway.port)
        try:
            writer.write(request)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), timeout)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, options: GatewayOptions | None = None) -> AsyncIterator[Served]:
    store = tmp_path / "sessions.db"
    manager = SessionManager.open(store)
    gateway = Gateway(manager, store, options or GatewayOptions())
    await gateway.start()
    token = gateway.auth.token
    assert token
    try:
        async with (
            httpx.AsyncClient(
                base_url=gateway.base_url, headers={"Authorization": f"Bearer {token}"}
            ) as http,
            httpx.AsyncClient(base_url=gateway.base_url) as anon,
        ):
            yield Served(manager, gateway, http, anon, token)
    finally:
        await gateway.stop()
        manager.close()


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as s:
        yield s
