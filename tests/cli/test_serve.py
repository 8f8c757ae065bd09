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


async def _serve(
    store: Path, listen: str, *flags: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        KTL_LSP,
        "--store",
        str(store),
        "serve",
        "--listen",
        listen,
        *flags,
        stderr=asyncio.subprocess.PIPE,
        env=env,
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


async def test_serve_takes_the_gateway_timeouts_from_its_flags(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        KTL_LSP,
        "--store",
        str(store),
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--idle-timeout",
        "0.5",
        "--header-timeout",
        "0.5",
        "--event-cache",
        "4",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        while b"sign in once with" not in await asyncio.wait_for(proc.stderr.readline(), 20):
            pass
        # A connection that never sends its request head is closed well before the default 10 s.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /api/v1/mirror/sessions HTTP/1.1\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 8) == b""
        writer.close()
        # A kept-alive connection idle after its answer is closed well before the default 60 s.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 8)
        assert head.startswith(b"HTTP/1.1 ")
        rest = await asyncio.wait_for(reader.read(), 8)  # the body, then the close
        assert reader.at_eof(), rest
        writer.close()
    finally:
        proc.terminate()
        await proc.wait()


async def test_serve_refuses_bad_timeouts_and_sizes(tmp_path: Path) -> None:
    for flag, value in (
        ("--idle-timeout", "0"),
        ("--header-timeout", "x"),
        ("--event-cache", "-1"),
    ):
        proc = await asyncio.create_subprocess_exec(
            KTL_LSP,
            "--store",
            str(tmp_path / "s.db"),
            "serve",
            flag,
            value,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        assert proc.returncode == 2, (flag, err)
        assert flag.encode() in err and b"expected" in err
