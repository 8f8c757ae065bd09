"""Log follows: several pods and containers, resumes without duplicates, pods that come and go."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.logs import LogFollower, LogRequest, parse_stamp
from ktl_lsp.k8s.manifests import load
from ktl_lsp.k8s.ops import Options, apply
from ktl_lsp.pty.text import strip_ansi
from tests.k8s.conftest import Out
from tests.k8s_api import FakeApi


def plain(out: Out) -> list[str]:
    return strip_ansi(out.text).replace("\r\n", "\n").splitlines()


async def until(cond: Callable[[], bool], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_parse_stamp() -> None:
    assert parse_stamp("2024-01-02T03:04:05.5Z") == (1704164645, 500_000_000)
    assert parse_stamp("2024-01-02T03:04:05Z") == (1704164645, 0)
    assert parse_stamp("2024-01-02T03:04:05.123456789Z")[1] == 123456789


async def test_workload_logs_all_pods_and_containers(cluster: Cluster, api: FakeApi) -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: nginx}, {name: proxy, image: envoy}]
"""
    await apply(cluster, load(text)[1], Options(), Out())
    await until(lambda: len([k for k in api.objects if k[1] == "pods"]) == 2)
    pods = sorted(k[3] for k in api.objects if k[1] == "pods")
    for p in pods:
        api.log(p, "app", *(f"{p} app line {i}" for i in range(5)))
        api.log(p, "proxy", f"{p} proxy hello")
    api.add_pod("other", labels={"app": "else"})
    api.log("other", "app", "not mine")
    out = Out()
    req = LogRequest(
        "default", workload="deployment/web", follow=False, tail_lines=2, highlight=["LINE"]
    )
    lines = await LogFollower(cluster, req, out).run()
    got = sorted(plain(out))
    assert lines == 6
    expected = sorted(
        [f"{p}/app {p} app line {i}" for p in pods for i in (3, 4)]
        + [f"{p}/proxy {p} proxy hello" for p in pods]
    )
    assert got == expected
    assert "\x1b[1;43;30mline\x1b[0m" in out.text  # highlighted, case-insensitively


async def test_follow_resumes_without_duplicates_and_tracks_pods(
    cluster: Cluster, api: FakeApi
) -> None:
    api.add_pod("a-1", labels={"app": "a"})
    api.log("a-1", "app", "before-1", "before-2")
    out = Out()
    req = LogRequest("default", selector="app=a", follow=True, tail_lines=10)
    follower = LogFollower(cluster, req, out, stall_s=5)
    task = asyncio.ensure_future(follower.run())
    try:
        await until(lambda: "a-1/app before-2" in plain(out))
        api.log("a-1", "app", "live-1")
        await until(lambda: "a-1/app live-1" in plain(out))
        api.cut_streams()  # the API server's timeout ends every stream
        await asyncio.sleep(0.2)
        api.log("a-1", "app", "after-cut")
        await until(lambda: "a-1/app after-cut" in plain(out))
        api.add_pod("a-2", labels={"app": "a"})
        api.log("a-2", "app", "second pod")
        await until(lambda: "a-2/app second pod" in plain(out))
        api.restart_pod("a-1")
        await until(lambda: any("pod a-1 restarted" in line for line in plain(out)))
        api.delete_pod("a-2")
        await until(lambda: any("pod a-2 is gone" in line for line in plain(out)))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lines = [line for line in plain(out) if not line.startswith("---")]
    assert lines.count("a-1/app before-1") == 1
    assert lines.count("a-1/app live-1") == 1
    assert lines.count("a-1/app after-cut") == 1
    assert all(t.done() for s in follower.streams.values() if (t := s.task) is not None)


async def test_cluster_gone_mid_follow_retries_with_backoff(cluster: Cluster, api: FakeApi) -> None:
    api.add_pod("p", labels={"app": "p"})
    api.log("p", "app", "one")
    out = Out()
    task = asyncio.ensure_future(
        LogFollower(cluster, LogRequest("default", pod="p"), out, stall_s=5).run()
    )
    try:
        await until(lambda: "p/app one" in plain(out))
        await api.stop()
        await until(
            lambda: any(re.search(r"stream lost .*retrying in", line) for line in plain(out))
        )
        api.log("p", "app", "two")
        await api.start()
        await until(lambda: "p/app two" in plain(out), timeout=15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [line for line in plain(out) if line.startswith("p/app ") and "---" not in line] == [
        "p/app one",
        "p/app two",
    ]
    assert any(e.get("state") == "retrying" for e in out.events)


async def test_container_choice(cluster: Cluster, api: FakeApi) -> None:
    api.add_pod("multi", containers=("app", "sidecar"))
    api.log("multi", "sidecar", "from sidecar")
    api.log("multi", "app", "from app")
    out = Out()
    await LogFollower(
        cluster, LogRequest("default", pod="multi", container="sidecar", follow=False), out
    ).run()
    assert plain(out) == ["multi/sidecar from sidecar"]


async def test_hung_stream_is_reopened_without_duplicates(cluster: Cluster, api: FakeApi) -> None:
    api.add_pod("h")
    api.log("h", "app", "first")
    out = Out()
    follower = LogFollower(cluster, LogRequest("default", pod="h"), out, stall_s=0.3)
    task = asyncio.ensure_future(follower.run())
    try:
        await until(lambda: "h/app first" in plain(out))
        api.hang_streams()  # the open stream goes silent and never ends
        api.log("h", "app", "second")
        await until(lambda: "h/app second" in plain(out))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert plain(out) == [
        "--- following pods (metadata.name=h) in namespace default; cancel to stop",
        "h/app first",
        "h/app second",
    ]
    assert follower.streams[("h", "app")].resumes >= 1


async def test_a_pod_shutting_down_is_followed_to_its_last_line(
    cluster: Cluster, api: FakeApi
) -> None:
    """Deleted, a pod lives on through its grace period (what it logs while stopping is often
    what matters); the follow ends only when the pod is gone."""
    api.pod_grace = 0.3
    api.add_pod("s", labels={"app": "s"})
    api.log("s", "app", "serving")
    out = Out()
    task = asyncio.ensure_future(
        LogFollower(cluster, LogRequest("default", selector="app=s"), out, stall_s=5).run()
    )
    try:
        await until(lambda: "s/app serving" in plain(out))
        await cluster.request("DELETE", "/api/v1/namespaces/default/pods/s")
        terminating = api.get("v1", "Pod", "s", "default")
        assert terminating is not None and terminating["metadata"]["deletionTimestamp"]
        api.log("s", "app", "SIGTERM received, draining")
        await until(lambda: "s/app SIGTERM received, draining" in plain(out))
        await until(lambda: any("pod s is gone" in line for line in plain(out)))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [line for line in plain(out) if not line.startswith("---")] == [
        "s/app serving",
        "s/app SIGTERM received, draining",
    ]
