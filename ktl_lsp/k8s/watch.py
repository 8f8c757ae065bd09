"""A watch that survives: LIST, then WATCH from the list's resourceVersion, resumed after the API
server's timeout, a dropped connection (with backoff) or a 410 Expired (a fresh LIST).

Consumers see ``("LISTED", obj)`` for what a (re-)list found and the watch's own ``ADDED``,
``MODIFIED``, ``DELETED``; a relist may repeat objects, so handle events idempotently, and
reports as ``DELETED`` (its last known state) what vanished while no watch was open. With
``synced``, ``("SYNCED", {})`` follows each complete list, so a consumer keeping a model can
drop what a relist no longer has.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ktl_lsp.k8s.client import Cluster, Resource
from ktl_lsp.k8s.errors import ApiError, Unauthorized, Unreachable

WATCH_TIMEOUT_S = 290


@dataclass
class Backoff:
    """Exponential with jitter: 0.25 s doubling up to ``cap`` seconds; ``reset`` on success."""

    first: float = 0.25
    cap: float = 10.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay: float = min(self.cap, self.first * (2.0**self.attempt))
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0

    async def sleep(self) -> float:
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay


def transient(exc: BaseException) -> bool:
    """Worth retrying: the cluster went away, a stream broke, a server-side hiccup."""
    import aiohttp

    if isinstance(exc, Unauthorized):
        return False
    if isinstance(exc, Unreachable | aiohttp.ClientError | TimeoutError | ConnectionError):
        return True
    return isinstance(exc, ApiError) and (exc.code >= 500 or exc.code == 429)


async def watch(
    cluster: Cluster,
    res: Resource,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    notice: Callable[[str], None] | None = None,
    synced: bool = False,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    backoff = Backoff()
    rv: str | None = None
    selectors = [("labelSelector", label_selector), ("fieldSelector", field_selector)]
    known: dict[tuple[str, str], dict[str, Any]] = {}  #: what the consumer was told exists
    while True:
        try:
            if rv is None:
                _, data = await cluster.request("GET", res.path(namespace), selectors)
                rv = str((data or {}).get("metadata", {}).get("resourceVersion") or "")
                backoff.reset()
                items = (data or {}).get("items") or []
                gone = [known.pop(k) for k in set(known) - {_key(i) for i in items}]
                for item in items:
                    known[_key(item)] = item
                    yield "LISTED", item
                # Gone while no watch was open (a relist after 410 Expired): say so.
                for obj in gone:
                    yield "DELETED", obj
                if synced:
                    yield "SYNCED", {}
            query = [
                ("watch", "true"),
                ("resourceVersion", rv),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", WATCH_TIMEOUT_S),
                *selectors,
            ]
            response = await cluster.stream(res.path(namespace), query, idle_s=WATCH_TIMEOUT_S + 30)
            try:
                async for raw in response.content:
                    if not raw.strip():
                        continue
                    event = json.loads(raw)
                    obj = event.get("object") or {}
                    kind = event.get("type")
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            rv = None  # too old: list again
                            break
                        raise ApiError(
                            int(obj.get("code") or 500),
                            str(obj.get("reason") or ""),
                            str(obj.get("message") or "watch error"),
                        )
                    rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                    backoff.reset()
                    if kind == "BOOKMARK":
                        continue
                    if kind == "DELETED":
                        known.pop(_key(obj), None)
                    else:
                        known[_key(obj)] = obj
                    yield str(kind), obj
            finally:
                response.close()  # a stream cut short must not go back to the pool
        except Exception as exc:
            if not transient(exc):
                raise
            delay = backoff.next_delay()
            if notice is not None:
                notice(f"watch of {res.plural} interrupted ({_why(exc)}); retrying in {delay:.1f}s")
            await asyncio.sleep(delay)


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
