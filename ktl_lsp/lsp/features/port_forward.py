"""``ktl.portForward``: local ports on 127.0.0.1 forwarded to a pod, a Service or a workload.

The command answers as soon as the ports listen, with their URLs (``forwards``); the session
runs on (logging each connection and every switch to a new pod) until it is cancelled. Running
forwards show in ``ktl.sessions.list`` as sessions of kind ``port-forward`` whose
``meta.forwards`` carry the URLs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.guard import Mutation
from ktl_lsp.k8s.portforward import PortSpec, forward, parse_ports
from ktl_lsp.k8s.sessions import CANCEL, K8sSessions, question, verdict
from ktl_lsp.k8s.targets import PodTarget
from ktl_lsp.lsp.arguments import ArgumentError, TokenArgs
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.features.approvals import Approvals, editor_who
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.approvals import Question
from ktl_lsp.sessions.manager import LiveSession, RunSpec


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
    def __init__(
        self, server: KtlServer, context: KubeContext, runs: Runs, approvals: Approvals
    ) -> None:
        self.server = server
        self.k8s = context.k8s
        self.runs = runs
        self.approvals = approvals

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
        mutation = Mutation("Forward ports", f"{' '.join(a.ports)} to {target.label}", "on")
        if cluster is not None and self.runs.host.persists():
            live, forwards = await self._in_host(a, spec, cluster, target, mutation)
            return self._answer(live, forwards, target)
        bound: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        body = functools.partial(forward, self.server.manager, target, a.specs(), bound)
        live = self.k8s.start(spec, cluster, problem, body, mutation)
        await self.runs.follow(live, a, detach=True)
        waiters: list[asyncio.Future[Any]] = [bound, live.done]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not bound.done():
            bound.cancel()
            return self._answer(live, None, target)
        return self._answer(live, bound.result(), target)

    def _answer(
        self, live: LiveSession, forwards: list[dict[str, Any]] | None, target: PodTarget
    ) -> dict[str, Any]:
        result = live.session.result()
        if forwards is None:
            return result
        result["forwards"] = forwards
        if not self.server.settings.session_data:
            # Editors with a ktl client show the URL with their own buttons; tell the others.
            urls = ", ".join(f"{f['url']} -> {target.label}:{f['remote']}" for f in forwards)
            self.server.window_show_message(
                lsp.ShowMessageParams(lsp.MessageType.Info, f"ktl: forwarding {urls}")
            )
        return result

    async def _in_host(
        self,
        a: PortForwardArgs,
        spec: RunSpec,
        cluster: Cluster,
        target: PodTarget,
        mutation: Mutation,
    ) -> tuple[LiveSession, list[dict[str, Any]] | None]:
        """Runs the forward in the session host, so it serves on when the editor goes. The
        guard runs here first: the host never asks a person."""
        self.k8s.refuse_read_only(cluster, mutation)
        request: dict[str, Any] = {
            "kubeconfig": list(cluster.config.files),
            "context": cluster.name,
            "target": dataclasses.asdict(target),
            "ports": a.ports,
        }
        if self.k8s.protected(cluster):
            approval, refused = await self._ask_first(cluster, target.namespace, mutation)
            spec.meta["approvals"] = [approval]
            request.update(approval=approval, refused=refused)
        return await self.runs.host.port_forward(spec, request, self.runs.watcher(a))

    async def _ask_first(
        self, cluster: Cluster, namespace: str, mutation: Mutation
    ) -> tuple[dict[str, Any], str | None]:
        """Asks the person in the editor before anything is handed over: the settled question
        as the session records it, and why not (None: yes)."""
        q = Question("", 1, question(cluster, namespace, mutation), [mutation.verb, CANCEL])
        try:
            choice = await asyncio.wait_for(
                self.approvals.ask_editor(q.text, q.choices), self.k8s.approval_timeout_s
            )
            q.state, q.answer, q.who = "answered", choice, editor_who()
        except TimeoutError:
            q.state, q.who = "withdrawn", "timeout"
        q.answered_at = time.time()
        record = q.to_json()
        record.pop("sessionId")
        return record, verdict(q, mutation.verb)
