"""Exec and port-forward for the loopback API server: the websocket subresources of a pod.

``GET|POST /api/v1/namespaces/<ns>/pods/<name>/exec`` and ``.../portforward`` behave as a real
API server in front of a kubelet with containerd does. A request goes through the same steps:

1. the API server: ``404 NotFound`` for a missing pod, ``400 BadRequest`` for an unknown
   container (``container c is not valid for pod x``) or a missing one when the pod has several
   (``a container name must be specified for pod x, choose one of: [a b]``), ``400`` for ports
   that are not numbers (``cannot convert to []int32: strconv.ParseUint: ...``), all ``Status``
   JSON answered before any upgrade;
2. an exec request offering ``v5.channel.k8s.io`` is upgraded by the API server's stream
   translator (Kubernetes 1.30+), which only speaks v5: what goes wrong afterwards arrives as a
   ``Status`` on channel 3 (``Internal error occurred: unable to upgrade connection: container
   not found ("app")``, ``Internal error occurred: Internal error occurred: error executing
   command in container: ...`` for a program the image lacks, ``command terminated with
   non-zero exit code: command terminated with exit code 3``);
3. any other request is proxied to the kubelet, which answers errors as plain text before the
   upgrade (``500 container not found ("app")``, ``400 query parameter "port" is required``,
   ``500 pod not found ("web_default")`` for a pod that is no longer running) and speaks
   ``v4.channel.k8s.io``, ``v4.base64.channel.k8s.io``, ``channel.k8s.io``,
   ``base64.channel.k8s.io`` or no subprotocol for exec, ``v4.channel.k8s.io``,
   ``v4.base64.channel.k8s.io`` or none for port-forward; the first protocol the client offers
   that the server speaks wins, and a client offering none of them gets ``403`` with an empty
   body (golang.org/x/net/websocket's refusal).

Exec runs the command as a local process (the stand-in for ``runc exec``): environment PATH,
HOSTNAME=<pod>, HOME, the container's ``env`` and TERM=xterm with a TTY; working directory ``/``.
With ``tty=true`` it gets a real pseudo-terminal as its controlling terminal (line discipline:
echo, ``stty``, Ctrl-C), resized by channel 4 (SIGWINCH); without, pipes to channels 1 and 2.
The status on channel 3 is ``{"metadata":{},"status":"Success"}`` or ``NonZeroExitCode`` with an
``ExitCode`` cause (for ``channel.k8s.io`` only a failure's message, as plain text), then the
websocket closes. ``[255, 0]`` (v5) half-closes stdin: EOF on the pipe; with a TTY containerd
shuts the console down, so the process is hung up (SIGHUP), as on a real node. A client that
goes away gets its process group SIGHUP then SIGKILL; a deleted pod's exec processes are killed
(exit code 137 on the status channel).

Port-forward: after the upgrade the server writes the port number (2 bytes, little endian) as
the first message of channels 2i and 2i+1 for the i-th port, then connects to the port "inside
the pod". A running pod serves HTTP on its containers' ``containerPort``\\s and on ports added
with ``FakeApi.serve`` (``GET /`` names the pod, ``GET /bytes/<n>``, ``/echo``); another port is
refused with containerd's message on the error channel. The websocket closes once every port's
connection has ended, and the connection ends when the websocket does. Deleting the pod cuts
its connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pty
import secrets
import shutil
import signal
import struct
import tempfile
import termios
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.k8s_api.server import Obj, StatusError, not_found

if TYPE_CHECKING:
    from tests.k8s_api.server import FakeApi

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
#: What the kubelet's websocket servers speak ("" = the client asked for no subprotocol).
KUBELET_EXEC = ("", V1, V1_BASE64, V4, V4_BASE64)
KUBELET_PORT_FORWARD = ("", V4, V4_BASE64)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
#: A pod annotation naming programs its image lacks (comma or space separated).
MISSING_ANNOTATION = "ktl-fake/missing-programs"
CHUNK = 256 * 1024
#: After the process has exited, output is read until the terminal or pipes close, or this long
#: without any (a background child may hold them open).
GRACE = 0.2
HANGUP_GRACE = 0.2
_BLOCK = bytes(range(256)) * 4096  # 1 MiB served by /bytes/<n>


def _flag(query: Any, key: str, default: bool) -> bool:
    """A boolean query parameter the way the API server converts one: absent is the default,
    ``0`` or ``false`` (any case) is false, anything else true."""
    values = query.getall(key, [])
    if not values:
        return default
    return not (values[0] == "0" or values[0].lower() == "false")


def _offered(request: web.Request) -> list[str]:
    out: list[str] = []
    for header in request.headers.getall("Sec-WebSocket-Protocol", []):
        out.extend(p.strip() for p in header.split(",") if p.strip())
    return out


def _negotiate(offered: list[str], supported: tuple[str, ...]) -> str | None:
    if not offered:
        return "" if "" in supported else None
    return next((p for p in offered if p in supported), None)


def _is_websocket(request: web.Request) -> bool:
    return (
        request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in request.headers.get("Connection", "").lower()
    )


def _text(status: int, message: str) -> web.Response:
    """A kubelet error: plain text, passed through by the API server's upgrade-aware proxy."""
    return web.Response(status=status, text=message, content_type="text/plain")


