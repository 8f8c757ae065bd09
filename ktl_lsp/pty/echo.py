"""Whether typed text was echoed, for terminals that cannot say (a remote exec, Windows ConPTY).

A POSIX PTY tells its echo mode (termios); others cannot, and a password prompt turns echo off.
So typed text is recorded only once the terminal has shown it back; text that is not echoed
within ``ECHO_WAIT_S`` is recorded as "hidden input" and its bytes are never stored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: How long typed text may take to come back before it counts as not echoed.
ECHO_WAIT_S = 0.5
#: Output kept for matching echoes of pending input.
ECHO_WINDOW = 4096


@dataclass
class _Pending:
    printable: str
    verdict: Callable[[bool], None]
    timer: asyncio.TimerHandle | None = None


def printable(raw: bytes) -> str:
    """What of the input a terminal would echo as itself (control keys excluded)."""
    text = raw.decode("utf-8", "replace")
    if text.startswith("\x1b"):
        return ""  # arrow keys, function keys: echoed as cursor movement, not as themselves
    return "".join(ch for ch in text if ch >= " " and ch != "\x7f")


class EchoJudge:
    """Decides, per input, whether it came back in the output (``verdict(True)``) or not.

    Lives on the event loop: ``judge``, ``saw_output`` and ``close`` are called there.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wait_s: float = ECHO_WAIT_S) -> None:
        self._loop = loop
        self._wait_s = wait_s
        self._pending: deque[_Pending] = deque()
        self._window = ""

    @property
    def settled(self) -> bool:
        """Nothing typed is waiting for its echo."""
        return not self._pending

    def judge(self, raw: bytes, verdict: Callable[[bool], None], *, ended: bool = False) -> None:
        text = printable(raw)
        if not text or ended:
            verdict(not text)  # control keys are recorded; nothing is kept once it ended
            return
        pending = _Pending(text, verdict)
        pending.timer = self._loop.call_later(self._wait_s, self._expire, pending)
        self._pending.append(pending)
        self._window = ""

    def saw_output(self, text: str) -> None:
        if not self._pending:
            return
        self._window = (self._window + text)[-ECHO_WINDOW:]
        while self._pending and self._pending[0].printable in self._window:
            first = self._pending.popleft()
            # Later echoes must come after this one.
            at = self._window.index(first.printable) + len(first.printable)
            self._window = self._window[at:]
            self._decide(first, True)

    def close(self) -> None:
        """The terminal ended: what never came back stays hidden."""
        while self._pending:
            self._decide(self._pending.popleft(), False)

    def _expire(self, pending: _Pending) -> None:
        if pending in self._pending:
            # Everything typed before it was not echoed either.
            while self._pending:
                first = self._pending.popleft()
                self._decide(first, False)
                if first is pending:
                    break

    @staticmethod
    def _decide(pending: _Pending, echoed: bool) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        pending.verdict(echoed)
