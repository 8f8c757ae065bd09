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
from ktl_lsp.sessions.bus import Dropped, StateChange
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.mirror import MirrorEncoder, default_producer
from ktl_lsp.sessions.model import Frame, Session

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

    def event(self, session: Session, frame: Frame) -> bytes:
        # Not the sequence alone: retention replaces trimmed frames with a marker that takes the
        # last trimmed number, and a cached event for that number would bring the frame back.
        key = (frame.session_id, frame.seq, frame.ts_ns, str(frame.type))
        hit = self._items.get(key)
        if hit is not None:
            return hit
        enc = self._encoders.get(session.id)
        if enc is None:
            if len(self._encoders) > 256:
                self._encoders.clear()
            enc = self._encoders[session.id] = MirrorEncoder(session.id, default_producer(session))
        data = enc.line(frame).rstrip(b"\n")
        out = b"id: %d\nevent: frame\ndata: %s\n\n" % (frame.seq, data)
        if len(out) > self.max_bytes // 8:
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
    def __init__(self, manager: SessionManager, cache: EventCache, session: Session) -> None:
        self.manager = manager
        self.cache = cache
        self.session = session
        self.sent = 0  # highest sequence delivered (or reported dropped)
        self.written = 0  # bytes

    async def _write(self, resp: web.StreamResponse, data: bytes) -> None:
        self.written += len(data)
        await resp.write(data)

    async def _backfill(self, resp: web.StreamResponse, upto: int) -> None:
        """Sends frames (sent, upto] from the store; reports what it no longer has."""
        while self.sent < upto:
            frames, _ = await self.manager.frames(self.session.id, self.sent + 1, BATCH)
            frames = [f for f in frames if f.seq <= upto]
            if not frames:
                await self._write(resp, _dropped(self.session.id, self.sent + 1, upto))
                self.sent = upto
                return
            for f in frames:
                if f.seq > self.sent + 1:
                    await self._write(resp, _dropped(self.session.id, self.sent + 1, f.seq - 1))
                await self._write(resp, self.cache.event(self.session, f))
                self.sent = f.seq

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
            try:
                item = await asyncio.wait_for(sub.get(), heartbeat)
            except TimeoutError:
                await self._ping(resp)
                continue
            if item is None:
                return
            if isinstance(item, Frame):
                if item.seq <= self.sent:
                    continue
                if item.seq > self.sent + 1:
                    await self._backfill(resp, item.seq - 1)
                await self._write(resp, self.cache.event(self.session, item))
                self.sent = item.seq
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
                await self._backfill(resp, current.last_seq)
                quiet = 0.0
            else:
                quiet += POLL_S
                if heartbeat and quiet >= heartbeat:
                    await self._ping(resp)
                    quiet = 0.0
            if current.state.final:
                return
