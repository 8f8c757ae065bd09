"""The channel protocol's framing and status reading, port specs, and which pod gets picked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from typing import Any

import pytest

from ktl_lsp.k8s import channels
from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.k8s.portforward import PortSpec, parse_ports
from ktl_lsp.k8s.targets import (
    NoReadyPod,
    PodTarget,
    default_container,
    pick,
    running_pod,
    service_port,
)
from ktl_lsp.pty.echo import printable as _printable
from tests.k8s.conftest import apply_as
from tests.k8s_api import FakeApi


def test_frames_carry_the_channel_in_the_first_byte() -> None:
    assert channels.frame(channels.STDIN, b"ls\r") == b"\x00ls\r"
    assert channels.split(b"\x01hello") == (1, b"hello")
    assert channels.split(b"") == (-1, b"")
    size = channels.resize_frame(100, 40)
    assert size[0] == channels.RESIZE and json.loads(size[1:]) == {"Width": 100, "Height": 40}
    assert channels.close_frame(channels.STDIN) == b"\xff\x00"


def test_exit_codes_from_the_status_channel() -> None:
    ok = json.dumps({"metadata": {}, "status": "Success"}).encode()
    assert channels.exec_status(ok) == channels.ExecStatus(0)
    failed = {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    assert channels.exec_status(json.dumps(failed).encode()) == channels.ExecStatus(3)
    missing = {
        "status": "Failure",
        "reason": "InternalError",
        "message": 'OCI runtime exec failed: exec: "bash": executable file not found in $PATH',
    }
    status = channels.exec_status(json.dumps(missing).encode())
    assert status.exit_code == 127 and status.missing_program and "bash" in (status.error or "")
    garbled = channels.exec_status(b"\xff not json")
    assert garbled.exit_code == 1 and garbled.error


def test_port_prefix_is_two_little_endian_bytes() -> None:
    assert channels.port_prefix(struct.pack("<H", 8080) + b"GET") == (8080, b"GET")
    assert channels.port_prefix(b"\x01") == (None, b"\x01")


@pytest.mark.parametrize(
    ("text", "spec"),
    [("8080:80", PortSpec(8080, 80)), (":80", PortSpec(0, 80)), ("5432", PortSpec(5432, 5432))],
)
def test_port_specs_like_kubectl(text: str, spec: PortSpec) -> None:
    assert parse_ports([text]) == [spec]


@pytest.mark.parametrize("bad", ["http", "80:x", ":0", "70000", "1:99999"])
def test_bad_port_specs_say_why(bad: str) -> None:
    with pytest.raises(ValueError, match=bad.split(":")[0] or bad):
        parse_ports([bad])


def test_targets_parse_like_kubectl() -> None:
    assert PodTarget.parse("ns", "web-0") == PodTarget("ns", pod="web-0")
    assert PodTarget.parse("ns", "svc/web") == PodTarget("ns", service="web")
    assert PodTarget.parse("ns", "deploy/web") == PodTarget("ns", workload="deploy/web")
    assert PodTarget("ns", service="web").label == "service/web"


def _pod(name: str, phase: str, ready: bool, start: str, deleting: bool = False) -> dict:
    meta: dict = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {
            "phase": phase,
            "startTime": start,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_pick_prefers_ready_then_longest_running_never_terminating() -> None:
    pods = [
        _pod("new-ready", "Running", True, "2026-01-02T00:00:00Z"),
        _pod("old-ready-going", "Running", True, "2026-01-01T00:00:00Z", deleting=True),
        _pod("old-ready", "Running", True, "2026-01-01T12:00:00Z"),
        _pod("running-unready", "Running", False, "2025-01-01T00:00:00Z"),
        _pod("pending", "Pending", False, "2024-01-01T00:00:00Z"),
    ]
    chosen = pick(pods)
    assert chosen is not None and chosen["metadata"]["name"] == "old-ready"
    assert pick([_pod("p", "Pending", False, "x")]) is None
    unready = pick([_pod("u", "Running", False, "x")])
    assert unready is not None and unready["metadata"]["name"] == "u"


def test_service_ports_map_to_pod_ports_by_number_or_name() -> None:
    pod = {
        "spec": {"containers": [{"name": "a", "ports": [{"name": "http", "containerPort": 8080}]}]}
    }
    svc = {
        "metadata": {"name": "web"},
        "spec": {
            "ports": [
                {"port": 80, "targetPort": "http"},
                {"port": 81, "targetPort": 9000},
                {"port": 82},
            ]
        },
    }
    assert service_port(svc, 80, pod) == 8080
    assert service_port(svc, 81, pod) == 9000
    assert service_port(svc, 82, pod) == 82
    with pytest.raises(K8sError, match="does not expose port 99"):
        service_port(svc, 99, pod)


def test_default_container_honours_the_annotation() -> None:
    pod = {
        "metadata": {"name": "p", "annotations": {"kubectl.kubernetes.io/default-container": "b"}},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    }
    assert default_container(pod) == "b"
    del pod["metadata"]["annotations"]
    assert default_container(pod) == "a"


def test_what_a_terminal_echoes_of_typed_input() -> None:
    assert _printable(b"hunter2") == "hunter2"
    assert _printable(b"\r") == ""
    assert _printable(b"\x1b[A") == ""
    assert _printable(b"ls -l\r") == "ls -l"


async def _soon_running(cluster: Cluster, target: PodTarget) -> dict[str, Any]:
    for _ in range(250):
        with contextlib.suppress(NoReadyPod):
            return await running_pod(cluster, target)
        await asyncio.sleep(0.02)
    raise AssertionError(f"no running pod for {target.label}")


async def test_a_pod_being_deleted_is_never_the_target(cluster: Cluster, api: FakeApi) -> None:
    """A deleted pod lives on through its grace period (``deletionTimestamp`` set, still
    Running) while its ReplicaSet starts a replacement: targets skip it."""
    api.pod_grace = 5.0  # the test ends long before the kubelet would stop it
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    await apply_as(cluster, "t", "/apis/apps/v1/namespaces/default/deployments/web", deploy)
    workload = PodTarget("default", workload="deployment/web")
    first = await _soon_running(cluster, workload)
    name = first["metadata"]["name"]
    await cluster.request("DELETE", f"/api/v1/namespaces/default/pods/{name}")
    going = api.get("v1", "Pod", name, "default")
    assert going is not None and going["status"]["phase"] == "Running"
    assert going["metadata"]["deletionTimestamp"]
    with pytest.raises(NoReadyPod, match=f"pod {name} is being deleted"):
        await running_pod(cluster, PodTarget("default", pod=name))
    replacement = await _soon_running(cluster, workload)
    assert replacement["metadata"]["name"] != name
