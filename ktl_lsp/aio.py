"""Background tasks that are kept alive until done and whose failures are logged, not lost."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)
_tasks: set[asyncio.Task[Any]] = set()


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
        await asyncio.to_thread(lambda: [importlib.import_module(m) for m in missing])
