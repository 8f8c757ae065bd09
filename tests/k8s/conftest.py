"""Fixtures for the unit tests of ktl_lsp.k8s: the loopback API server and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from tests.k8s_api import FakeApi, write_kubeconfig


class Out:
    """An ``Output`` that keeps what a session would have recorded."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.events: list[dict[str, Any]] = []

    def write(self, text: str) -> None:
        self.chunks.append(text)

    def event(self, **fields: Any) -> None:
        self.events.append(fields)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


async def apply_as(cluster: Cluster, manager: str, path: str, body: dict[str, Any]) -> Any:
    """A server-side apply by another field manager (kubectl, a controller)."""
    _, answer = await cluster.request(
        "PATCH",
        path,
        [("fieldManager", manager)],
        body=body,
        content_type="application/apply-patch+yaml",
    )
    return answer


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeApi]:
    async with FakeApi() as server:
        yield server


@pytest_asyncio.fixture
async def kubeconfig(api: FakeApi, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", api)


@pytest_asyncio.fixture
async def cluster(kubeconfig: Path) -> AsyncIterator[Cluster]:
    c = Cluster(load_kubeconfig({"KUBECONFIG": str(kubeconfig)}))
    yield c
    await c.close()
