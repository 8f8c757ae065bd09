"""Kubernetes work as recorded sessions, the same for the editor's commands and plan nodes.

One place decides which cluster and namespace a piece of work uses, what its session's meta
says, how it looks in the terminal and how a cluster error ends it (state ``error``, exit code
1, the message on a red ``error:`` line). It knows sessions and clusters, never the editor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ktl_lsp.k8s.client import Cluster, Clusters
from ktl_lsp.k8s.errors import ConfigError, K8sError
from ktl_lsp.k8s.style import DIM, RESET, error_line
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, TaskOutcome
from ktl_lsp.sessions.model import State

Body = Callable[[LiveSession, Cluster], Awaitable[TaskOutcome]]


class K8sSessions:
    """The workspace's clusters (and its picked context and namespace), and sessions on them."""

    def __init__(self, manager: Callable[[], SessionManager], clusters: Clusters | None = None):
        self._manager = manager  # opened on first use: start-up does not pay for the store
        self.clusters = clusters or Clusters()

    async def cluster(self, context: str | None) -> tuple[Cluster | None, str | None]:
        """The cluster of ``context`` (else the picked one, else current), or why there is none."""
        try:
            return await self.clusters.get(context), None
        except ConfigError as exc:
            return None, str(exc)

    def preferred_namespace(self, given: str | None) -> str | None:
        """The argument, else the workspace's pick; None lets each document say."""
        return given or self.clusters.default_namespace

    def namespace(self, cluster: Cluster | None, given: str | None) -> str:
        """The namespace work happens in: the argument, the workspace's pick, the context's."""
        return (
            self.preferred_namespace(given)
            or (cluster.default_namespace if cluster else None)
            or "default"
        )

    @staticmethod
    def meta(
        cluster: Cluster | None, command: str, namespace: str | None, **more: Any
    ) -> dict[str, Any]:
        """Session meta in ktl's shape (``command``, ``cluster``, ``kubeContext``, ...)."""
        meta: dict[str, Any] = {"command": command, **more}
        if cluster is not None:
            meta.update(
                cluster=cluster.context.cluster,
                kubeContext=cluster.name,
                namespace=namespace or cluster.default_namespace,
            )
        return meta

    @staticmethod
    def fail(live: LiveSession, message: str) -> TaskOutcome:
        """Ends Kubernetes work that could not be done, the one way it is shown and reported."""
        live.write(error_line(message))
        return TaskOutcome(State.ERROR, 1, message)

    def start(
        self, spec: RunSpec, cluster: Cluster | None, problem: str | None, body: Body
    ) -> LiveSession:
        """Runs ``body`` on ``cluster`` as a session; no cluster or a cluster error ends it."""

        async def work(live: LiveSession) -> TaskOutcome:
            if cluster is None:
                return self.fail(live, problem or "no cluster")
            live.write(f"{DIM}context {cluster.name} ({cluster.context.cluster}){RESET}\r\n")
            try:
                async with cluster.using():
                    return await body(live, cluster)
            except K8sError as exc:
                return self.fail(live, str(exc))

        return self._manager().start_task(spec, work)
