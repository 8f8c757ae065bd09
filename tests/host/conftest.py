"""The session host's tests: each gets a short private directory for its sockets, and every
host it started is stopped at its end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import pytest_asyncio

from ktl_lsp.host.protocol import HostPaths
from tests.conftest import Ktl, StartKtl

#: The language server's options for sessions that outlive it.
PERSIST = {"sessions": {"persist": True, "hostIdleTimeout": 30}}


def ktl_lsp(store: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ktl_lsp", "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def host_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """``KTL_LSP_HOST_DIR`` for this test (a socket path must stay under 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="ktl-host-")
    monkeypatch.setenv("KTL_LSP_HOST_DIR", directory)
    yield {"KTL_LSP_HOST_DIR": directory}
    for sock in Path(directory).glob("*.sock"):
        store = _store_of(sock, tmp_path)
        if store is not None:
            ktl_lsp(store, "host", "--stop")
    for log in Path(directory).glob("*.log"):
        print("HOSTLOG", log.read_text())
    shutil.rmtree(directory, ignore_errors=True)


class StartPersisting(Protocol):
    def __call__(
        self, store: Path, env: dict[str, str] | None = None, options: dict[str, Any] = ...
    ) -> Awaitable[Ktl]: ...


@pytest_asyncio.fixture
async def persisting(start_ktl: StartKtl, host_env: dict[str, str]) -> StartPersisting:
    """Starts the language server on ``store`` with ``sessions.persist`` on (by default) and
    this test's host directory."""

    async def start(
        store: Path, env: dict[str, str] | None = None, options: dict[str, Any] = PERSIST
    ) -> Ktl:
        return await start_ktl(store=store, options=options, env={**host_env, **(env or {})})

    return start


def _store_of(sock: Path, tmp_path: Path) -> Path | None:
    for store in tmp_path.glob("*.db"):
        if HostPaths.of(store).socket == sock:
            return store
    return None


def host_pid(store: Path) -> int | None:
    """The pid of the host serving ``store``, from ``ktl-lsp host --status --json``."""
    import json

    done = ktl_lsp(store, "host", "--status", "--json")
    status = json.loads(done.stdout)
    return int(status["pid"]) if status.get("running") else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
