"""Fuzzing the SSE client: the parser under any chunking, and the remote tail under any cut.

1. ``SseParser``: an event stream split into arbitrary chunks (any line ending, comments,
   multi-line data, ids, retries, non-ASCII) gives exactly the events it was built from.
2. ``RemoteGateway.tail`` against the real gateway on loopback: an httpx transport re-chunks
   the tail's bytes at hypothesis-chosen sizes and cuts each connection after a
   hypothesis-chosen number of bytes (mid-line, mid-UTF-8, before the first frame...). The
   client resumes with ``Last-Event-ID``; the frames it yields are exactly the store's
   frames 1..last, in order, each once, followed by the end.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktl_lsp.gateway import Gateway
from ktl_lsp.gateway.options import GatewayOptions
from ktl_lsp.gateway.remote import RemoteGateway, TailItem
from ktl_lsp.gateway.sse_client import SseEvent, SseParser
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from tests.reliability.conftest import count

# -- 1. the parser ------------------------------------------------------------------------

LINE_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)),
    max_size=20,
)
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=8)


@st.composite
def event_specs(draw: st.DrawFn) -> SseEvent:
    return SseEvent(
        event=draw(st.one_of(st.just("message"), NAME)),
        data="\n".join(draw(st.lists(LINE_TEXT, min_size=1, max_size=4))),
        id=draw(st.one_of(st.none(), st.integers(0, 10**9).map(str))),
        retry=draw(st.one_of(st.none(), st.integers(0, 10**6))),
    )


def serialize(ev: SseEvent, eol: str, comment: str | None) -> str:
    lines = []
    if comment is not None:
        lines.append(":" + comment)
    if ev.event != "message":
        lines.append(f"event: {ev.event}")
    if ev.id is not None:
        lines.append(f"id: {ev.id}")
    if ev.retry is not None:
        lines.append(f"retry: {ev.retry}")
    lines.extend(f"data: {d}" for d in ev.data.split("\n"))
    return eol.join(lines) + eol + eol


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[SseEvent], str, list[int]]:
    events = draw(st.lists(event_specs(), max_size=8))
    # \r alone is last: a trailing lone \r is only a line end once the next byte arrives.
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = "".join(serialize(e, eol, draw(st.one_of(st.none(), LINE_TEXT)))
                   for e in events)  # fmt: skip
    cuts = sorted(draw(st.lists(st.integers(0, max(0, len(text))), max_size=12)))
    return events, text, cuts


@settings(max_examples=300, deadline=None)
@given(streams())
def test_any_chunking_gives_the_same_events(case: tuple[list[SseEvent], str, list[int]]) -> None:
    count("sse parser (chunking)")
    events, text, cuts = case
    parser = SseParser()
    got: list[SseEvent] = []
    last = 0
    for cut in [*cuts, len(text)]:
        got.extend(parser.feed(text[last:cut]))
        last = cut
    assert got == events
    ids = [e.id for e in events if e.id is not None]
    assert parser.last_event_id == (ids[-1] if ids else None)


@settings(max_examples=100, deadline=None)
@given(st.lists(event_specs(), min_size=1, max_size=5), st.data())
def test_cr_line_endings_under_any_chunking(events: list[SseEvent], data: st.DataObject) -> None:
    """Bare \\r line endings: every event but a last one ending in a lone \\r is delivered
    whatever the chunking, and the last one as soon as one more byte arrives."""
    count("sse parser (CR endings)")
    text = "".join(serialize(e, "\r", None) for e in events)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=10)))
    parser = SseParser()
    got: list[SseEvent] = []
    last = 0
    for cut in [*cuts, len(text)]:
        got.extend(parser.feed(text[last:cut]))
        last = cut
    got.extend(parser.feed(":\n"))  # a comment: the next byte after the stream
    assert got == events


def test_lone_cr_at_the_end_of_a_chunk_dispatches_at_once() -> None:
    """WHATWG: a CR ends the line at once; an LF arriving in the next chunk is skipped."""
    parser = SseParser()
    assert parser.feed("data: x\r\r") == [SseEvent(data="x")]
    assert parser.feed("\ndata: y\r") == []
    assert parser.feed("\n\n") == [SseEvent(data="y")]


# -- 2. resume against the real gateway ----------------------------------------------------


class CutStream(httpx.AsyncByteStream):
    """Re-chunks a response body and fails the read after ``cut`` bytes (None: never)."""

    def __init__(
        self, inner: httpx.AsyncByteStream, cut: int | None, size: int, cuts: list[int]
    ) -> None:
        self.inner, self.cut, self.size, self.cuts = inner, cut, size, cuts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        first = True
        async for chunk in self.inner:
            if first:
                # The server's smallest retry is 250 ms; a proxy asking for 5 ms keeps this fast.
                chunk = chunk.replace(b"retry: 250\n", b"retry: 5\n", 1)
                first = False
            while chunk:
                piece = chunk[: self.size]
                if self.cut is not None and sent + len(piece) >= self.cut:
                    piece = piece[: self.cut - sent]
                    if piece:
                        yield piece
                    self.cuts.append(self.cut)
                    raise httpx.ReadError("connection cut by the test")
                chunk = chunk[len(piece) :]
                sent += len(piece)
                yield piece

    async def aclose(self) -> None:
        await self.inner.aclose()


class CuttingTransport(httpx.AsyncBaseTransport):
    def __init__(self, plan: list[tuple[int | None, int]]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.plan = plan
        self.tails = 0
        self.cuts: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        is_tail = request.url.path.endswith("/tail")
        if is_tail:
            request.url = request.url.copy_merge_params({"retry_ms": "250"})
        resp = await self.inner.handle_async_request(request)
        if not is_tail:
            return resp
        cut, size = self.plan[self.tails] if self.tails < len(self.plan) else (None, 4096)
        self.tails += 1
        assert isinstance(resp.stream, httpx.AsyncByteStream)
        return httpx.Response(
            resp.status_code,
            headers=resp.headers,
            stream=CutStream(resp.stream, cut, size, self.cuts),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


SCRIPT = 'for i in $(seq 1 60); do echo "line $i é😀"; done; sleep 0.1; echo tail-end'


async def resume_scenario(root: Path, plan: list[tuple[int | None, int]], live: bool) -> None:
    store = root / "sessions.db"
    manager = SessionManager.open(store)
    gateway = Gateway(manager, store, GatewayOptions())
    await gateway.start()
    remote = RemoteGateway(gateway.base_url, gateway.auth.token)
    await remote.close()
    transport = CuttingTransport(plan)
    remote._client = httpx.AsyncClient(
        base_url=gateway.base_url,
        headers={"Authorization": f"Bearer {gateway.auth.token}"},
        transport=transport,
        timeout=httpx.Timeout(10.0, read=None),
    )
    try:
        session = manager.start(RunSpec(argv=["sh", "-c", SCRIPT], command=SCRIPT))
        if not live:
            await session.done
        items: list[TailItem] = []

        async def follow() -> None:
            async for item in remote.tail(session.id):
                items.append(item)

        await asyncio.wait_for(follow(), 30)
        final = await session.done
        assert manager.store is not None
        await manager.store.flush()
        stored = manager.store.frames(final.id)
        got = [i.frame for i in items if i.frame is not None]
        assert [f.seq for f in got] == list(range(1, final.last_seq + 1))
        assert [(f.seq, f.type, f.data) for f in got] == [(f.seq, f.type, f.data) for f in stored]
        assert not any(i.dropped for i in items)
        assert items[-1].end is not None and items[-1].end.state == final.state
        assert sum(1 for i in items if i.reconnecting) == len(transport.cuts)
        for _ in transport.cuts:
            count("sse resume: connections cut mid-stream")
    finally:
        await remote.close()
        await gateway.stop()
        manager.close()


@settings(
    max_examples=int(__import__("os").environ.get("KTL_FUZZ_RESUME_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    plan=st.lists(
        st.tuples(st.integers(0, 8000).map(lambda n: n or None), st.integers(1, 800)),
        min_size=1,
        max_size=3,
    ),
    live=st.booleans(),
)
def test_tail_resumes_after_any_cut_without_gap_or_duplicate(
    plan: list[tuple[int | None, int]], live: bool
) -> None:
    count("sse resume (real gateway)")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(resume_scenario(Path(tmp), plan, live))
