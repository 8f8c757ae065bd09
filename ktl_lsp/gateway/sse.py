"""The SSE tail: replay from the store, then live frames from the bus, without gaps or repeats.

We subscribe to the bus before reading the store, so nothing written in between is missed;
frames already sent are skipped by sequence. When the subscriber queue overflowed (a slow
client) or frames were pruned, the gap is backfilled from the store and only what the store no
longer has is reported as ``event: dropped``. Unlike ktl-agent, a finished session's tail ends
with ``event: end`` carrying the final status.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from typing import Any

from aiohttp import web

from ktl_lsp.gateway.http import give_back_memory
from ktl_lsp.gateway.query import TailQuery, mirror
from ktl_lsp.gateway.reveal import prime
from ktl_lsp.sessions.bus import Dropped, StateChange
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.mirror import MirrorEncoder, default_producer
from ktl_lsp.sessions.model import Frame, Session
from ktl_lsp.sessions.scrub import Paced, Scrubber

BATCH = 1000
POLL_S = 0.25


class EventCache:
    """Encodes each frame once however many clients tail it.

    Bounded by the bytes it holds, not by how many events: frames run from a byte to 64 KiB,
    so a count bound let one tail of a large finished session keep hundreds of megabytes.
    """

    def __init__(self, max_bytes: int = 16 << 20) -> None:
        self._items: OrderedDict[tuple[str, int, int, str], bytes] = OrderedDict()
        self._encoders: dict[str, MirrorEncoder] = {}
        self.max_bytes = max_bytes
        self.held_bytes = 0

    def event(self, session: Session, frame: Frame, cache: bool = True) -> bytes:
        """``frame`` as an SSE event; ``cache`` False for a frame redaction changed (its
        encoding is the redacted one, not the stored frame's)."""
        # Not the sequence alone: retention replaces trimmed frames with a marker that takes the
        # last trimmed number, and a cached event for that number would bring the frame back.
        key = (frame.session_id, frame.seq, frame.ts_ns, str(frame.type))
        hit = self._items.get(key) if cache else None
        if hit is not None:
            return hit
        enc = self._encoders.get(session.id)
        if enc is None:
            if len(self._encoders) > 256:
                self._encoders.clear()
            enc = self._encoders[session.id] = MirrorEncoder(session.id, default_producer(session))
        data = enc.line(frame).rstrip(b"\n")
        out = b"id: %d\nevent: frame\ndata: %s\n\n" % (frame.seq, data)
        if not cache or len(out) > self.max_bytes // 8:
            return out  # one event would crowd out the rest: encode it each time instead
        self._items[key] = out
        self.held_bytes += len(out)
        while self.held_bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.held_bytes -= len(old)
        return out


def _dropped(session_id: str, lo: int, hi: int) -> bytes:
    payload = {
        "session_id": session_id,
        "from_sequence": lo,
        "to_sequence": hi,
        "missing": hi - lo + 1,
        "reason": "not_available",
        "at_unix_nano": time.time_ns(),
    }
    return b"id: %d\nevent: dropped\ndata: %s\n\n" % (hi, json.dumps(payload).encode())


def _end(session: Session) -> bytes:
    body: dict[str, Any] = {
        "session_id": session.id,
        "last_sequence": str(session.last_seq),
        "status": mirror(session).get("status", {}),
        "state": str(session.state),
    }
    return b"event: end\ndata: %s\n\n" % json.dumps(body).encode()


class Tail:
    """One client's tail; with a ``scrubber`` its frames are redacted as one stream (a frame is
    held until the output after it is known, or for ``FLUSH_S`` on a live stream, ``Paced``)."""

    def __init__(
        self,
        manager: SessionManager,
        cache: EventCache,
        session: Session,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.manager = manager
        self.cache = cache
        self.session = session
        self.scrubber = scrubber
        self.paced = Paced(scrubber) if scrubber is not None else None
        self.held: dict[int, Frame] = {}  # frames the scrubber holds, as stored
        self.sent = 0  # highest sequence delivered, held or reported dropped
        self.written = 0  # bytes

    async def _write(self, resp: web.StreamResponse, data: bytes) -> None:
        self.written += len(data)
        await resp.write(data)

    async def _frame(self, resp: web.StreamResponse, frame: Frame) -> None:
        self.sent = frame.seq
        if self.paced is None:
            await self._write(resp, self.cache.event(self.session, frame))
            return
        self.held[frame.seq] = frame
        await self._out(resp, self.paced.push(frame))

    async def _out(self, resp: web.StreamResponse, frames: list[Frame]) -> None:
        for f in frames:
            stored = self.held.pop(f.seq, None)
            await self._write(resp, self.cache.event(self.session, f, cache=f is stored))

    async def _flush(self, resp: web.StreamResponse, upto: int | None = None) -> None:
        if self.scrubber is not None and self.scrubber.pending:
            await self._out(resp, self.scrubber.flush(upto))

    async def _gap(self, resp: web.StreamResponse, lo: int, hi: int) -> None:
        """Reports frames (lo..hi) the store no longer has; the output around them is not one
        stream any more."""
        await self._flush(resp)
        if self.scrubber is not None:
            self.scrubber.prime(b"")
        await self._write(resp, _dropped(self.session.id, lo, hi))

    async def _backfill(self, resp: web.StreamResponse, upto: int) -> None:
        """Sends frames (sent, upto] from the store; reports what it no longer has."""
        while self.sent < upto:
            frames, _ = await self.manager.frames(self.session.id, self.sent + 1, BATCH)
            frames = [f for f in frames if f.seq <= upto]
            if not frames:
                await self._gap(resp, self.sent + 1, upto)
                self.sent = upto
                return
            for f in frames:
                if f.seq > self.sent + 1:
                    await self._gap(resp, self.sent + 1, f.seq - 1)
                await self._frame(resp, f)

    async def run(self, request: web.Request, q: TailQuery) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "Connection": "keep-alive",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        await self._write(resp, b"retry: %d\n\n" % q.retry_ms)
        manager = self.manager
        running_here = manager.is_running_here(self.session.id)
        # Subscribe before reading the store: whatever is written in between arrives twice
        # at most (and is skipped by sequence), never zero times.
        sub = manager.subscribe(self.session.id, maxsize=256) if running_here else None
        try:
            current = await manager.get(self.session.id)
            self.session = current
            if self.scrubber is not None:
                # The output recorded before where this tail starts (a resumed or live tail).
                start = q.from_seq if q.replay else current.last_seq + 1
                await prime(manager, self.session.id, self.scrubber, start)
            if q.replay:
                self.sent = q.from_seq - 1
                await self._backfill(resp, current.last_seq)
            else:
                self.sent = current.last_seq
            if current.state.final:
                pass
            elif sub is not None:
                await self._follow_bus(resp, sub, q)
            else:
                await self._follow_store(resp, q)
            final = await manager.get(self.session.id)
            if final.state.final:
                await self._backfill(resp, final.last_seq)
                await self._flush(resp)
                await self._write(resp, _end(final))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        finally:
            if sub is not None:
                sub.close()
            give_back_memory(self.written)
        return resp

    async def _ping(self, resp: web.StreamResponse) -> None:
        await self._write(resp, b"event: ping\ndata: %d\n\n" % time.time_ns())

    async def _follow_bus(self, resp: web.StreamResponse, sub: Any, q: TailQuery) -> None:
        heartbeat = q.heartbeat_ms / 1000 if q.heartbeat_ms else None
        while True:
            paced = self.paced
            wait = heartbeat if paced is None else paced.timeout(heartbeat)
            try:
                item = await asyncio.wait_for(sub.get(), wait)
            except TimeoutError:
                if paced is not None and paced.held_since is not None:
                    await self._out(resp, paced.due())  # what is held goes out as it is known
                else:
                    await self._ping(resp)
                continue
            if item is None:
                return
            if isinstance(item, Frame):
                if item.seq <= self.sent:
                    continue
                if item.seq > self.sent + 1:
                    await self._backfill(resp, item.seq - 1)
                await self._frame(resp, item)
            elif isinstance(item, Dropped):
                await self._backfill(resp, item.to_seq)
            elif isinstance(item, StateChange) and item.session.state.final:
                return

    async def _follow_store(self, resp: web.StreamResponse, q: TailQuery) -> None:
        """A session recorded by another process: its frames reach us through the store."""
        heartbeat = q.heartbeat_ms / 1000 if q.heartbeat_ms else None
        quiet = 0.0
        while True:
            await asyncio.sleep(POLL_S)
            current = await self.manager.get(self.session.id)
            if current.last_seq > self.sent:
                earlier = self.sent
                await self._backfill(resp, current.last_seq)
                await self._flush(resp, earlier)  # held over one poll, with what came after
                quiet = 0.0
            else:
                await self._flush(resp)  # quiet for a poll: the rest of a secret came or not
                quiet += POLL_S
                if heartbeat and quiet >= heartbeat:
                    await self._ping(resp)
                    quiet = 0.0
            if current.state.final:
                return
