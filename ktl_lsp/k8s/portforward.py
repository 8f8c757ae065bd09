"""Port-forward that outlives the pod: local listeners on 127.0.0.1, one stream per connection.

Each accepted connection opens its own port-forward websocket to the pod that serves the target
*now*: a Service or workload is resolved to a running, ready pod (kubectl's choice) and a Service
port is mapped to the pod port it leads to. A watch on the target's pods notices when that pod
is deleted, restarted or stops being ready, and the next connection goes to its replacement (new
connections wait up to ``CONNECT_WAIT_S`` for one during a rollout). A connection that was open
on a pod that died ends, as it would on the pod itself; the forward does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ktl_lsp.k8s import channels
from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.errors import ApiError, K8sError
from ktl_lsp.k8s.style import DIM, RED, RESET, YELLOW
from ktl_lsp.k8s.targets import (
    NoReadyPod,
    PodTarget,
    is_ready,
    resource,
    running_pod,
    selector_of,
    service,
    service_port,
)
from ktl_lsp.k8s.watch import Backoff, watch
from ktl_lsp.sessions.manager import LiveSession, SessionManager, TaskOutcome
from ktl_lsp.sessions.model import State

HOST = "127.0.0.1"
#: A new connection waits this long for a ready pod (a rollout replacing the pods).
CONNECT_WAIT_S = 30.0
READ_SIZE = 256 * 1024


class Output(Protocol):
    def write(self, text: str) -> None: ...
    def event(self, **fields: Any) -> None: ...


@dataclass(frozen=True)
class PortSpec:
    local: int  #: 0: the system picks a free port
    remote: int


def parse_ports(items: list[str]) -> list[PortSpec]:
    """``8080:80`` (local:remote), ``:80`` (any free local port), ``80`` (the same port)."""
    if not items:
        raise ValueError('no ports given (e.g. "8080:80" or ":80")')
    out = []
    for item in items:
        local_text, sep, remote_text = str(item).strip().rpartition(":")
        if not sep:
            local_text = remote_text
        try:
            local = int(local_text) if local_text else 0
            remote = int(remote_text)
        except ValueError:
            raise ValueError(
                f'port "{item}": expected LOCAL:REMOTE, :REMOTE or PORT with numbers'
            ) from None
        if not 0 <= local <= 65535 or not 1 <= remote <= 65535:
            raise ValueError(f'port "{item}": ports are 1-65535 (local 0 or empty: any)')
        out.append(PortSpec(local, remote))
    return out


@dataclass
class Forward:
    spec: PortSpec
    server: asyncio.Server
    local: int

    def to_lsp(self) -> dict[str, Any]:
        return {
            "local": self.local,
            "remote": self.spec.remote,
            "url": f"http://{HOST}:{self.local}",
        }


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


class PortForwarder:
    def __init__(
        self,
        cluster: Cluster,
        target: PodTarget,
        ports: list[PortSpec],
        out: Output,
        connect_wait_s: float = CONNECT_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.target = target
        self.ports = ports
        self.out = out
        self.connect_wait_s = connect_wait_s
        self.clock = clock
        self.forwards: list[Forward] = []
        self.connections = 0
        self.switches = 0
        self._pod: dict[str, Any] | None = None
        self._svc: dict[str, Any] | None = None
        self._last_name: str | None = None
        self._resolving: asyncio.Lock = asyncio.Lock()
        self._open: set[asyncio.Task[None]] = set()

    # -- setup --------------------------------------------------------------------------------
    async def bind(self) -> list[dict[str, Any]]:
        """Resolves the target once (so a typo fails now) and opens the local listeners."""
        await self._current_pod()
        for spec in self.ports:
            try:
                server = await asyncio.start_server(
                    functools.partial(self._accept, spec), HOST, spec.local
                )
            except OSError as exc:
                await self.close()
                if exc.errno == errno.EADDRINUSE:
                    raise K8sError(f"local port {spec.local} is already in use") from exc
                raise K8sError(f"cannot listen on {HOST}:{spec.local}: {exc.strerror}") from exc
            local = int(server.sockets[0].getsockname()[1])
            self.forwards.append(Forward(spec, server, local))
        for f in self.forwards:
            self.out.write(
                f"Forwarding from {HOST}:{f.local} -> {self.target.label}:{f.spec.remote}  "
                f"(http://{HOST}:{f.local})\r\n"
            )
        return [f.to_lsp() for f in self.forwards]

    async def run(self) -> None:
        """Follows the target's pods until cancelled."""
        try:
            await self._follow_pods()
        finally:
            await self.close()

    async def close(self) -> None:
        for f in self.forwards:
            f.server.close()
        for task in list(self._open):
            task.cancel()
        for task in list(self._open):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for f in self.forwards:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(f.server.wait_closed(), 2.0)

    # -- which pod ----------------------------------------------------------------------------
    def _name(self) -> str | None:
        return str(self._pod["metadata"]["name"]) if self._pod else None

    async def _current_pod(self) -> dict[str, Any]:
        async with self._resolving:
            if self._pod is None:
                previous = self._last_name
                self._pod = await running_pod(self.cluster, self.target)
                name = self._name()
                if previous and previous != name:
                    self.switches += 1
                    self.out.write(f"{YELLOW}now forwarding to pod {name}{RESET}\r\n")
                    self.out.event(portForward="switched", pod=name, previous=previous)
                self._last_name = name
            return self._pod

    def _forget(self, why: str) -> None:
        name = self._name()
        if name is not None:
            self._pod = None
            self.out.write(f"{YELLOW}pod {name} {why}; re-resolving {self.target.label}{RESET}\r\n")

    async def _follow_pods(self) -> None:
        pods = await resource(self.cluster, "v1", "Pod")
        labels, fields = None, None
        if self.target.pod:
            fields = f"metadata.name={self.target.pod}"
        else:
            labels = await selector_of(self.cluster, self.target)
        async for kind, pod in watch(
            self.cluster, pods, self.target.namespace, labels, fields, notice=self._notice
        ):
            name = pod.get("metadata", {}).get("name")
            if self._pod is None or name != self._name():
                continue
            if kind == "DELETED":
                self._forget("was deleted")
            elif (pod.get("metadata") or {}).get("deletionTimestamp"):
                self._forget("is being deleted")
            elif not is_ready(pod):
                self._forget("is not ready")
            elif _restarts(pod) != _restarts(self._pod):
                self._pod = pod
                self.out.write(f"{YELLOW}pod {name} restarted; forwarding on{RESET}\r\n")
            if self._pod is None:
                with contextlib.suppress(K8sError):
                    await self._current_pod()  # eagerly, so the switch shows in the log

    def _notice(self, text: str) -> None:
        self.out.write(f"{DIM}{text}{RESET}\r\n")

    # -- connections --------------------------------------------------------------------------
    def _accept(self, spec: PortSpec, reader: asyncio.StreamReader, writer: Any) -> None:
        task = asyncio.ensure_future(self._serve(spec, reader, writer))
        self._open.add(task)
        task.add_done_callback(self._open.discard)

    async def _connect(self, remote: int) -> tuple[Any, str, int]:
        """A port-forward stream to the pod serving the target now, waiting out a rollout."""
        deadline = self.clock() + self.connect_wait_s
        # Polling for a ready pod is one LIST: cheap enough to do often during a rollout.
        backoff = Backoff(first=0.02, cap=1.0)
        stale = 0
        while True:
            try:
                pod = await self._current_pod()
                port = remote
                if self.target.service:
                    if self._svc is None:
                        self._svc = await service(
                            self.cluster, self.target.namespace, self.target.service
                        )
                    port = service_port(self._svc, remote, pod)
                name = str(pod["metadata"]["name"])
                pods = await resource(self.cluster, "v1", "Pod")
                path = pods.path(self.target.namespace, name) + "/portforward"
                ws = await self.cluster.websocket(
                    path, [("ports", port)], channels.PORT_FORWARD_PROTOCOLS
                )
                return ws, name, port
            except (NoReadyPod, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.code not in (400, 404, 500):
                    raise
                if self.clock() >= deadline:
                    raise K8sError(f"no pod to forward to: {exc}") from exc
                if isinstance(exc, ApiError) and self._pod is not None and stale < 2:
                    stale += 1  # the pod we knew is gone: look again at once
                    self._forget("is gone")
                    continue
                self._forget("is gone")
                await asyncio.sleep(backoff.next_delay())

    async def _serve(self, spec: PortSpec, reader: asyncio.StreamReader, writer: Any) -> None:
        self.connections += 1
        local = next((f.local for f in self.forwards if f.spec == spec), spec.local)
        started = self.clock()
        self.out.write(f"Handling connection for {local}\r\n")
        try:
            ws, pod, port = await self._connect(spec.remote)
        except K8sError as exc:
            self.out.write(f"{RED}error: connection for {local}: {exc}{RESET}\r\n")
            writer.close()
            return
        sent = received = 0
        error = ""

        async def upstream() -> None:
            nonlocal sent
            while True:
                chunk = await reader.read(READ_SIZE)
                if not chunk:
                    return
                sent += len(chunk)
                await ws.send_bytes(channels.frame(0, chunk))

        async def downstream() -> None:
            import aiohttp

            nonlocal received, error
            first = {0: True, 1: True}
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                channel, payload = channels.split(msg.data)
                if first.get(channel):
                    first[channel] = False
                    _, payload = channels.port_prefix(payload)
                if not payload:
                    continue
                if channel == 0:
                    received += len(payload)
                    writer.write(payload)
                    await writer.drain()
                elif channel == 1:
                    error += payload.decode("utf-8", "replace")

        up = asyncio.ensure_future(upstream())
        down = asyncio.ensure_future(downstream())
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (up, down):
                t.cancel()
            for t in (up, down):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            with contextlib.suppress(Exception):
                await ws.close()
            with contextlib.suppress(Exception):
                writer.close()
            if error:
                self.out.write(f"{RED}error from pod {pod} port {port}: {error.strip()}{RESET}\r\n")
            self.out.write(
                f"{DIM}closed connection for {local} (pod {pod}:{port}, "
                f"{_size(received)} in, {_size(sent)} out, {self.clock() - started:.1f}s){RESET}\r\n"
            )


async def forward(
    manager: SessionManager,
    target: PodTarget,
    specs: list[PortSpec],
    bound: asyncio.Future[list[dict[str, Any]]],
    live: LiveSession,
    cluster: Cluster,
) -> TaskOutcome:
    """A port-forward session's work (a ``K8sSessions`` body once the first four are bound):
    listens, records the URLs in ``meta.forwards``, gives them to ``bound``, and forwards until
    cancelled. The language server runs it, or the session host when it outlives the editor."""
    forwarder = PortForwarder(cluster, target, specs, live)
    forwards = await forwarder.bind()
    await manager.update_meta(live.id, forwards=forwards)
    bound.set_result(forwards)
    await forwarder.run()
    return TaskOutcome(State.DONE, 0)  # pragma: no cover - runs until cancelled


def _restarts(pod: dict[str, Any] | None) -> int:
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses)
