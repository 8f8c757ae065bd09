"""The cluster explorer through the real server against the loopback API server: a watch's
``ktl/resources`` (snapshot, then deltas) keeps an editor's copy of the cluster true as objects
appear, change and go; refusals, cut and expired watches; get, describe and the actions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcException

from tests.checks.test_crds import CRD
from tests.conftest import Ktl, StartKtl
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.lsp.features.test_port_forward import deploy


@dataclass
class Tree:
    """What an editor keeps from ``ktl/resources``: objects by uid and stream states."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    streams: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, params: dict[str, Any]) -> None:
        self.batches.append(params)
        self.events.append(params["event"])
        if params["event"] == "snapshot":
            self.nodes = {n["uid"]: n for n in params["resources"]}
        else:
            for n in params["added"] + params["updated"]:
                self.nodes[n["uid"]] = n
            for uid in params["deleted"]:
                self.nodes.pop(uid, None)
        if "streams" in params:
            self.streams = params["streams"]
        self.changed.set()

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        return next(
            (n for n in self.nodes.values() if n["kind"] == kind and n["name"] == name), None
        )

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [n for n in self.nodes.values() if n["kind"] == kind]

    async def until(self, cond: Callable[[], bool], timeout: float = 10) -> None:
        async def wait() -> None:
            while not cond():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


