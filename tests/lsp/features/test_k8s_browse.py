"""``ktl.k8s.list`` through the real server: what the pickers offer, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.test_port_forward import deploy


async def test_pods_workloads_services_and_namespaces(k8s: Ktl, api: FakeApi) -> None:
    api.add_pod("web-1", labels={"app": "web"}, containers=("app", "sidecar"))
    api.add_pod("stuck", ready=False)
    got = await k8s.cmd("ktl.k8s.list", {"kinds": ["pods"]})
    assert (got["context"], got["namespace"]) == ("fake", "default")
    by_name = {i["name"]: i for i in got["items"]}
    web = by_name["web-1"]
    assert web["target"] == "pod/web-1" and web["ready"] is True and web["status"] == "Running"
    assert web["containers"] == ["app", "sidecar"]
    assert by_name["stuck"]["ready"] is False and by_name["stuck"]["status"] == "Pending"
    api.add_pod("going", labels={"app": "web"})
    api.pod_grace = 30.0  # still there, Terminating, while the picker lists it
    api.delete("v1", "Pod", "going", "default")
    going = {i["name"]: i for i in (await k8s.cmd("ktl.k8s.list", {"kinds": ["pods"]}))["items"]}
    assert going["going"]["status"] == "Terminating" and going["going"]["ready"] is False

    namespaces = await k8s.cmd("ktl.k8s.list", {"kinds": ["namespaces"]})
    names = [i["name"] for i in namespaces["items"]]
    assert {"default", "kube-system"} <= set(names)
    assert all("target" not in i for i in namespaces["items"])

    empty = await k8s.cmd("ktl.k8s.list", {"namespace": "kube-system"})
    assert empty["namespace"] == "kube-system" and empty["items"] == []


async def test_refusals_are_request_failed_errors(k8s: Ktl, api: FakeApi) -> None:
    api.forbid("list", "pods")
    with pytest.raises(JsonRpcException, match="forbidden"):
        await k8s.cmd("ktl.k8s.list", {"kinds": ["pods"]})
    with pytest.raises(JsonRpcException, match="cannot reach the cluster"):
        await k8s.cmd("ktl.k8s.list", {"context": "gone"})
    with pytest.raises(JsonRpcException, match="unknown widgets"):
        await k8s.cmd("ktl.k8s.list", {"kinds": ["widgets"]})


async def test_workloads_and_services_offer_their_ports(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    await deploy(k8s, api, tmp_path)
    got = await k8s.cmd("ktl.k8s.list", {})
    by_target = {i["target"]: i for i in got["items"]}
    assert by_target["deployment/web"]["ports"] == [8080]
    assert by_target["deployment/web"]["status"].endswith("/1")
    assert by_target["service/web"]["ports"] == [80]
    pods = [i for i in got["items"] if i["kind"] == "Pod"]
    assert pods and pods[0]["target"].startswith("pod/web-")
