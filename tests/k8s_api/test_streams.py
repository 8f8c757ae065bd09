"""Exec and port-forward of the loopback API server, driven over real sockets by aiohttp's
websocket client and by the official ``kubernetes`` client's ``stream``/``portforward``."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.stream import portforward, stream

from tests.k8s_api import FakeApi, write_kubeconfig
from tests.k8s_api.server import TOKEN

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
Obj = dict[str, Any]


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeApi]:
    async with FakeApi() as server:
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        yield s


def pod_url(api: FakeApi, pod: str, sub: str, query: list[tuple[str, str]], ws: bool = True) -> str:
    scheme = "ws" if ws else "http"
    base = f"{scheme}://127.0.0.1:{api.port}/api/v1/namespaces/default/pods/{pod}/{sub}"
    return f"{base}?{urlencode(query)}"


def exec_url(api: FakeApi, pod: str, *command: str, ws: bool = True, **flags: bool | str) -> str:
    query = [("command", c) for c in command]
    for key, value in flags.items():
        query.append((key, value if isinstance(value, str) else str(value).lower()))
    return pod_url(api, pod, "exec", query, ws)


def upgrade(*protocols: str) -> dict[str, str]:
    """Websocket upgrade headers, to read a refused upgrade's status and body."""
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    if protocols:
        headers["Sec-WebSocket-Protocol"] = ", ".join(protocols)
    return headers


