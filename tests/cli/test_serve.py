"""`ktl-lsp serve` as its own process."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx

from ktl_lsp.gateway.auth import token_path
from tests.cli.conftest import KTL_LSP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(store: Path, listen: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        KTL_LSP, "--store", str(store), "serve", "--listen", listen, stderr=asyncio.subprocess.PIPE
    )


async def test_serve_process(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    port = _free_port()
    proc = await _serve(store, f"127.0.0.1:{port}")
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        while not any("sign in once with" in x for x in lines):
            lines.append((await asyncio.wait_for(proc.stderr.readline(), 20)).decode())
        assert any(f"serving {store} on http://127.0.0.1:{port}/ui/" in x for x in lines)
        link = (
            next(x for x in lines if "sign in once with" in x)
            .split("sign in once with ")[1]
            .strip()
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/api/v1/mirror/sessions")).status_code == 401
            token = token_path(store).read_text().strip()
            ok = await http.get(
                "/api/v1/mirror/sessions", headers={"Authorization": f"Bearer {token}"}
            )
            assert ok.json() == {"sessions": []}
            assert (await http.get(link)).status_code == 303
    finally:
        proc.terminate()
        await proc.wait()
    refused = await _serve(store, "0.0.0.0:0")
    _, err = await refused.communicate()
    assert refused.returncode == 2 and b"without TLS" in err
