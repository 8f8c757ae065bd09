"""Port-forwards the session host runs, so they serve on when the editor goes.

The language server resolves the cluster, namespace and target, and asks a person on a
protected context, then sends ``portForward`` with what it resolved: ``spec`` (the session's
RunSpec), ``kubeconfig`` (the files it read; none: in-cluster), ``context``, ``target``
(``{namespace, pod|service|workload}``), ``ports`` (kubectl's forms), ``approval`` (the
settled question, recorded in the session) and ``refused`` (why not, when the person said no).
The host runs the same forward (``k8s/portforward.py``) on a kubernetes client of its own.
``forwards`` ``{sid}`` answers with the URLs once the ports listen (none when it ended first).
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any

from ktl_lsp.host.protocol import HostError, spec_of
from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from ktl_lsp.k8s.errors import ConfigError
from ktl_lsp.k8s.portforward import forward, parse_ports
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.k8s.style import DIM, RESET
from ktl_lsp.k8s.targets import PodTarget
from ktl_lsp.sessions.manager import LiveSession, SessionManager, TaskOutcome

Forwards = list[dict[str, Any]]


class HostForwards:
    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        #: No guard here: the language server asked the person before handing the forward over.
        self.k8s = K8sSessions(lambda: manager)
        self._bound: dict[str, asyncio.Future[Forwards]] = {}

    async def start(self, request: dict[str, Any]) -> LiveSession:
        spec = spec_of(request["spec"])
        try:
            ports = parse_ports([str(p) for p in request["ports"]])
            where = request["target"]
            target = PodTarget(
                str(where["namespace"]),
                pod=where.get("pod"),
                service=where.get("service"),
                workload=where.get("workload"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise HostError(f"a port-forward the session host cannot run: {exc}") from exc
        cluster, problem = await self._cluster(request)
        bound: asyncio.Future[Forwards] = asyncio.get_running_loop().create_future()
        body = functools.partial(forward, self.manager, target, ports, bound)
        approval, refused = request.get("approval"), request.get("refused")

        async def work(live: LiveSession, cluster: Cluster) -> TaskOutcome:
            if isinstance(approval, dict):
                live.event(approval=approval)
                if not refused:
                    live.write(f"{DIM}approved by {approval.get('who')}{RESET}\r\n")
            if refused:
                return K8sSessions.refuse(live, str(refused))
            return await body(live, cluster)

        live = self.k8s.start(spec, cluster, problem, work)
        self._bound[live.id] = bound
        live.done.add_done_callback(lambda _: self._bound.pop(live.id, None))
        return live

    async def _cluster(self, request: dict[str, Any]) -> tuple[Cluster | None, str | None]:
        files = [str(f) for f in request.get("kubeconfig") or []]
        environ = {**os.environ, "KUBECONFIG": os.pathsep.join(files)} if files else None
        try:
            config = await asyncio.to_thread(load_kubeconfig, environ)
            return Cluster(config, request.get("context")), None
        except ConfigError as exc:
            return None, str(exc)

    async def forwards(self, session_id: str) -> Forwards | None:
        """The URLs once the ports listen; None when the session ended first (or is not one)."""
        bound = self._bound.get(session_id)
        live = self.manager.live.get(session_id)
        if bound is None or live is None:
            return None
        waiters: list[asyncio.Future[Any]] = [bound, live.done]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        return bound.result() if bound.done() and not bound.cancelled() else None