def _handshake_refusal(request: web.Request, protocol: str | None) -> web.Response | None:
    """What golang.org/x/net/websocket answers instead of upgrading: 400 for a request that is
    not an upgrade at all (the kubelet then tries SPDY, whose handshake fails the same way), 405
    for a method other than GET, 403 with no body when no offered subprotocol is spoken."""
    if not _is_websocket(request):
        return _text(400, "unable to upgrade: missing upgrade headers in request")
    if request.method != "GET":
        return _text(405, "bad method")
    if protocol is None:
        return web.Response(status=403)
    return None


def _go_json(obj: Obj) -> bytes:
    """``encoding/json``'s output: compact, UTF-8, with <, > and & escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def _internal(err: str) -> Obj:
    """``apierrors.NewInternalError(err)`` as ``json.Marshal`` writes it."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {err}",
        "reason": "InternalError",
        "details": {"causes": [{"message": err}]},
        "code": 500,
    }


def _exit_status(code: int, message: str) -> Obj:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {message}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _go_list(argv: list[str]) -> str:
    return "[" + " ".join(argv) + "]"


def _hex_id(seed: str) -> str:
    """A 64-hex-digit containerd id (a sandbox's, stable per pod)."""
    return hashlib.sha256(seed.encode()).hexdigest()


def _running(pod: Obj, container: str | None = None) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    statuses = status.get("containerStatuses") or []
    return not statuses or any(
        "running" in (cs.get("state") or {})
        for cs in statuses
        if container is None or cs.get("name") == container
    )


async def _wait_fd(
    loop: asyncio.AbstractEventLoop, fd: int, write: bool, stop: asyncio.Event | None = None
) -> None:
    """Until ``fd`` is readable (writable), or ``stop`` is set."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        await asyncio.wait(
            {ready} if stopper is None else {ready, stopper},
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)
        ready.cancel()
        if stopper is not None:
            stopper.cancel()


def _container_signals() -> None:  # pragma: no cover - runs in the child
    """A container's process starts with every signal at its default, whatever the test
    runner ignores (a CI job started in the background ignores SIGINT)."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


def _take_controlling_terminal() -> None:  # pragma: no cover - runs in the child
    _container_signals()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _upgrade(request: web.Request, protocol: str) -> _Wire:
    """Accepts the websocket with the negotiated subprotocol ("" for none)."""
    ws = web.WebSocketResponse(
        protocols=(protocol,) if protocol else (),
        compress=False,
        max_msg_size=0,
        decode_text=False,
        timeout=5.0,
        writer_limit=4 * CHUNK,
    )
    await ws.prepare(request)
    return _Wire(ws, protocol)


