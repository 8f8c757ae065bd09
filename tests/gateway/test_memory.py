"""What the gateway keeps is bounded by bytes, not by how many things it keeps."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ktl_lsp.gateway.app import CACHE
from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.gateway.sse import EventCache
from ktl_lsp.gateway.sse_client import SseParser
from tests.gateway.conftest import serving

BOUND = 1 << 20
BIG = "head -c 6000000 /dev/zero | tr '\\0' x"  # 64 KiB frames, six times the bound


async def test_the_event_cache_holds_at_most_its_bytes_while_tailing(tmp_path: Path) -> None:
    async with serving(tmp_path, GatewayOptions(event_cache_bytes=BOUND)) as served:
        s = await served.run(BIG)
        assert served.gateway.app is not None
        cache = served.gateway.app[CACHE]
        assert s.bytes_out >= 6_000_000 and s.last_seq > 40
        held: list[int] = []
        seqs: list[int] = []

        async def tail() -> None:
            parser = SseParser()
            async with served.http.stream(
                "GET", f"/api/v1/mirror/sessions/{s.id}/tail", timeout=20
            ) as r:
                async for chunk in r.aiter_text():
                    held.append(cache.held_bytes)
                    for ev in parser.feed(chunk):
                        if ev.event == "frame":
                            seqs.append(int(ev.id or 0))
                        if ev.event == "end":
                            return

        # Two tails at once: the second reads what the first encoded, when it is still held.
        await asyncio.gather(tail(), tail())
        assert sorted(seqs) == sorted(list(range(1, s.last_seq + 1)) * 2)
        assert max(held) <= BOUND, max(held)
        assert max(held) > BOUND // 2  # it was used, up to its bound
        assert cache.held_bytes <= BOUND


def test_an_event_larger_than_an_eighth_of_the_cache_is_not_kept() -> None:
    from ktl_lsp.sessions.model import Frame, FrameType, Session

    cache = EventCache(max_bytes=64 << 10)
    session = Session(id="s1", kind="pty", title="t", created_ns=1)
    small = Frame("s1", 1, 10, FrameType.OUTPUT, b"x" * 100)
    large = Frame("s1", 2, 11, FrameType.OUTPUT, b"y" * (32 << 10))
    first = cache.event(session, small)
    assert cache.held_bytes == len(first)
    again = cache.event(session, large)
    assert b"id: 2\n" in again and cache.held_bytes == len(first)
    for seq in range(3, 2000):
        cache.event(session, Frame("s1", seq, 12, FrameType.OUTPUT, b"z" * 900))
        assert cache.held_bytes <= 64 << 10
