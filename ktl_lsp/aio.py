"""Background tasks that are kept alive until done and whose failures are logged, not lost."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
_tasks: set[asyncio.Task[Any]] = set()
K = TypeVar("K", bound=Hashable)


def background(coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _tasks.add(task)
    task.add_done_callback(_done)
    return task


def _done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s failed", task.get_name(), exc_info=task.exception())


async def import_off_loop(*modules: str) -> None:
    """Imports heavy modules (aiohttp, kubernetes: 200+ ms each) in a thread, not on the loop.

    An import on the loop freezes every session stream and request for its whole duration; in a
    thread the loop keeps getting the interpreter every switch interval.
    """
    missing = [m for m in modules if m not in sys.modules]
    if missing:
        await asyncio.to_thread(_import_parents_first, missing)
        freeze_long_lived()


_importing = threading.Lock()


def _import_parents_first(modules: list[str]) -> None:
    """Each package before its submodules, one thread at a time: ``import a.b`` takes a.b's
    import lock before a's, so a thread doing that while another imports ``a`` (whose
    ``__init__`` imports a.b) deadlocks, and Python raises ``_DeadlockError``."""
    with _importing:
        for name in modules:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                importlib.import_module(".".join(parts[:i]))


def freeze_long_lived() -> None:
    """Tells the garbage collector that what exists now lives as long as the process.

    Modules, classes and functions (lsprotocol alone has thousands) are never garbage, yet every
    full collection walked all of them: 20-35 ms with every thread stopped, a stall of each
    session and request. Called once start-up is done and after each lazy import of a heavy
    module; objects alive at that moment are only skipped by the cycle collector, reference
    counting still frees them.
    """
    gc.freeze()


class Coalescer(Generic[K]):
    """Runs ``work(key)`` at once, or, when a run for that key is under way, once more when it
    ends: a burst of requests is two runs of the newest state, never a queue (the checks of an
    edited document, the renders of an edited chart). ``work`` reports its own errors."""

    def __init__(self, work: Callable[[K], Awaitable[None]], name: str) -> None:
        self._work = work
        self._name = name
        self._running: set[K] = set()
        self._again: set[K] = set()  # requested since the running one started

    def request(self, key: K) -> None:
        if key in self._running:
            self._again.add(key)
            return
        self._running.add(key)
        background(self._until_current(key), f"{self._name} {key}")

    async def _until_current(self, key: K) -> None:
        try:
            while True:
                self._again.discard(key)
                await self._work(key)
                if key not in self._again:
                    return
        finally:
            self._running.discard(key)
            self._again.discard(key)
