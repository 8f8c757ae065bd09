from __future__ import annotations

from ktl_lsp.sessions.bus import Dropped, SessionBus
from ktl_lsp.sessions.model import Frame, FrameType


def _frame(seq: int, sid: str = "s1") -> Frame:
    return Frame(sid, seq, 0, FrameType.OUTPUT, b"x")


async def test_slow_subscriber_gets_a_dropped_range_and_never_blocks() -> None:
    bus = SessionBus()
    slow = bus.subscribe("s1", maxsize=3)
    fast = bus.subscribe(None, maxsize=100)
    for seq in range(1, 11):
        bus.publish(_frame(seq))
    got = [await slow.get() for _ in range(4)]
    assert [g.seq for g in got[:3] if isinstance(g, Frame)] == [1, 2, 3]
    assert got[3] == Dropped("s1", 4, 10)
    bus.publish(_frame(11))
    nxt = await slow.get()
    assert isinstance(nxt, Frame) and nxt.seq == 11
    fast_seqs = []
    while (item := fast.get_nowait()) is not None:
        assert isinstance(item, Frame)
        fast_seqs.append(item.seq)
    assert fast_seqs == list(range(1, 12))


async def test_closed_subscription_ends_waiters() -> None:
    bus = SessionBus()
    sub = bus.subscribe("s1")
    sub.close()
    assert await sub.get() is None
    bus.publish(_frame(1))  # no longer delivered, no error
