"""``ktl.server.stats``: how the server itself is doing (for users chasing a slow editor, and benches).

The event-loop watcher runs only after someone asks for it (``watchLoop: true``), so an idle
editor pays nothing for it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import threading
import time
from dataclasses import dataclass
from typing import Any

from ktl_lsp import codecache
from ktl_lsp.aio import background
from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import Feature, NoArgs, command
from ktl_lsp.lsp.server import KtlServer

TICK_S = 0.005
#: A stall longer than this is one a user can feel (a keystroke's echo is late).
FELT_LAG_MS = 20.0


@dataclass
class StatsArgs:
    watchLoop: bool = False  #: start (or restart) measuring event-loop stalls
    reset: bool = False  #: forget the worst stall seen so far


def _runqueue_wait_ms() -> float | None:
    """How long this thread has waited for a CPU while runnable (Linux schedstat), or None."""
    try:
        with open("/proc/thread-self/schedstat") as fh:
            return int(fh.read().split()[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


class LoopWatch:
    """Measures how late a periodic timer fires: the longest time the loop was busy elsewhere.

    A late tick has two causes that call for different fixes: the loop itself was busy or blocked
    (our bug), or the kernel gave the thread no CPU (a machine saturated by the jobs it runs; with
    autogroup scheduling every PTY session is its own group). Where Linux reports run-queue
    waits, the second is measured and subtracted into ``max_own_lag_ms``.
    """

    def __init__(self) -> None:
        self.max_lag_ms = 0.0
        self.max_own_lag_ms = 0.0
        self.ticks = 0
        self.own_felt = 0
        self.task: asyncio.Task[None] | None = None
        #: The garbage collector stops every thread: its longest pause is a stall of its own.
        self.max_gc_pause_ms = 0.0
        self.gc_runs = 0
        self._gc_started = 0.0

    def reset(self) -> None:
        self.max_lag_ms = self.max_own_lag_ms = self.max_gc_pause_ms = 0.0
        self.ticks = self.gc_runs = self.own_felt = 0

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = background(self._run(), name="loop-watch")
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        pause = (time.perf_counter() - self._gc_started) * 1000
        self.gc_runs += 1
        if pause > self.max_gc_pause_ms:
            self.max_gc_pause_ms = pause

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK_S
            waited = _runqueue_wait_ms()
            await asyncio.sleep(TICK_S)
            lag = (loop.time() - due) * 1000
            self.ticks += 1
            if lag > self.max_lag_ms:
                self.max_lag_ms = lag
            now = _runqueue_wait_ms()
            own = lag - (now - waited) if now is not None and waited is not None else lag
            if own > self.max_own_lag_ms:
                self.max_own_lag_ms = own
            if own > FELT_LAG_MS:
                self.own_felt += 1


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


class Stats(Feature):
    def __init__(self, server: KtlServer, checker: Checker) -> None:
        self.server = server
        self.checker = checker
        self.watch = LoopWatch()

    @command("ktl.server.stats")
    def stats(self, a: StatsArgs) -> dict[str, Any]:
        watch = self.watch
        if a.reset:
            watch.reset()
        if a.watchLoop:
            watch.start()
        manager = self.server.manager
        return {
            "pid": os.getpid(),
            "rssBytes": _rss_bytes(),
            "openFds": _open_fds(),
            "threads": threading.active_count(),
            "storeReaders": manager.readers_opened(),
            "liveSessions": manager.running_count(),
            "recording": manager.recording,
            "progressTokens": len(self.server.work_done_progress.tokens),
            "pendingHandlers": len(self.server.ktl_protocol._request_futures),
            "loopWatch": watch.task is not None and not watch.task.done(),
            "loopMaxLagMs": round(watch.max_lag_ms, 2),
            "loopMaxOwnLagMs": round(watch.max_own_lag_ms, 2),
            "loopTicks": watch.ticks,
            "loopOwnStallsOver20Ms": watch.own_felt,
            "gcMaxPauseMs": round(watch.max_gc_pause_ms, 2),
            "gcRuns": watch.gc_runs,
            "gcFrozenObjects": gc.get_freeze_count(),
            "codeCache": codecache.stats(),
            "parses": self.checker.parse_stats(),
        }


class FaultInjection(Feature):
    """For tests (``KTL_LSP_DEBUG_COMMANDS=1``): a feature that fails must not take the server
    down."""

    @command("ktl.debug.raise")
    def fail(self, _: NoArgs) -> None:
        raise RuntimeError("injected failure")
