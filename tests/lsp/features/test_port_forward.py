"""``ktl.portForward`` end to end, with a real HTTP client on the local side and a pod that is
killed and replaced mid-forward (the loopback API server's controllers make the replacement)."""

from __future__ import annotations

import asyncio
import socket
import textwrap
from pathlib import Path

import httpx
import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.helpers import output_text, wait_for_text

APP = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      replicas: 1
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: nginx
            ports:
            - {name: http, containerPort: 8080}
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector: {app: web}
      ports:
      - {port: 80, targetPort: http}
    """
)


def listening_addresses(port: int) -> set[str]:
    """Where the kernel says something listens on ``port`` (Linux /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    if len(address) == 8:
                        found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                    else:
                        found.add(address)
    return found


async def deploy(k8s: Ktl, api: FakeApi, tmp_path: Path) -> str:
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    result = await k8s.cmd("ktl.apply", {"uri": path.as_uri()})
    assert result["state"] == "done", result
    for _ in range(200):
        pods = [k for k in api.objects if k[1] == "pods"]
        if pods:
            return pods[0][3]
        await asyncio.sleep(0.02)
    raise AssertionError("the Deployment made no pod")


async def test_forward_survives_the_pod_being_replaced(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    first = await deploy(k8s, api, tmp_path)
    result = await k8s.cmd("ktl.portForward", {"workload": "deployment/web", "ports": [":8080"]})
    assert result["state"] == "running"
    [forward] = result["forwards"]
    assert forward["remote"] == 8080 and forward["url"] == f"http://127.0.0.1:{forward['local']}"
    sid = result["sessionId"]
    assert listening_addresses(forward["local"]) == {"127.0.0.1"}
    async with httpx.AsyncClient(timeout=20) as http:
        answer = await http.get(forward["url"] + "/")
        assert answer.status_code == 200 and answer.headers["x-pod"] == first
        listed = await k8s.cmd("ktl.sessions.list", {"kind": "port-forward", "state": "running"})
        assert listed["sessions"][0]["meta"]["forwards"] == [forward]

        replacement = await api.replace_pod(first)
        second = replacement["metadata"]["name"]
        assert second != first
        # No retry here: the forward itself waits for the replacement to be ready.
        answer = await http.get(forward["url"] + "/")
        assert answer.status_code == 200 and answer.headers["x-pod"] == second
        big = await http.get(forward["url"] + "/bytes/3000000")
        assert len(big.content) == 3_000_000

    await wait_for_text(k8s, sid, f"now forwarding to pod {second}")
    text = await output_text(k8s, sid, plain=True)
    assert f"Forwarding from 127.0.0.1:{forward['local']} -> deployment/web:8080" in text
    assert text.count("Handling connection for") >= 2  # keep-alive: one per connection
    await cancel_closes(k8s, sid, forward["local"])


async def cancel_closes(ktl: Ktl, sid: str, port: int) -> None:
    """Cancelling the forward ends it cancelled and closes its local port."""
    cancelled = await ktl.cmd("ktl.session.cancel", {"sessionId": sid})
    assert cancelled["state"] == "cancelled"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_service_port_maps_to_the_named_target_port(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    pod = await deploy(k8s, api, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        wanted = s.getsockname()[1]
    result = await k8s.cmd("ktl.portForward", {"service": "web", "ports": [f"{wanted}:80"]})
    assert result["forwards"][0]["local"] == wanted
    async with httpx.AsyncClient(timeout=20) as http:
        answer = await http.get(f"http://127.0.0.1:{wanted}/echo?x=1")
        assert answer.status_code == 200 and pod in answer.headers["x-pod"]
    # The same local port again: in use, said clearly; the first forward is untouched.
    again = await k8s.cmd("ktl.portForward", {"service": "web", "ports": [f"{wanted}:80"]})
    assert again["state"] == "error" and f"local port {wanted} is already in use" in again["error"]
    wrong = await k8s.cmd("ktl.portForward", {"service": "web", "ports": [":81"]})
    assert wrong["state"] == "running"  # the port is checked per connection, like kubectl
    async with httpx.AsyncClient(timeout=20) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(wrong["forwards"][0]["url"])
    await wait_for_text(k8s, wrong["sessionId"], "does not expose port 81")
    for sid in (result["sessionId"], wrong["sessionId"]):
        await k8s.cmd("ktl.session.cancel", {"sessionId": sid})


async def test_refused_port_and_missing_target(k8s: Ktl, api: FakeApi) -> None:
    api.add_pod("lonely", labels={"app": "x"})
    result = await k8s.cmd("ktl.portForward", {"pod": "lonely", "ports": [":9999"]})
    async with httpx.AsyncClient(timeout=20) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(result["forwards"][0]["url"])
    await wait_for_text(k8s, result["sessionId"], "error from pod lonely port 9999")
    await k8s.cmd("ktl.session.cancel", {"sessionId": result["sessionId"]})
    missing = await k8s.cmd("ktl.portForward", {"pod": "nope", "ports": [":80"]})
    assert missing["state"] == "error" and 'pod "nope" not found' in missing["error"]


@pytest.mark.parametrize(
    "args",
    [
        {"ports": [":80"]},
        {"pod": "a", "service": "b", "ports": [":80"]},
        {"pod": "a", "ports": []},
        {"pod": "a", "ports": ["http"]},
    ],
)
async def test_arguments_are_checked(k8s: Ktl, args: dict[str, object]) -> None:
    with pytest.raises(JsonRpcException):
        await k8s.cmd("ktl.portForward", args)


async def test_several_ports_in_one_forward(k8s: Ktl, api: FakeApi) -> None:
    api.add_pod("multi", labels={"app": "multi"})
    api.serve("multi", 80, 9000)
    result = await k8s.cmd("ktl.portForward", {"pod": "multi", "ports": [":80", ":9000"]})
    assert [f["remote"] for f in result["forwards"]] == [80, 9000]
    async with httpx.AsyncClient(timeout=20) as http:
        for f in result["forwards"]:
            answer = await http.get(f["url"] + "/")
            assert answer.headers["x-pod"] == "multi"
            assert answer.headers["x-pod-port"] == str(f["remote"])
    await k8s.cmd("ktl.session.cancel", {"sessionId": result["sessionId"]})


async def test_a_pod_being_deleted_hands_over_to_its_replacement(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    """A deleted pod keeps running through its grace period; new connections go to the
    replacement its ReplicaSet starts meanwhile, not to the pod that is stopping."""
    api.pod_grace = 30.0  # longer than the test: the old pod stays Terminating throughout
    first = await deploy(k8s, api, tmp_path)
    result = await k8s.cmd("ktl.portForward", {"workload": "deployment/web", "ports": [":8080"]})
    [forward] = result["forwards"]
    sid = result["sessionId"]
    async with httpx.AsyncClient(timeout=20) as http:
        answer = await http.get(forward["url"] + "/", headers={"Connection": "close"})
        assert answer.headers["x-pod"] == first
        api.delete("v1", "Pod", first, "default")
        await wait_for_text(k8s, sid, f"pod {first} is being deleted")
        answer = await http.get(forward["url"] + "/", headers={"Connection": "close"})
        second = answer.headers["x-pod"]
        assert answer.status_code == 200 and second != first
    await wait_for_text(k8s, sid, f"now forwarding to pod {second}")
    terminating = api.get("v1", "Pod", first, "default")
    assert terminating is not None and terminating["metadata"]["deletionTimestamp"]
    await k8s.cmd("ktl.session.cancel", {"sessionId": sid})