def _plain(value: Any) -> Any:
    """pygls hands notification params over as objects; the tests read them as JSON."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value


@pytest_asyncio.fixture
async def explorer(start_ktl: StartKtl, api: FakeApi, tmp_path: Path) -> tuple[Ktl, Tree]:
    config = write_kubeconfig(tmp_path / "kubeconfig", api)
    ktl = await start_ktl(env={"KUBECONFIG": str(config)}, options={"resources": True})
    tree = Tree()

    @ktl.client.feature("ktl/resources")
    def on_resources(params: Any) -> None:
        tree.apply(_plain(params))

    return ktl, tree


async def test_objects_appear_change_and_go(
    explorer: tuple[Ktl, Tree], api: FakeApi, tmp_path: Path
) -> None:
    ktl, tree = explorer
    api.add_pod("lonely", labels={"app": "lonely"})
    api.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"password": "c3VwZXJzZWNyZXQ="},
        }
    )
    started = await ktl.cmd("ktl.k8s.watch", {})
    assert started["state"] == "running" and started["context"] == "fake"
    await tree.until(lambda: "snapshot" in tree.events)
    assert tree.find("Pod", "lonely") is not None
    assert {"default", "kube-system"} <= {n["name"] for n in tree.of("Namespace")}
    secret = tree.find("Secret", "creds")
    assert secret is not None and secret["keys"] == ["password"]
    assert "c3VwZXJzZWNyZXQ=" not in repr(tree.batches)

    # A Deployment appears with its pods under it (owner references make the tree).
    await deploy(ktl, api, tmp_path)
    await tree.until(lambda: bool(tree.find("Deployment", "web")) and len(tree.of("Pod")) == 2)
    web = tree.find("Deployment", "web")
    assert web is not None
    [pod] = [p for p in tree.of("Pod") if p.get("owner") == web["uid"]]
    await tree.until(lambda: (tree.find("Deployment", "web") or {}).get("ready") == "1/1")

    # A pod goes into a crash loop: its state, reason and restarts follow.
    api.crash_pod(pod["name"])
    await tree.until(lambda: tree.nodes[pod["uid"]]["status"] == "CrashLoopBackOff")
    crashed = tree.nodes[pod["uid"]]
    assert crashed["health"] == "error" and crashed["ready"] == "0/1"
    assert crashed["containers"][0]["lastReason"] == "Error" and crashed["restarts"] == 1
    api.add_event(
        api.get("v1", "Pod", pod["name"], "default") or {},
        "BackOff",
        "Back-off restarting failed container",
    )
    await tree.until(lambda: bool(tree.nodes[pod["uid"]].get("warnings")))
    assert tree.nodes[pod["uid"]]["warnings"][0]["reason"] == "BackOff"

    # The Deployment scales, through the explorer's own action.
    scaled = await ktl.cmd("ktl.k8s.scale", {"kind": "Deployment", "name": "web", "replicas": 3})
    assert scaled["state"] == "done" and scaled["before"] == 1
    # The crash-looping pod stays unready, as a kubelet keeps it: two of three are ready.
    await tree.until(lambda: (tree.find("Deployment", "web") or {}).get("ready") == "2/3")
    await tree.until(lambda: len([p for p in tree.of("Pod") if p.get("owner") == web["uid"]]) == 3)

    # And goes, its pods with it.
    deleted = await ktl.cmd("ktl.k8s.delete", {"kind": "deployments", "name": "web"})
    assert deleted["state"] == "done"
    await tree.until(lambda: tree.find("Deployment", "web") is None)
    await tree.until(lambda: [p["name"] for p in tree.of("Pod")] == ["lonely"])

    # Every batch is a snapshot or a delta, and the session recorded what happened.
    assert tree.events[0] == "snapshot" and set(tree.events[1:]) == {"delta"}
    out = await ktl.cmd("ktl.session.output", {"sessionId": started["watchId"], "plain": True})
    text = "".join(f["data"] for f in out["frames"] if f["type"] == "output")
    assert "CrashLoopBackOff" in text and "- Deployment default/web" in text
    answered = await ktl.cmd("ktl.k8s.resources", {"watchId": started["watchId"]})
    assert {n["uid"] for n in answered["resources"]} == set(tree.nodes)
    cancelled = await ktl.cmd("ktl.session.cancel", {"sessionId": started["watchId"]})
    assert cancelled["state"] == "cancelled"
    with pytest.raises(JsonRpcException, match="no running watch"):
        await ktl.cmd("ktl.k8s.resources", {"watchId": started["watchId"]})


async def test_refused_namespace_is_marked_and_the_rest_shown(
    explorer: tuple[Ktl, Tree], api: FakeApi
) -> None:
    ktl, tree = explorer
    api.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default"},
            "data": {"k": "v"},
        }
    )
    api.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "b", "namespace": "kube-system"},
        }
    )
    api.forbid_in("kube-system", "configmaps")
    api.forbid("list", "nodes")
    await ktl.cmd("ktl.k8s.watch", {"kinds": ["namespaces", "nodes", "configmaps"]})
    await tree.until(lambda: "snapshot" in tree.events)
    assert tree.find("ConfigMap", "a") is not None and tree.find("ConfigMap", "b") is None
    states = {(s["plural"], s.get("namespace")): s for s in tree.streams}
    assert states[("configmaps", "kube-system")]["state"] == "forbidden"
    assert 'cannot list resource "configmaps"' in states[("configmaps", "kube-system")]["message"]
    assert states[("configmaps", "default")]["state"] == "watching"
    assert states[("nodes", None)]["state"] == "forbidden"
    # A namespace made later is watched too.
    api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}})
    api.add(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "later"}}
    )
    await tree.until(lambda: tree.find("ConfigMap", "c") is not None)


async def test_cut_and_expired_watches_resume_and_relist(
    explorer: tuple[Ktl, Tree], api: FakeApi
) -> None:
    ktl, tree = explorer
    api.add_pod("one")
    await ktl.cmd("ktl.k8s.watch", {"namespace": "default", "kinds": ["pods"]})
    await tree.until(lambda: tree.find("Pod", "one") is not None)
    api.cut_streams()
    api.add_pod("two")
    await tree.until(lambda: tree.find("Pod", "two") is not None)
    # The history is gone: the resume is refused (410) and a relist finds what changed,
    # including what was deleted meanwhile.
    api.controllers = False
    api.delete_pod("one")
    api.expire()
    api.add_pod("three")
    await tree.until(lambda: sorted(p["name"] for p in tree.of("Pod")) == ["three", "two"])


async def test_get_describe_and_restart(
    explorer: tuple[Ktl, Tree], api: FakeApi, tmp_path: Path
) -> None:
    ktl, _ = explorer
    pod = await deploy(ktl, api, tmp_path)
    api.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"password": "c3VwZXJzZWNyZXQ="},
        }
    )
    got = await ktl.cmd("ktl.k8s.get", {"kind": "Secret", "name": "creds"})
    assert "password: '<redacted: 16 bytes>'" in got["yaml"] and "c3VwZXJ" not in got["yaml"]
    assert got["uri"] == "ktl-live://fake/default/Secret/creds.yaml"
    revealed = await ktl.cmd("ktl.k8s.get", {"kind": "Secret", "name": "creds", "reveal": True})
    assert "c3VwZXJzZWNyZXQ=" in revealed["yaml"]

    api.add_event(
        api.get("apps/v1", "Deployment", "web", "default") or {}, "FailedCreate", "quota exceeded"
    )
    described = await ktl.cmd("ktl.k8s.describe", {"kind": "Deployment", "name": "web"})
    text = described["text"]
    assert "Name:         web" in text and "Replicas:" in text
    assert pod in text.split("Pods:")[1] and "FailedCreate" in text.split("Events:")[1]

    restarted = await ktl.cmd("ktl.k8s.restart", {"kind": "Deployment", "name": "web"})
    assert restarted["state"] == "done"
    live = api.get("apps/v1", "Deployment", "web", "default") or {}
    annotations = live["spec"]["template"]["metadata"].get("annotations") or {}
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    managers = {m["manager"] for m in live["metadata"].get("managedFields") or []}
    assert "ktl-restart" in managers

    with pytest.raises(JsonRpcException, match="not found"):
        await ktl.cmd("ktl.k8s.describe", {"kind": "Deployment", "name": "nope"})
    api.add_pod("solo")
    refused = await ktl.cmd("ktl.k8s.scale", {"kind": "Pod", "name": "solo", "replicas": 2})
    assert refused["state"] == "error" and "cannot be scaled" in refused["error"]


async def test_source_finds_the_declaring_file(
    explorer: tuple[Ktl, Tree], api: FakeApi, tmp_path: Path
) -> None:
    ktl, _ = explorer
    await deploy(ktl, api, tmp_path)
    found = None
    for _ in range(100):
        found = await ktl.cmd(
            "ktl.k8s.source", {"kind": "Deployment", "name": "web", "namespace": "default"}
        )
        if found:
            break
        await asyncio.sleep(0.05)
    assert found is not None and found["uri"] == (tmp_path / "app.yaml").as_uri()
    text = (tmp_path / "app.yaml").read_text().splitlines()
    assert "web" in text[found["range"]["start"]["line"]]
    assert await ktl.cmd("ktl.k8s.source", {"kind": "Deployment", "name": "other"}) is None


async def test_crd_kind_on_demand(explorer: tuple[Ktl, Tree], api: FakeApi, tmp_path: Path) -> None:
    ktl, tree = explorer
    crd = tmp_path / "crd.yaml"
    crd.write_text(CRD)
    assert (await ktl.cmd("ktl.apply", {"uri": crd.as_uri()}))["state"] == "done"
    # Served once the CRD is Established, as on a real server.
    async with asyncio.timeout(20):
        while not any(k.kind == "Widget" for k in api.kinds):
            await asyncio.sleep(0.02)
    api.add(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"},
            "spec": {"size": 3},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending"}]},
        }
    )
    await ktl.cmd("ktl.k8s.watch", {"kinds": ["widgets.example.com", "nopes.example.com"]})
    await tree.until(lambda: tree.find("Widget", "w") is not None)
    widget = tree.find("Widget", "w") or {}
    assert widget["apiVersion"] == "example.com/v1" and widget["status"] == "Pending"
    assert widget["health"] == "warn"
    [missing] = [s for s in tree.streams if s["plural"] == "nopes.example.com"]
    assert missing["state"] == "error" and "does not serve" in missing["message"]


async def test_a_cluster_that_goes_away_and_comes_back(
    explorer: tuple[Ktl, Tree], api: FakeApi
) -> None:
    ktl, tree = explorer
    api.add_pod("before")
    await ktl.cmd("ktl.k8s.watch", {"kinds": ["pods"], "namespace": "default"})
    await tree.until(lambda: tree.find("Pod", "before") is not None)
    await api.stop()
    await tree.until(lambda: any(s["state"] == "retrying" for s in tree.streams))
    assert tree.find("Pod", "before") is not None  # what was known stays shown
    await api.start()
    api.add_pod("after")
    await tree.until(lambda: tree.find("Pod", "after") is not None, timeout=30)
    await tree.until(lambda: all(s["state"] == "watching" for s in tree.streams))
