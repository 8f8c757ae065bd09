"""Slow and idle connections are closed by the server; answers being streamed are not.

Slowloris: many connections that send part of a request line (or nothing, or a byte now and
then) and never finish it. The header timeout is made short here through GatewayOptions; the
waits below are bounded and nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.gateway.sse_client import SseParser
from ktl_lsp.sessions.manager import RunSpec
from tests.gateway.conftest import serving

OPTIONS = GatewayOptions(header_timeout_s=0.5, idle_timeout_s=1.5)
BOUND_S = 10  # far past both timeouts: a connection still open by then is not being closed


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (EOF or reset) within BOUND_S."""
    try:
        while await asyncio.wait_for(reader.read(4096), BOUND_S):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


async def _drip(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """A byte of header now and then, never the end of the head."""
    with contextlib.suppress(OSError):
        while not stop.is_set():
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(0.1)


async def test_slow_and_silent_connections_are_closed(tmp_path: Path) -> None:
    async with serving(tmp_path, OPTIONS) as served:
        port = served.gateway.port
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(30)]
        stop = asyncio.Event()
        drips = []
        for i, (_, writer) in enumerate(conns):
            if i % 3 == 0:
                continue  # connects and says nothing
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            if i % 3 == 2:
                drips.append(asyncio.create_task(_drip(writer, stop)))
        try:
            # Others are served meanwhile.
            assert (await served.anon.get("/healthz")).text == "ok"
            closed = await asyncio.gather(*(_closed_by_server(r) for r, _ in conns))
            assert all(closed), f"{closed.count(False)} of {len(conns)} slow connections left open"
        finally:
            stop.set()
            await asyncio.gather(*drips)
            for _, writer in conns:
                writer.close()
        assert (await served.http.get("/api/v1/sessions")).status_code == 200


async def test_an_idle_kept_alive_connection_is_closed(tmp_path: Path) -> None:
    async with serving(tmp_path, OPTIONS) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.gateway.port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND_S)
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
            assert await _closed_by_server(reader)
        finally:
            writer.close()


async def test_a_long_tail_outlives_both_timeouts(tmp_path: Path) -> None:
    """Heartbeats every second for several idle timeouts: the answer is not cut."""
    async with serving(tmp_path, OPTIONS) as served:
        live = served.manager.start(
            RunSpec(argv=["sh", "-c", "sleep 4; echo late"], command="sleep 4; echo late")
        )
        pings = 0
        parser = SseParser()
        late = False
        params = {"heartbeat_ms": "1000", "replay": "0"}
        async with served.http.stream(
            "GET", f"/api/v1/mirror/sessions/{live.id}/tail", params=params, timeout=20
        ) as r:
            assert r.status_code == 200
            async for chunk in r.aiter_text():
                for ev in parser.feed(chunk):
                    pings += ev.event == "ping"
                    late = late or (ev.event == "frame" and "bGF0ZQ" in ev.data)  # "late"
                    if ev.event == "end":
                        break
                else:
                    continue
                break
        await live.done
        assert pings >= 3 and late, (pings, late)
