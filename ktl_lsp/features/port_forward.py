"""``ktl.portForward``: local ports on 127.0.0.1 forwarded to a pod, a Service or a workload.

The command answers as soon as the ports listen, with their URLs (``forwards``); the session
runs on (logging each connection and every switch to a new pod) until it is cancelled. Running
forwards show in ``ktl.sessions.list`` as sessions of kind ``port-forward`` whose
``meta.forwards`` carry the URLs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp

from ktl_lsp.features.arguments import ArgumentError, parse
from ktl_lsp.features.k8s import cluster_of, namespace_of, session_meta, start_k8s_session
from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.portforward import PortForwarder, PortSpec, parse_ports
from ktl_lsp.k8s.targets import Target
from ktl_lsp.server import KtlServer
from ktl_lsp.sessions.manager import LiveSession, RunSpec, TaskOutcome
from ktl_lsp.sessions.model import State


@dataclass
class PortForwardArgs:
    """Exactly one of ``pod``, ``service`` or ``workload``; ``ports`` like kubectl's."""

    ports: list[str]
    pod: str | None = None
    service: str | None = None
    workload: str | None = None
    namespace: str | None = None
    context: str | None = None
    title: str | None = None
    workDoneToken: int | str | None = None

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


def setup(server: KtlServer) -> None:
    @server.command("ktl.portForward")
    async def port_forward(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(PortForwardArgs, args)
        cluster, problem = await cluster_of(ls, a.context)
        namespace = namespace_of(ls, cluster, a.namespace)
        target = Target(namespace, pod=a.pod, service=a.service, workload=a.workload)
        command = f"ktl port-forward {target.label} -n {namespace} {' '.join(a.ports)}"
        spec = RunSpec(
            argv=[],
            command=command,
            kind="port-forward",
            title=a.title or command,
            meta=session_meta(cluster, "ktl port-forward", namespace, target=target.label),
        )
        bound: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()

        async def body(live: LiveSession, cluster: Cluster) -> TaskOutcome:
            forwarder = PortForwarder(cluster, target, a.specs(), live)
            forwards = await forwarder.bind()
            live.session.meta["forwards"] = forwards
            store = ls.manager.store
            if store is not None:
                store.save_session(live.session)
            bound.set_result(forwards)
            await forwarder.run()
            return TaskOutcome(State.DONE, 0)  # pragma: no cover - runs until cancelled

        started = await start_k8s_session(ls, spec, cluster, problem, body, True, a.workDoneToken)
        live = ls.manager.get_live(started["sessionId"])
        waiters: list[asyncio.Future[Any]] = [bound, live.done]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        result = live.session.result()
        if not bound.done():
            bound.cancel()
            return result
        forwards = bound.result()
        result["forwards"] = forwards
        if not ls.settings.session_data:
            # Editors with a ktl client show the URL with their own buttons; tell the others.
            urls = ", ".join(f"{f['url']} -> {target.label}:{f['remote']}" for f in forwards)
            ls.window_show_message(
                lsp.ShowMessageParams(lsp.MessageType.Info, f"ktl: forwarding {urls}")
            )
        return result
