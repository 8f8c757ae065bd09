"""In-process fan-out of frames and state changes to subscribers with bounded queues.

A slow subscriber never slows the session or the others: when its queue is full it stops
receiving frames and, once it catches up, gets one ``Dropped`` item naming the missing range,
which it can backfill from the store.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ktl_lsp.sessions.model import Frame, Session


@dataclass(frozen=True)
class Dropped:
    session_id: str
    from_seq: int
    to_seq: int


@dataclass(frozen=True)
class StateChange:
    session: Session


Item = Frame | Dropped | StateChange


class Subscription:
    def __init__(
        self,
        bus: SessionBus,
        session_id: str | None,
        maxsize: int,
    ) -> None:
        self._bus = bus
        self.session_id = session_id
        self.maxsize = maxsize
        self._items: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._gaps: dict[str, list[int]] = {}
        self.closed = False

    def _push(self, item: Item) -> None:
        if self.closed:
            return
        if isinstance(item, Frame):
            gap = self._gaps.get(item.session_id)
            if gap is not None or len(self._items) >= self.maxsize:
                if gap is None:
                    self._gaps[item.session_id] = [item.seq, item.seq]
                else:
                    gap[1] = item.seq
                return
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _release_gaps(self) -> None:
        # Called when the consumer has drained: report what it missed before anything newer.
        for sid, (lo, hi) in list(self._gaps.items()):
            self._items.append(Dropped(sid, lo, hi))
        self._gaps.clear()

    def get_nowait(self) -> Item | None:
        if not self._items and self._gaps:
            self._release_gaps()
        return self._items.popleft() if self._items else None

    async def get(self) -> Item | None:
        """The next item, or None once the subscription is closed."""
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._wake()


class SessionBus:
    def __init__(self) -> None:
        self._subs: dict[str | None, list[Subscription]] = {}
        self._listeners: list[Callable[[Item], None]] = []

    def subscribe(self, session_id: str | None = None, maxsize: int = 256) -> Subscription:
        """Items of one session, or of every session when session_id is None."""
        sub = Subscription(self, session_id, maxsize)
        self._subs.setdefault(session_id, []).append(sub)
        return sub

    def listen(self, callback: Callable[[Item], None]) -> Callable[[], None]:
        """A synchronous subscriber, called inline; it must be quick and never raise."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.session_id)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.session_id]

    def publish(self, item: Item) -> None:
        sid = item.session.id if isinstance(item, StateChange) else item.session_id
        for cb in list(self._listeners):
            cb(item)
        for key in (sid, None):
            for sub in self._subs.get(key, ()):
                sub._push(item)
