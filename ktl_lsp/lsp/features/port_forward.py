"""``ktl.portForward``: local ports on 127.0.0.1 forwarded to a pod, a Service or a workload.

The command answers as soon as the ports listen, with their URLs (``forwards``); the session
runs on (logging each connection and every switch to a new pod) until it is cancelled. Running
forwards show in ``ktl.sessions.list`` as sessions of kind ``port-forward`` whose
``meta.forwards`` carry the URLs.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.guard import Mutation
from ktl_lsp.k8s.portforward import PortForwarder, PortSpec, parse_ports
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.k8s.targets import PodTarget
from ktl_lsp.lsp.arguments import ArgumentError, TokenArgs
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.manager import LiveSession, RunSpec, TaskOutcome
from ktl_lsp.sessions.model import State


@dataclass
class PortForwardArgs(TokenArgs):
    """Exactly one of ``pod``, ``service`` or ``workload``; ``ports`` like kubectl's."""

    ports: list[str]
    pod: str | None = None
    service: str | None = None
    workload: str | None = None
    namespace: str | None = None
    context: str | None = None
    title: str | None = None

    def check(self) -> None:
        if sum(x is not None for x in (self.pod, self.service, self.workload)) != 1:
            raise ArgumentError("exactly one of 'pod', 'service' or 'workload' is required")
        if self.workload is not None and "/" not in self.workload:
            raise ArgumentError("field 'workload': expected <kind>/<name>, e.g. deployment/web")
        try:
            self.specs()
        except ValueError as exc:
            raise ArgumentError(f"field 'ports': {exc}") from exc

    def specs(self) -> list[PortSpec]:
        return parse_ports(self.ports)


class PortForwards(Feature):
    def __init__(self, server: KtlServer, context: KubeContext, runs: Runs) -> None:
        self.server = server
        self.k8s = context.k8s
        self.runs = runs

    @command("ktl.portForward")
    async def port_forward(self, a: PortForwardArgs) -> dict[str, Any]:
        cluster, problem = await self.k8s.cluster(a.context)
        namespace = self.k8s.namespace(cluster, a.namespace)
        target = PodTarget(namespace, pod=a.pod, service=a.service, workload=a.workload)
        title = f"ktl port-forward {target.label} -n {namespace} {' '.join(a.ports)}"
        spec = RunSpec(
            argv=[],
            command=title,
            kind="port-forward",
            title=a.title or title,
            meta=K8sSessions.meta(cluster, "ktl port-forward", namespace, target=target.label),
        )
        bound: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        body = functools.partial(self._forward, target, a.specs(), bound)
        mutation = Mutation("Forward ports", f"{' '.join(a.ports)} to {target.label}", "on")
        live = self.k8s.start(spec, cluster, problem, body, mutation)
        await self.runs.follow(live, a, detach=True)
        waiters: list[asyncio.Future[Any]] = [bound, live.done]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        result = live.session.result()
        if not bound.done():
            bound.cancel()
            return result
        result["forwards"] = forwards = bound.result()
        if not self.server.settings.session_data:
            # Editors with a ktl client show the URL with their own buttons; tell the others.
            urls = ", ".join(f"{f['url']} -> {target.label}:{f['remote']}" for f in forwards)
            self.server.window_show_message(
                lsp.ShowMessageParams(lsp.MessageType.Info, f"ktl: forwarding {urls}")
            )
        return result

    async def _forward(
        self,
        target: PodTarget,
        specs: list[PortSpec],
        bound: asyncio.Future[list[dict[str, Any]]],
        live: LiveSession,
        cluster: Cluster,
    ) -> TaskOutcome:
        forwarder = PortForwarder(cluster, target, specs, live)
        forwards = await forwarder.bind()
        await self.server.manager.update_meta(live.id, forwards=forwards)
        bound.set_result(forwards)
        await forwarder.run()
        return TaskOutcome(State.DONE, 0)  # pragma: no cover - runs until cancelled
