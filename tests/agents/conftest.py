"""The MCP server as agents reach it: the real ``ktl-lsp mcp`` process (stdio) or a real
``ktl-lsp serve --mcp`` (HTTP), driven by the ``mcp`` SDK's own client; sessions made first by
``ktl-lsp run``."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, Implementation

from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.model import FrameType, State
from tests.cli.conftest import KTL_LSP, ktl_lsp

AGENT = Implementation(name="test-agent", version="1.0")


def run_session(store: Path, *argv: str, cwd: Path | None = None) -> str:
    """A session recorded by ``ktl-lsp run``; returns its id."""
    done = ktl_lsp("--store", str(store), "run", "--quiet", "--", *argv, cwd=cwd)
    listed = ktl_lsp("--store", str(store), "sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    newest = json.loads(listed.stdout)["sessions"][0]
    assert done.returncode == newest.get("exitCode", 0)
    return str(newest["sessionId"])


@asynccontextmanager
async def stdio_agent(
    store: Path, env: dict[str, str] | None = None, *flags: str
) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=KTL_LSP,
        args=["--store", str(store), "mcp", *flags],
        env={"KUBECONFIG": os.devnull, **(env or {})},
    )
    async with Client(params, client_info=AGENT) as client:
        yield client


@asynccontextmanager
async def silent_cluster(tmp_path: Path) -> AsyncIterator[Path]:
    """A kubeconfig whose API server accepts connections and never answers: calls hang."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kubeconfig = tmp_path / "silent-kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "silent",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "contexts": [{"name": "silent", "context": {"cluster": "c", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    async with server:
        try:
            yield kubeconfig
        finally:
            for writer in held:
                writer.close()


def answer(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(getattr(c, "text", "") for c in result.content)


async def record_big_session(store: Path, megabytes: int) -> str:
    """A finished session of ``megabytes`` MB of coloured 100-byte lines in ~64 KB frames,
    ending with ``the last line``; returns its id."""
    manager = SessionManager.open(store)
    live = manager.create(RunSpec(argv=["big"], kind="pty"))
    line = b"\x1b[36m" + b"x" * 90 + b"\x1b[0m\r\n"
    chunk = line * 655
    total = 0
    while total < megabytes << 20:
        live.emit(FrameType.OUTPUT, chunk)
        total += len(chunk)
    live.emit(FrameType.OUTPUT, b"the last line\r\n")
    manager.finish(live, State.DONE, exit_code=0)
    await manager.flush()
    manager.close()
    return live.id
