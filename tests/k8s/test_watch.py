"""The resumable watch against the loopback API server's watch semantics: selector changes,
bookmarks and a history short enough to expire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ktl_lsp.k8s.client import Cluster, Resource
from ktl_lsp.k8s.watch import watch
from tests.k8s.conftest import apply_as
from tests.k8s_api import FakeApi

Event = tuple[str, str]


class Watching:
    """A ``watch`` of the pods labelled app=web, read in the background."""

    def __init__(self, cluster: Cluster, pods: Resource) -> None:
        self.events: list[Event] = []
        self._new = asyncio.Event()
        self._stream: AsyncIterator[tuple[str, dict[str, Any]]] = watch(
            cluster, pods, "default", "app=web"
        )
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for kind, obj in self._stream:
            self.events.append((kind, obj["metadata"]["name"]))
            self._new.set()

    async def until(self, event: Event, timeout: float = 5) -> list[Event]:
        async with asyncio.timeout(timeout):
            while event not in self.events:
                self._new.clear()
                await self._new.wait()
        return self.events

    async def opened(self, api: FakeApi) -> None:
        """The watch request has reached the server (the LIST before it is done)."""
        async with asyncio.timeout(5):
            while not api.watches:
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _relabel(cluster: Cluster, pod: str, app: str) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "labels": {"app": app}}}
    await apply_as(cluster, "labeller", f"/api/v1/namespaces/default/pods/{pod}", body)


async def _pods(cluster: Cluster) -> Resource:
    pods = await cluster.resource_for("v1", "Pod")
    assert pods is not None
    return pods


async def test_leaving_and_joining_a_selector_is_deleted_and_added(
    cluster: Cluster, api: FakeApi
) -> None:
    api.add_pod("web-1", labels={"app": "web"})
    w = Watching(cluster, await _pods(cluster))
    try:
        await w.until(("LISTED", "web-1"))
        await _relabel(cluster, "web-1", "other")
        await w.until(("DELETED", "web-1"))
        await _relabel(cluster, "web-1", "web")
        events = await w.until(("ADDED", "web-1"))
        assert events == [("LISTED", "web-1"), ("DELETED", "web-1"), ("ADDED", "web-1")]
    finally:
        await w.close()


async def test_bookmarks_let_a_resumed_watch_skip_the_relist(
    cluster: Cluster, api: FakeApi
) -> None:
    api.history_size = 5
    api.bookmark_interval = 0.05
    api.add_pod("web-1", labels={"app": "web"})
    w = Watching(cluster, await _pods(cluster))
    try:
        await w.opened(api)
        for i in range(10):  # changes the watch does not see, more than the history holds
            api.add_pod(f"db-{i}", labels={"app": "db"})
        marks = api.requests["BOOKMARK"]
        async with asyncio.timeout(5):
            while api.requests["BOOKMARK"] == marks:
                await asyncio.sleep(0.01)
        api.cut_streams()  # the API server's timeout: the watch resumes from its bookmark
        api.add_pod("web-2", labels={"app": "web"})
        events = await w.until(("ADDED", "web-2"))
        assert events == [("LISTED", "web-1"), ("ADDED", "web-2")]  # no relist
    finally:
        await w.close()


async def test_a_relist_after_410_reports_what_vanished_meanwhile(
    cluster: Cluster, api: FakeApi
) -> None:
    api.history_size = 3
    api.add_pod("web-1", labels={"app": "web"})
    api.add_pod("web-2", labels={"app": "web"})
    w = Watching(cluster, await _pods(cluster))
    try:
        await w.opened(api)
        # While the API server is away: web-2 goes and more happens than the history keeps.
        await api.stop()
        api.delete_pod("web-2")
        for i in range(5):
            api.add_pod(f"db-{i}", labels={"app": "db"})
        await api.start()
        events = await w.until(("DELETED", "web-2"))
        assert events[2:] == [("LISTED", "web-1"), ("DELETED", "web-2")]
    finally:
        await w.close()
