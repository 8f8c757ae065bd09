"""Fixtures for the Kubernetes features: the loopback API server (tests/k8s_api) in this process
and a ktl-lsp whose kubeconfig points at it (plus a context "gone" whose cluster is not there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.conftest import Ktl, StartKtl
from tests.k8s_api import FakeApi, write_kubeconfig


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeApi]:
    async with FakeApi() as server:
        yield server


@pytest_asyncio.fixture
async def k8s(start_ktl: StartKtl, api: FakeApi, tmp_path: Path) -> Ktl:
    config = write_kubeconfig(
        tmp_path / "kubeconfig", api, extra_contexts={"gone": "http://127.0.0.1:9"}
    )
    return await start_ktl(env={"KUBECONFIG": str(config)})