async def until(cond: Callable[[], bool], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Session:
    """The client side of one channel websocket: what arrived on each channel, in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[tuple[int, bytes]] = []

    def data(self, channel: int) -> bytes:
        return b"".join(d for c, d in self.frames if c == channel)

    async def _next(self) -> bool:
        msg = await self.ws.receive()
        if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            raw = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
            self.frames.append((raw[0], raw[1:]))
            return True
        return False

    async def until(self, channel: int, needle: bytes) -> bytes:
        async with asyncio.timeout(5):
            while needle not in self.data(channel):
                assert await self._next(), f"closed before {needle!r} on {channel}: {self.frames}"
        return self.data(channel)

    async def to_end(self) -> Session:
        async with asyncio.timeout(5):
            while await self._next():
                pass
        assert self.ws.closed
        return self

    def status(self) -> Obj:
        return json.loads(self.data(3))

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send_bytes(bytes((channel,)) + data)


async def connect(
    http: aiohttp.ClientSession, url: str, protocols: tuple[str, ...] = (V5, V4)
) -> Session:
    ws = await http.ws_connect(url, protocols=protocols)
    return Session(ws)


async def apply(http: aiohttp.ClientSession, api: FakeApi, obj: Obj) -> Obj:
    group_version = obj["apiVersion"]
    plural = obj["kind"].lower() + "s"
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    url = f"{api.url}{prefix}/namespaces/default/{plural}/{obj['metadata']['name']}"
    async with http.patch(
        url,
        params={"fieldManager": "test"},
        data=json.dumps(obj),
        headers={"Content-Type": "application/apply-patch+yaml"},
    ) as resp:
        assert resp.status in (200, 201), await resp.text()
        return dict(await resp.json())


def deployment(name: str, port: int, annotations: dict[str, str] | None = None) -> Obj:
    template: Obj = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": port}]}
            ]
        },
    }
    if annotations:
        template["metadata"]["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template},
    }


def pods_of(api: FakeApi, app: str) -> list[str]:
    return sorted(
        k[3]
        for k, rec in api.objects.items()
        if k[1] == "pods" and rec.obj["metadata"].get("labels", {}).get("app") == app
    )


# -- exec ------------------------------------------------------------------------------------
async def test_exec_tty_cat_echoes_and_ends_on_ctrl_d(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    api.add_pod("shell")
    s = await connect(http, exec_url(api, "shell", "cat", stdin=True, stdout=True, tty=True))
    assert s.ws.protocol == V5
    await s.send(0, b"hello\n")
    out = await s.until(1, b"hello\r\nhello\r\n")  # the terminal's echo, then cat's line
    assert out == b"hello\r\nhello\r\n"
    await s.send(0, b"\x04")  # Ctrl-D at the start of a line: EOF for cat
    await s.to_end()
    assert s.status() == {"metadata": {}, "status": "Success"}
    assert s.data(2) == b""  # stderr goes to the terminal
    assert s.frames[0] == (1, b"")  # the "connection established" message


async def test_exec_exit_code_on_the_status_channel(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    api.add_pod("p")
    url = exec_url(api, "p", "sh", "-c", "echo out; echo err >&2; exit 3", stdout=True)
    # The kubelet (v4) words the failure with the command, the v5 translator without.
    s = await (await connect(http, url, (V4,))).to_end()
    assert (s.data(1), s.data(2)) == (b"out\n", b"err\n")
    assert s.data(3) == (
        b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit'
        b" code: error executing command [sh -c echo out; echo err \\u003e\\u00262; exit 3],"
        b' exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode",'
        b'"message":"3"}]}}'
    )
    s = await (await connect(http, url, (V5, V4))).to_end()
    assert s.status() == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: command terminated with exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    # channel.k8s.io (v1) carries only a failure's message, as text.
    s = await (await connect(http, url, ("channel.k8s.io",))).to_end()
    assert s.data(3).startswith(b"command terminated with non-zero exit code: error executing")
    ok = await (await connect(http, exec_url(api, "p", "true"), ("channel.k8s.io",))).to_end()
    assert ok.data(3) == b""


async def test_exec_base64_protocol(api: FakeApi, http: aiohttp.ClientSession) -> None:
    api.add_pod("p")
    ws = await http.ws_connect(
        exec_url(api, "p", "printf", "\\377ok"), protocols=("v4.base64.channel.k8s.io",)
    )
    texts = [m.data async for m in ws if m.type is aiohttp.WSMsgType.TEXT]
    assert texts[0] == "1"
    assert texts[1] == "1" + "/29r"  # base64 of b"\xffok"
    assert json.loads(base64.b64decode(texts[-1][1:]))["status"] == "Success"


async def test_exec_resize_reaches_the_terminal(api: FakeApi, http: aiohttp.ClientSession) -> None:
    api.add_pod("p")
    url = exec_url(api, "p", "sh", "-c", "read x; stty size", stdin=True, tty=True)
    s = await connect(http, url)
    await s.send(4, json.dumps({"Width": 120, "Height": 30}).encode())
    await s.send(0, b"\n")
    out = await s.until(1, b"30 120")
    assert out.endswith(b"30 120\r\n") or b"30 120" in out
    await s.to_end()
    assert s.status()["status"] == "Success"


async def test_exec_tty_line_discipline_stty_and_ctrl_c(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    api.add_pod("p")
    script = "stty -echo; echo ready; read x; echo got:$x; exec sleep 30"
    s = await connect(http, exec_url(api, "p", "sh", "-c", script, stdin=True, tty=True))
    await s.until(1, b"ready\r\n")
    await s.send(0, b"secret\n")
    out = await s.until(1, b"got:secret\r\n")
    assert out.count(b"secret") == 1  # not echoed
    await s.send(0, b"\x03")  # Ctrl-C: SIGINT to the foreground process group
    await s.to_end()
    status = s.status()
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "130"}]


async def test_exec_v5_close_ends_stdin(api: FakeApi, http: aiohttp.ClientSession) -> None:
    api.add_pod("p")
    s = await connect(http, exec_url(api, "p", "cat", stdin=True, stdout=True))
    assert s.ws.protocol == V5
    await s.send(0, b"line one\n")
    await s.send(0, b"line two\n")
    await s.ws.send_bytes(bytes((255, 0)))  # v5: stdin is closed
    await s.to_end()
    assert s.data(1) == b"line one\nline two\n"
    assert s.status()["status"] == "Success"


async def test_exec_v5_close_with_a_tty_hangs_up(api: FakeApi, http: aiohttp.ClientSession) -> None:
    # containerd shuts the console down when a TTY session's stdin ends: SIGHUP, 128 + 1.
    api.add_pod("p")
    s = await connect(http, exec_url(api, "p", "cat", stdin=True, tty=True))
    await s.send(0, b"typed\n")
    await s.until(1, b"typed\r\ntyped\r\n")
    await s.ws.send_bytes(bytes((255, 0)))
    await s.to_end()
    assert s.status()["details"]["causes"] == [{"reason": "ExitCode", "message": "129"}]


async def test_exec_program_missing_from_the_image(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    api.add_pod("slim")
    api.missing_programs[("default", "slim")] = {"bash"}
    url = exec_url(api, "slim", "bash", "-c", "echo hi", stdin=True, tty=True)
    s = await (await connect(http, url, (V4,))).to_end()
    status = s.status()
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "InternalError", 500)
    message = status["message"]
    assert message.startswith(
        "Internal error occurred: error executing command in container: failed to exec in "
        'container: failed to start exec "'
    )
    assert message.endswith(
        ": OCI runtime exec failed: exec failed: unable to start container process: exec: "
        '"bash": executable file not found in $PATH: unknown'
    )
    assert status["details"]["causes"] == [
        {"message": message.removeprefix("Internal error occurred: ")}
    ]
    # Through the v5 translator the kubelet's error is wrapped once more.
    s = await (await connect(http, url, (V5, V4))).to_end()
    assert s.status()["message"].startswith(
        "Internal error occurred: Internal error occurred: error executing command in container"
    )
    # An absolute path is a stat failure; sh is there.
    s = await (await connect(http, exec_url(api, "slim", "/bin/bash"))).to_end()
    assert 'exec: \\"/bin/bash\\": stat /bin/bash: no such file or directory: unknown' in (
        s.data(3).decode()
    )
    s = await (await connect(http, exec_url(api, "slim", "sh", "-c", "echo fine"))).to_end()
    assert (s.data(1), s.status()["status"]) == (b"fine\n", "Success")


async def test_missing_program_annotation_on_the_template(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    await apply(http, api, deployment("alpine", 80, {"ktl-fake/missing-programs": "bash, zsh"}))
    await until(lambda: bool(pods_of(api, "alpine")))
    pod = pods_of(api, "alpine")[0]
    s = await (await connect(http, exec_url(api, pod, "zsh"))).to_end()
    assert "executable file not found" in s.status()["message"]


async def test_exec_refusals(api: FakeApi, http: aiohttp.ClientSession) -> None:
    api.add_pod("two", containers=("app", "sidecar"))
    api.add_pod("waiting", ready=False)
    # The API server: Status JSON before any upgrade.
    async with http.get(exec_url(api, "nope", "ls", ws=False)) as resp:
        assert resp.status == 404
        assert (await resp.json())["message"] == 'pods "nope" not found'
    async with http.get(exec_url(api, "two", "ls", ws=False)) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"] == (
            "a container name must be specified for pod two, choose one of: [app sidecar]"
        )
    async with http.get(exec_url(api, "two", "ls", container="db", ws=False)) as resp:
        assert (resp.status, (await resp.json())["message"]) == (
            400,
            "container db is not valid for pod two",
        )
    # The kubelet: plain text before the upgrade...
    async with http.get(exec_url(api, "waiting", "ls", ws=False), headers=upgrade(V4)) as resp:
        assert (resp.status, await resp.text()) == (500, 'container not found ("app")')
    async with http.get(exec_url(api, "two", "ls", container="app", ws=False)) as resp:
        assert (resp.status, await resp.text()) == (
            400,
            "unable to upgrade: missing upgrade headers in request",
        )
    url = exec_url(api, "two", "ls", container="app", ws=False)
    async with http.post(url, headers=upgrade(V4)) as resp:
        assert resp.status == 405  # websockets upgrade GETs only
    # ... or, through the v5 translator, a Status after it.
    s = await (await connect(http, exec_url(api, "waiting", "ls"))).to_end()
    assert s.status()["message"] == (
        'Internal error occurred: unable to upgrade connection: container not found ("app")'
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await http.ws_connect(exec_url(api, "two", "ls", container="app"), protocols=("v9",))
    assert err.value.status == 403
    api.forbid("create", "pods/exec")
    async with http.get(exec_url(api, "two", "ls", container="app", ws=False)) as resp:
        assert resp.status == 403
        assert (await resp.json())["message"] == (
            'pods "two" is forbidden: User "admin" cannot create resource "pods/exec" in API '
            'group "" in the namespace "default"'
        )


async def test_exec_ends_when_the_pod_is_deleted(api: FakeApi, http: aiohttp.ClientSession) -> None:
    api.add_pod("doomed")
    s = await connect(http, exec_url(api, "doomed", "sh", "-c", "echo up; exec sleep 30"))
    await s.until(1, b"up\n")
    api.delete_pod("doomed")
    await s.to_end()
    assert s.status()["details"]["causes"] == [{"reason": "ExitCode", "message": "137"}]


async def test_client_going_away_kills_the_process(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    api.add_pod("p")
    url = exec_url(api, "p", "sh", "-c", "echo $$; exec sleep 30", stdin=True, tty=True)
    s = await connect(http, url)
    pid = int((await s.until(1, b"\n")).split()[0])
    await s.ws.close()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True  # killed and reaped: no zombie left behind
        return False

    await until(gone)


# -- port-forward -------------------------------------------------------------------------------
def pf_url(api: FakeApi, pod: str, *ports: str) -> str:
    return pod_url(api, pod, "portforward", [("ports", p) for p in ports])


async def test_port_forward_http_through_the_channels(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    api.add_pod("web")
    api.serve("web", 8080, 9090)
    s = await connect(http, pf_url(api, "web", "8080", "9090"), (V5, V4))
    assert s.ws.protocol == V4  # the kubelet speaks v4 for port-forward
    await s.until(3, struct.pack("<H", 9090))
    # Each channel's first message is the port number, little endian, nothing else.
    firsts: dict[int, bytes] = {}
    for channel, data in s.frames:
        firsts.setdefault(channel, data)
    assert firsts == {0: b"\x90\x1f", 1: b"\x90\x1f", 2: b"\x82\x23", 3: b"\x82\x23"}
    await s.send(2, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    await s.send(0, b"GET /echo?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    await s.to_end()  # both connections closed: the websocket ends

    def first_data(channel: int) -> bytes:  # after the four port-number messages
        return b"".join(d for c, d in s.frames[4:] if c == channel)

    assert first_data(2).startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"X-Pod: web\r\n" in first_data(2)
    assert first_data(2).endswith(b"hello from pod web port 9090\n")
    assert first_data(0).endswith(b"\r\n\r\nx=1")
    assert first_data(1) == first_data(3) == b""


async def test_port_forward_refused_port_reports_on_the_error_channel(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    api.add_pod("web")
    s = await (await connect(http, pf_url(api, "web", "80"), (V4,))).to_end()
    assert s.frames[:2] == [(0, b"\x50\x00"), (1, b"\x50\x00")]
    error = b"".join(d for c, d in s.frames[2:] if c == 1).decode()
    assert error.startswith("error forwarding port 80 to pod ")
    assert ", uid : failed to execute portforward in network namespace" in error
    assert "dial tcp4 127.0.0.1:80: connect: connection refused" in error


async def test_port_forward_refusals(api: FakeApi, http: aiohttp.ClientSession) -> None:
    api.add_pod("web")
    async with http.get(pf_url(api, "web", "http").replace("ws:", "http:")) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"] == (
            'cannot convert to []int32: strconv.ParseUint: parsing "http": invalid syntax'
        )
    async with http.get(pf_url(api, "web", "70000").replace("ws:", "http:")) as resp:
        assert resp.status == 400
        assert "value out of range" in (await resp.json())["message"]
    async with http.get(pf_url(api, "gone", "80").replace("ws:", "http:")) as resp:
        assert resp.status == 404
    async with http.get(pf_url(api, "web").replace("ws:", "http:"), headers=upgrade(V4)) as resp:
        assert (resp.status, await resp.text()) == (400, 'query parameter "port" is required')
    api.add_pod("done")
    api.objects[("", "pods", "default", "done")].obj["status"]["phase"] = "Succeeded"
    done_url = pf_url(api, "done", "80").replace("ws:", "http:")
    async with http.get(done_url, headers=upgrade(V4)) as resp:
        assert (resp.status, await resp.text()) == (500, 'pod not found ("done_default")')
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await http.ws_connect(pf_url(api, "web", "80"), protocols=(V5,))
    assert err.value.status == 403  # the kubelet has no v5 port-forward


async def test_deleting_the_pod_cuts_the_forward_and_a_replacement_serves(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    await apply(http, api, deployment("site", 8080))
    await until(lambda: len(pods_of(api, "site")) == 1)
    old = pods_of(api, "site")[0]
    s = await connect(http, pf_url(api, old, "8080"), (V4,))
    await s.send(0, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")  # keep-alive: stays open
    await s.until(0, f"hello from pod {old} port 8080\n".encode())
    new = await api.replace_pod(old)
    await s.to_end()  # the pod's death cut the connection, so the forward ended
    assert new["metadata"]["name"] != old
    assert new["status"]["phase"] == "Running"
    assert pods_of(api, "site") == [new["metadata"]["name"]]
    s = await connect(http, pf_url(api, new["metadata"]["name"], "8080"), (V4,))
    await s.send(0, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    await s.to_end()
    assert f"X-Pod: {new['metadata']['name']}".encode() in s.data(0)


async def test_api_delete_of_a_deployment_pod_gets_it_replaced(
    api: FakeApi, http: aiohttp.ClientSession
) -> None:
    await apply(http, api, deployment("svc-app", 80))
    await until(lambda: len(pods_of(api, "svc-app")) == 1)
    old = pods_of(api, "svc-app")[0]
    async with http.delete(f"{api.url}/api/v1/namespaces/default/pods/{old}") as resp:
        assert resp.status == 200
    await until(lambda: len(pods_of(api, "svc-app")) == 1 and pods_of(api, "svc-app") != [old])


async def test_bytes_stream_through_the_forward(api: FakeApi, http: aiohttp.ClientSession) -> None:
    api.add_pod("big")
    api.serve("big", 8000)
    s = await connect(http, pf_url(api, "big", "8000"), (V4,))
    size = 3 * 1024 * 1024 + 5
    await s.send(0, f"GET /bytes/{size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await s.to_end()
    head, _, body = s.data(0)[2:].partition(b"\r\n\r\n")
    assert f"Content-Length: {size}".encode() in head
    assert len(body) == size
    assert body[:4] == b"\x00\x01\x02\x03"


async def test_service_round_trip(api: FakeApi, http: aiohttp.ClientSession) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "front"},
        "spec": {
            "selector": {"app": "site"},
            "ports": [{"name": "http", "port": 80, "targetPort": "web"}, {"port": 8443}],
        },
    }
    await apply(http, api, svc)
    async with http.get(f"{api.url}/api/v1/namespaces/default/services/front") as resp:
        got = await resp.json()
    assert got["spec"]["selector"] == {"app": "site"}
    assert got["spec"]["ports"][0]["targetPort"] == "web"
    assert got["spec"]["ports"][1]["targetPort"] == 8443  # defaulted to the port


# -- the official kubernetes client --------------------------------------------------------------
@pytest_asyncio.fixture
async def core(api: FakeApi, tmp_path: Path) -> AsyncIterator[k8s_client.CoreV1Api]:
    path = write_kubeconfig(tmp_path / "kubeconfig", api)
    api_client = k8s_config.new_client_from_config(config_file=str(path))
    yield k8s_client.CoreV1Api(api_client)
    api_client.close()


async def test_official_client_exec(api: FakeApi, core: k8s_client.CoreV1Api) -> None:
    api.add_pod("p")

    def run() -> tuple[str, str, int | None, str]:
        resp = stream(
            core.connect_get_namespaced_pod_exec,
            "p",
            "default",
            command=["sh", "-c", "cat; echo to-err >&2; exit 3"],
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
        )
        try:
            resp.write_stdin("from stdin\n")
            resp.close_channel(0)  # v5 half-close: cat sees EOF
            resp.run_forever(timeout=5)
            return resp.read_stdout(), resp.read_stderr(), resp.returncode, resp.subprotocol
        finally:
            resp.close()
            # websocket-client leaves its socket open after the server's close frame (it then
            # counts itself closed, so close() does nothing): release it here.
            resp.sock.shutdown()

    out, err, code, protocol = await asyncio.to_thread(run)
    assert (out, err, code, protocol) == ("from stdin\n", "to-err\n", 3, V5)


async def test_official_client_port_forward(api: FakeApi, core: k8s_client.CoreV1Api) -> None:
    api.add_pod("web")
    api.serve("web", 8080)

    def run() -> tuple[bytes, str | None]:
        pf = portforward(
            core.connect_get_namespaced_pod_portforward, "web", "default", ports="8080"
        )
        sock = pf.socket(8080)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # tolerated on the pair
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        error = pf.error(8080)
        pf.close()
        for thread in threading.enumerate():
            if thread.name.startswith("Kubernetes port forward proxy"):
                thread.join(5)
        pf.websocket.shutdown()  # see test_official_client_exec
        return data, error

    data, error = await asyncio.to_thread(run)
    assert error is None
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"hello from pod web port 8080\n")