class _Wire:
    """The channel framing over one websocket: a byte naming the channel, then the data
    (``*base64*`` protocols: an ASCII digit, then base64, in text messages)."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str) -> None:
        self.ws = ws
        self.base64 = "base64" in protocol

    async def send(self, channel: int, data: bytes) -> bool:
        if self.ws.closed:
            return False
        try:
            if self.base64:
                await self.ws.send_str(chr(48 + channel) + base64.b64encode(data).decode())
            else:
                await self.ws.send_bytes(bytes((channel,)) + data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    def decode(self, data: bytes) -> tuple[int, bytes] | None:
        if not data:
            return None
        if not self.base64:
            return data[0], data[1:]
        try:
            return data[0] - 48, base64.b64decode(data[1:])
        except ValueError:
            return None

    async def messages(self) -> Any:
        """The client's data messages (as bytes) until it closes."""
        while True:
            msg = await self.ws.receive()
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                yield msg.data if isinstance(msg.data, bytes) else msg.data.encode()
            elif msg.type in (
                WSMsgType.CLOSE,
                WSMsgType.CLOSING,
                WSMsgType.CLOSED,
                WSMsgType.ERROR,
            ):
                return


class _Exec:
    """One exec'd process and the websocket it talks through."""

    def __init__(
        self,
        wire: _Wire,
        proc: asyncio.subprocess.Process,
        master: int | None,
        stdin: bool,
        stdout: bool,
    ) -> None:
        self.wire, self.proc, self.master = wire, proc, master
        self.want_stdin, self.want_stdout = stdin, stdout
        self.loop = asyncio.get_running_loop()
        self.busy = False
        self.last_output = self.loop.time()
        self.stdin_open = stdin
        self.resizes = True
        self.hangup = asyncio.Event()

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    async def _emit(self, channel: int, data: bytes, wanted: bool) -> bool:
        self.last_output = self.loop.time()
        if not wanted:
            return True
        self.busy = True
        try:
            return await self.wire.send(channel, data)
        finally:
            self.busy = False
            self.last_output = self.loop.time()

    def _close_master(self) -> None:
        if self.master is not None:
            fd, self.master = self.master, None
            os.close(fd)

    async def _pump_pty(self) -> None:
        fd = self.master
        assert fd is not None
        try:
            while not self.hangup.is_set():
                try:
                    data = os.read(fd, CHUNK)
                except BlockingIOError:
                    await _wait_fd(self.loop, fd, False, self.hangup)
                    continue
                except OSError:
                    return  # EIO: every process holding the terminal is gone
                if not data or not await self._emit(STDOUT, data, self.want_stdout):
                    return
        finally:
            # Closing the master hangs the terminal up (SIGHUP): what containerd's console
            # shutdown does when stdin ends. Otherwise it stays open until the process has
            # exited (``run``): a process may close its terminal before it exits (GNU cat does).
            if self.hangup.is_set():
                self._close_master()

    async def _pump_pipe(self, reader: asyncio.StreamReader, channel: int) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data or not await self._emit(channel, data, True):
                return

    async def run(self) -> int:
        """Relays the output until the process has exited and its output is read; the exit
        code (128 + the signal for a killed process, as containerd reports it)."""
        pumps: list[asyncio.Task[None]] = []
        if self.master is not None:
            pumps.append(asyncio.ensure_future(self._pump_pty()))
        for reader, channel in ((self.proc.stdout, STDOUT), (self.proc.stderr, STDERR)):
            if reader is not None:
                pumps.append(asyncio.ensure_future(self._pump_pipe(reader, channel)))
        try:
            code = await self.proc.wait()
            pending: set[asyncio.Task[None]] = set(pumps)
            while pending:
                _, pending = await asyncio.wait(pending, timeout=GRACE)
                if pending and not self.busy and self.loop.time() - self.last_output >= GRACE:
                    break
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._close_master()
        return 128 - code if code < 0 else code

    async def write_stdin(self, data: bytes) -> None:
        if not self.stdin_open or not data:
            return
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.write(data)
                await self.proc.stdin.drain()
            except (ConnectionError, RuntimeError):
                self.stdin_open = False
            return
        view = memoryview(data)
        while view and self.master is not None and not self.hangup.is_set():
            fd = self.master
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await _wait_fd(self.loop, fd, True, self.hangup)
            except OSError:
                return

    async def close_stdin(self) -> None:
        if not self.stdin_open:
            return
        self.stdin_open = False
        if self.proc.stdin is not None:
            self.proc.stdin.close()
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.wait_closed()
        elif self.master is not None:
            self.hangup.set()

    def resize(self, payload: bytes) -> None:
        """One ``{"Width": w, "Height": h}`` (keys in any case, as Go decodes them); an invalid
        message ends the resize stream, as the server's JSON decoder does."""
        if not self.resizes or self.master is None:
            return
        try:
            obj = json.loads(payload)
            size = {str(k).lower(): int(v) for k, v in obj.items()}
        except (ValueError, TypeError, AttributeError):
            self.resizes = False
            return
        cols, rows = size.get("width", 0), size.get("height", 0)
        if cols < 1 or rows < 1 or cols > 65535 or rows > 65535:
            return  # the kubelet skips sizes with a zero side
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class _PodNet:
    """A pod's network namespace: a local HTTP server per port it listens on."""

    def __init__(self, namespace: str, name: str, uid: str) -> None:
        self.namespace, self.name, self.uid = namespace, name, uid
        self.sandbox = _hex_id("sandbox:" + uid)
        self.netns = f"/var/run/netns/cni-{uuid.uuid5(uuid.NAMESPACE_URL, uid)}"
        self.runner: web.AppRunner | None = None
        self.sites: dict[int, int] = {}  # pod port -> local port
        self.by_local: dict[int, int] = {}
        self.conns: set[asyncio.StreamWriter] = set()
        self.dead = False
        self._lock = asyncio.Lock()

    async def _local_port(self, port: int) -> int:
        async with self._lock:
            if port in self.sites:
                return self.sites[port]
            if self.runner is None:
                app = web.Application()
                app.router.add_get("/", self._root)
                app.router.add_get("/bytes/{n:\\d+}", self._bytes)
                app.router.add_route("*", "/echo", self._echo)
                self.runner = web.AppRunner(
                    app, handle_signals=False, access_log=None, shutdown_timeout=0.1
                )
                await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None and server.sockets
            local = server.sockets[0].getsockname()[1]
            self.sites[port], self.by_local[local] = local, port
            return local

    def _headers(self, request: web.Request) -> dict[str, str]:
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        port = self.by_local.get(sock[1], 0) if sock else 0
        return {"X-Pod": self.name, "X-Pod-Namespace": self.namespace, "X-Pod-Port": str(port)}

    async def _root(self, request: web.Request) -> web.Response:
        headers = self._headers(request)
        return web.Response(
            text=f"hello from pod {self.name} port {headers['X-Pod-Port']}\n", headers=headers
        )

    async def _bytes(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        resp = web.StreamResponse(headers=self._headers(request))
        resp.content_type = "application/octet-stream"
        resp.content_length = n
        await resp.prepare(request)
        block = memoryview(_BLOCK)
        while n > 0:
            step = min(n, len(block))
            await resp.write(block[:step])
            n -= step
        await resp.write_eof()
        return resp

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(
            body=body or request.query_string.encode(),
            headers=self._headers(request),
            content_type=request.content_type if body else "text/plain",
        )

    async def connect(
        self, port: int, serving: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.dead or not serving:
            raise ConnectionRefusedError
        local = await self._local_port(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", local, limit=4 * CHUNK)
        if self.dead:
            writer.transport.abort()
            raise ConnectionRefusedError
        self.conns.add(writer)
        return reader, writer

    def refused(self, port: int) -> str:
        """containerd's message for a port nothing listens on, as the kubelet writes it on the
        port's error channel."""
        return (
            f"error forwarding port {port} to pod {self.sandbox}, uid : failed to execute "
            f'portforward in network namespace "{self.netns}": failed to connect to '
            f'localhost:{port} inside namespace "{self.sandbox}", IPv4: dial tcp4 '
            f"127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: "
            "connect: connection refused "
        )

    async def shutdown(self) -> None:
        """The pod is gone: its connections are cut (no FIN handshake) and nothing listens."""
        self.dead = True
        for writer in list(self.conns):
            writer.transport.abort()
        self.conns.clear()
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await runner.cleanup()


class Streams:
    """The exec and port-forward subresources of ``FakeApi`` (see the module docstring)."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api
        #: (namespace, pod) -> programs its "image" lacks (besides the pod annotation).
        self.missing_programs: dict[tuple[str, str], set[str]] = {}
        #: (namespace, pod) -> ports it listens on besides its containers' containerPorts.
        self.extra_ports: dict[tuple[str, str], set[int]] = {}
        self.execs: dict[str, set[_Exec]] = {}  # pod uid -> running execs
        self.nets: dict[str, _PodNet] = {}  # pod uid -> network
        self._reapers: set[asyncio.Task[Any]] = set()
        self._home: tempfile.TemporaryDirectory[str] | None = None

    # knobs and lifecycle ---------------------------------------------------------------------
    def serve(self, pod: str, *ports: int, namespace: str = "default") -> None:
        self.extra_ports.setdefault((namespace, pod), set()).update(ports)

    def pod_removed(self, pod: Obj) -> None:
        """The kubelet stops the pod: exec'd processes are killed (their sessions end with exit
        code 137), forwarded connections are cut and its ports stop listening."""
        uid = pod["metadata"].get("uid", "")
        for session in list(self.execs.get(uid, ())):
            session.signal(signal.SIGKILL)
        net = self.nets.pop(uid, None)
        if net is not None:
            self._track(net.shutdown())

    async def close(self) -> None:
        for sessions in self.execs.values():
            for session in sessions:
                session.signal(signal.SIGKILL)
        for net in list(self.nets.values()):
            self._track(net.shutdown())
        self.nets.clear()
        while self._reapers:
            await asyncio.gather(*list(self._reapers), return_exceptions=True)
        if self._home is not None:
            self._home.cleanup()
            self._home = None

    def _track(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    async def _reap(self, session: _Exec) -> None:
        """The client went away: SIGHUP to the process group, SIGKILL if it lingers."""
        session.signal(signal.SIGHUP)
        try:
            await asyncio.wait_for(asyncio.shield(session.proc.wait()), HANGUP_GRACE)
        except TimeoutError:
            session.signal(signal.SIGKILL)
            await session.proc.wait()

    # HTTP --------------------------------------------------------------------------------------
    async def handle(
        self, request: web.Request, sub: str, namespace: str, name: str
    ) -> web.StreamResponse:
        rec = self.api.objects.get(("", "pods", namespace, name))
        if rec is None:
            raise not_found(self.api.kind_of("v1", "Pod"), name)
        pod = rec.obj
        if sub == "exec":
            return await self._exec(request, pod)
        return await self._port_forward(request, pod)

    def _container(self, pod: Obj, wanted: str) -> Obj:
        name = pod["metadata"]["name"]
        containers = pod["spec"].get("containers") or []
        if not wanted:
            if len(containers) == 1:
                return containers[0]
            names = " ".join(c["name"] for c in containers)
            message = f"a container name must be specified for pod {name}"
            if containers:
                message += f", choose one of: [{names}]"
            raise StatusError(400, "BadRequest", message)
        for c in containers:
            if c["name"] == wanted:
                return c
        raise StatusError(400, "BadRequest", f"container {wanted} is not valid for pod {name}")

    @staticmethod
    def _scheduled(pod: Obj) -> None:
        if not pod["spec"].get("nodeName"):
            raise StatusError(
                400,
                "BadRequest",
                f"pod {pod['metadata']['name']} does not have a host assigned",
            )

    def _missing(self, pod: Obj) -> set[str]:
        meta = pod["metadata"]
        out = set(self.missing_programs.get((meta.get("namespace", ""), meta["name"]), ()))
        sources = [meta.get("annotations") or {}]
        for ref in meta.get("ownerReferences") or []:
            for (_, _, ns, owner), rec in self.api.objects.items():
                same = ns == meta.get("namespace") and owner == ref.get("name")
                if same and rec.obj["metadata"].get("uid") == ref.get("uid"):
                    tmpl = (rec.obj.get("spec") or {}).get("template") or {}
                    sources.append((tmpl.get("metadata") or {}).get("annotations") or {})
        for notes in sources:
            out.update(str(notes.get(MISSING_ANNOTATION, "")).replace(",", " ").split())
        return out

    def _home_dir(self) -> str:
        if self._home is None:
            self._home = tempfile.TemporaryDirectory(prefix="ktl-fake-home-")
        return self._home.name

    # exec ----------------------------------------------------------------------------------------
    async def _exec(self, request: web.Request, pod: Obj) -> web.StreamResponse:
        q = request.query
        container = self._container(pod, q.get("container", ""))
        self._scheduled(pod)
        argv = q.getall("command", [])
        stdin, tty = _flag(q, "stdin", False), _flag(q, "tty", False)
        stdout, stderr = _flag(q, "stdout", True), _flag(q, "stderr", True)
        offered = _offered(request)
        # The API server's stream translator takes websocket requests offering v5.
        translated = _is_websocket(request) and V5 in offered
        if tty:
            stderr = False  # the kubelet merges stderr into the terminal
        problem: tuple[int, str] | None = None
        if not (stdin or stdout or stderr):
            problem = (400, "you must specify at least 1 of stdin, stdout, stderr")
        elif not _running(pod, container["name"]):
            problem = (500, f'container not found ("{container["name"]}")')
        if translated:
            protocol: str | None = V5
        elif problem is not None:
            return _text(*problem)
        else:
            protocol = _negotiate(offered, KUBELET_EXEC)
        refusal = _handshake_refusal(request, protocol)
        if refusal is not None:
            return refusal
        assert protocol is not None
        wire = await _upgrade(request, protocol)
        legacy = protocol in ("", V1, V1_BASE64)
        first = STDOUT if stdout else STDERR if stderr else ERROR
        await wire.send(first, b"")  # the kubelet's "connection established" message

        async def finish(status: Obj) -> web.WebSocketResponse:
            if not legacy:
                await wire.send(ERROR, _go_json(status))
            elif status["status"] != "Success":
                await wire.send(ERROR, status["message"].encode())
            with contextlib.suppress(ConnectionError, RuntimeError):
                await wire.ws.close()
            return wire.ws

        if problem is not None:  # translated: the SPDY upgrade to the kubelet failed
            return await finish(_internal(f"unable to upgrade connection: {problem[1]}"))

        def failed(err: str) -> Obj:
            err = f"error executing command in container: {err}"
            return _internal(f"Internal error occurred: {err}" if translated else err)

        start_err = self._start_error(pod, container, argv)
        if start_err is not None:
            return await finish(failed(start_err))
        try:
            session = await self._spawn(wire, pod, container, argv, stdin, stdout, stderr, tty)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            return await finish(failed(self._oci_error(f'exec: "{argv[0]}": {reason}')))
        uid = pod["metadata"]["uid"]
        self.execs.setdefault(uid, set()).add(session)
        pump_in = asyncio.ensure_future(self._exec_input(session, wire, protocol == V5))
        done = False
        try:
            code = await session.run()
            pump_in.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump_in
            done = True
            if code == 0:
                return await finish({"metadata": {}, "status": "Success"})
            reason = (
                f"command terminated with exit code {code}"
                if translated
                else f"error executing command {_go_list(argv)}, exit code {code}"
            )
            return await finish(_exit_status(code, reason))
        finally:
            pump_in.cancel()
            self.execs.get(uid, set()).discard(session)
            if not done or session.proc.returncode is None:
                self._track(self._reap(session))

    def _oci_error(self, what: str) -> str:
        return (
            f'failed to exec in container: failed to start exec "{secrets.token_hex(32)}": OCI runtime '
            f"exec failed: exec failed: unable to start container process: {what}: unknown"
        )

    def _env(self, pod: Obj, container: Obj, tty: bool) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOSTNAME": pod["metadata"]["name"],
            "HOME": self._home_dir(),
        }
        if tty:
            env["TERM"] = "xterm"
        env.update({e["name"]: str(e.get("value", "")) for e in container.get("env") or []})
        return env

    def _start_error(self, pod: Obj, container: Obj, argv: list[str]) -> str | None:
        """What runc says when the program is not in the image (or the pod pretends so)."""
        if not argv:
            return self._oci_error("exec: no command specified")
        program = argv[0]
        missing = self._missing(pod)
        lacks = program in missing or os.path.basename(program) in missing
        path = self._env(pod, container, False)["PATH"]
        if "/" in program:
            if lacks or not os.path.exists(program):
                return self._oci_error(
                    f'exec: "{program}": stat {program}: no such file or directory'
                )
        elif lacks or shutil.which(program, path=path) is None:
            return self._oci_error(f'exec: "{program}": executable file not found in $PATH')
        return None

    async def _spawn(
        self,
        wire: _Wire,
        pod: Obj,
        container: Obj,
        argv: list[str],
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> _Exec:
        env = self._env(pod, container, tty)
        cwd = container.get("workingDir") or "/"
        if not os.path.isdir(cwd):
            cwd = "/"
        if tty:
            master, slave = pty.openpty()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_take_controlling_terminal,
                )
            except OSError:
                os.close(master)
                raise
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            return _Exec(wire, proc, master, stdin, stdout)
        pipe, devnull = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=pipe if stdin else devnull,
            stdout=pipe if stdout else devnull,
            stderr=pipe if stderr else devnull,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_container_signals,
            limit=CHUNK,
        )
        return _Exec(wire, proc, None, stdin, stdout)

    async def _exec_input(self, session: _Exec, wire: _Wire, v5: bool) -> None:
        """Client messages until it closes; then its process is hung up."""
        try:
            async for data in wire.messages():
                if v5 and data[:1] == bytes((CLOSE,)):
                    if len(data) != 2:
                        break  # wsstream drops the connection on a malformed close signal
                    if data[1] == STDIN:
                        await session.close_stdin()
                    continue
                decoded = wire.decode(data)
                if decoded is None:
                    continue
                channel, payload = decoded
                if channel == STDIN:
                    await session.write_stdin(payload)
                elif channel == RESIZE:
                    session.resize(payload)
        finally:
            if session.proc.returncode is None and wire.ws.closed:
                self._track(self._reap(session))

    # port-forward --------------------------------------------------------------------------------
    def _serving(self, pod: Obj) -> set[int]:
        meta = pod["metadata"]
        ports = set(self.extra_ports.get((meta.get("namespace", ""), meta["name"]), ()))
        for c in pod["spec"].get("containers") or []:
            for p in c.get("ports") or []:
                tcp = isinstance(p, dict) and p.get("protocol", "TCP") == "TCP"
                if tcp and isinstance(p.get("containerPort"), int):
                    ports.add(p["containerPort"])
        return ports

    async def _port_forward(self, request: web.Request, pod: Obj) -> web.StreamResponse:
        ports: list[int] = []
        for value in request.query.getall("ports", []):
            for part in value.split(","):
                if not part.isdigit() or not part.isascii():
                    raise StatusError(
                        400,
                        "BadRequest",
                        f'cannot convert to []int32: strconv.ParseUint: parsing "{part}": invalid syntax',
                    )
                if int(part) > 65535:
                    raise StatusError(
                        400,
                        "BadRequest",
                        f'cannot convert to []int32: strconv.ParseUint: parsing "{part}": value out of range',
                    )
                ports.append(int(part))
        self._scheduled(pod)
        if _is_websocket(request):  # the kubelet reads the ports of websocket requests only
            if not ports:
                return _text(400, 'query parameter "port" is required')
            for port in ports:
                if port < 1:
                    return _text(400, f'port "{port}" must be > 0')
        meta = pod["metadata"]
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return _text(500, f'pod not found ("{meta["name"]}_{meta.get("namespace", "")}")')
        protocol = _negotiate(_offered(request), KUBELET_PORT_FORWARD)
        refusal = _handshake_refusal(request, protocol)
        if refusal is not None:
            return refusal
        assert protocol is not None
        wire = await _upgrade(request, protocol)
        for i, port in enumerate(ports):
            prefix = struct.pack("<H", port)
            await wire.send(2 * i, prefix)
            await wire.send(2 * i + 1, prefix)
        uid = meta["uid"]
        net = self.nets.get(uid)
        if net is None:
            net = self.nets[uid] = _PodNet(meta.get("namespace", ""), meta["name"], uid)
        serving = self._serving(pod) if _running(pod) else set()
        inboxes = [_Inbox() for _ in ports]
        forwards = [
            asyncio.ensure_future(self._forward(wire, i, port, port in serving, inboxes[i], net))
            for i, port in enumerate(ports)
        ]
        everything = asyncio.gather(*forwards, return_exceptions=True)
        pump_in = asyncio.ensure_future(self._forward_input(wire, inboxes))
        try:
            await asyncio.wait({everything, pump_in}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pump_in.cancel()
            for task in forwards:
                task.cancel()
            await asyncio.gather(everything, pump_in, return_exceptions=True)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await wire.ws.close()
        return wire.ws

    async def _forward_input(self, wire: _Wire, inboxes: list[_Inbox]) -> None:
        async for data in wire.messages():
            decoded = wire.decode(data)
            if decoded is None:
                continue
            channel, payload = decoded
            if channel % 2 == 0 and channel // 2 < len(inboxes) and payload:
                await inboxes[channel // 2].put(payload)

    async def _forward(
        self, wire: _Wire, i: int, port: int, serving: bool, inbox: _Inbox, net: _PodNet
    ) -> None:
        """One port: connect inside the pod and copy both ways until either side ends."""
        try:
            reader, writer = await net.connect(port, serving)
        except OSError:
            inbox.close()
            await wire.send(2 * i + 1, net.refused(port).encode())
            return

        async def upstream() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while True:
                    writer.write(await inbox.get())
                    await writer.drain()

        up = asyncio.ensure_future(upstream())
        try:
            while True:
                try:
                    data = await reader.read(CHUNK)
                except (ConnectionError, OSError):
                    break
                if not data or not await wire.send(2 * i, data):
                    break
        finally:
            inbox.close()
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await up
            net.conns.discard(writer)
            writer.transport.abort()


class _Inbox:
    """Data from the client for one port: bounded (the reader waits, as wsstream's pipes do)
    until the port's connection has ended, after which data is dropped."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        self.closed = False

    async def put(self, data: bytes) -> None:
        if not self.closed:
            await self._queue.put(data)

    async def get(self) -> bytes:
        return await self._queue.get()

    def close(self) -> None:
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
