"""Shared fixtures: a real ktl-lsp process driven through pytest-lsp over stdio."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.k8s_api import FakeApi, write_kubeconfig

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Recorder:
    """What the server pushed to the client, besides what pytest-lsp records itself."""

    data: dict[str, list[str]] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)
    waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = field(default_factory=list)

    def text(self, session_id: str) -> str:
        return "".join(self.data.get(session_id, []))

    def poke(self) -> None:
        for cond, fut in list(self.waiters):
            if not fut.done() and cond():
                fut.set_result(None)

    async def until(self, cond: Callable[[], bool], timeout: float = 10) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((cond, fut))
        self.poke()
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self.waiters.remove((cond, fut))


@dataclass
class Ktl:
    client: LanguageClient
    store: Path
    rec: Recorder
    server_capabilities: lsp.ServerCapabilities | None = None
    """What the server's initialize result advertised."""

    async def cmd(self, command: str, args: Any = None) -> Any:
        arguments = [] if args is None else [args]
        return await self.client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command=command, arguments=arguments)
        )

    def start(self, command: str, args: Any = None) -> asyncio.Task[Any]:
        return asyncio.ensure_future(self.cmd(command, args))

    def logs(self) -> str:
        return "\n".join(m.message for m in self.client.log_messages)


def server_command(store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ktl_lsp", "--store", str(store), *extra]


StartKtl = Callable[..., Awaitable[Ktl]]


@pytest_asyncio.fixture
async def start_ktl(tmp_path: Path) -> AsyncIterator[StartKtl]:
    """Starts ktl-lsp; keyword arguments choose client capabilities and options."""
    started: list[Ktl] = []

    async def start(
        session_data: bool = True,
        progress: bool = True,
        options: dict[str, Any] | None = None,
        store: Path | None = None,
        env: dict[str, str] | None = None,
        text_document: lsp.TextDocumentClientCapabilities | None = None,
    ) -> Ktl:
        store = store or tmp_path / "sessions.db"
        config = ClientServerConfig(
            server_command=server_command(store),
            server_env={**os.environ, **(env or {})},
        )
        client = await config.start()
        rec = Recorder()

        @client.feature("ktl/sessionData")
        def on_data(params: Any) -> None:
            rec.data.setdefault(params.sessionId, []).append(params.data)
            rec.poke()

        @client.feature("ktl/sessionState")
        def on_state(params: Any) -> None:
            rec.states.append(
                {
                    "sessionId": params.sessionId,
                    "state": params.state,
                    "exitCode": getattr(params, "exitCode", None),
                }
            )
            rec.poke()

        init_options = {"sessionData": session_data, **(options or {})}
        result = await client.initialize_session(
            lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(
                    window=lsp.WindowClientCapabilities(
                        work_done_progress=progress,
                        show_document=lsp.ShowDocumentClientCapabilities(support=True),
                    ),
                    text_document=text_document,
                ),
                root_uri=tmp_path.as_uri(),
                initialization_options=init_options,
            )
        )
        ktl = Ktl(client, store, rec, result.capabilities)
        started.append(ktl)
        return ktl

    yield start
    for ktl in started:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ktl.client.shutdown_session(), 10)
        # A test that killed its server leaves a half-read message behind: that is expected.
        with contextlib.suppress(asyncio.IncompleteReadError):
            await ktl.client.stop()


@pytest_asyncio.fixture
async def ktl(start_ktl: StartKtl) -> Ktl:
    return await start_ktl()


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeApi]:
    """The loopback Kubernetes API server (tests/k8s_api) in this process."""
    async with FakeApi() as server:
        yield server


@pytest_asyncio.fixture
async def k8s(start_ktl: StartKtl, api: FakeApi, tmp_path: Path) -> Ktl:
    """A ktl-lsp whose kubeconfig points at ``api`` (plus a context "gone" that is not there)."""
    config = write_kubeconfig(
        tmp_path / "kubeconfig", api, extra_contexts={"gone": "http://127.0.0.1:9"}
    )
    return await start_ktl(env={"KUBECONFIG": str(config)})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
