"""``ktl.k8s.contexts`` and ``ktl.k8s.use``: which cluster and namespace the workspace works in.

The choice lives in the :class:`K8sSessions` service this feature holds, shared by every
Kubernetes command and by plan nodes that run as Jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ktl_lsp.k8s.errors import ConfigError
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.lsp.arguments import ArgumentError
from ktl_lsp.lsp.feature import Feature, NoArgs, command
from ktl_lsp.lsp.server import KtlServer


@dataclass
class UseArgs:
    """``ktl.k8s.use``: the context and namespace for this workspace's commands."""

    context: str | None = None  #: a kubeconfig context; "" goes back to the current-context
    namespace: str | None = None  #: default namespace; "" goes back to the context's


class KubeContext(Feature):
    def __init__(self, server: KtlServer) -> None:
        self.server = server
        self.k8s = K8sSessions(lambda: server.manager, policy=lambda: server.settings.k8s.policy())
        #: Called with the context after ``ktl.k8s.use`` picks one (None: the current one).
        self.on_use: list[Callable[[str | None], None]] = []

    @command("ktl.k8s.contexts")
    async def contexts(self, _: NoArgs) -> dict[str, Any]:
        clusters = self.k8s.clusters
        try:
            config = await clusters.config()
        except ConfigError as exc:
            return {"current": None, "contexts": [], "error": str(exc)}
        return {
            "current": clusters.default_context or config.current,
            "kubeconfig": list(config.files),
            "namespace": clusters.default_namespace,
            "contexts": [self._listed(c.to_lsp()) for c in config.contexts],
        }

    def _listed(self, item: dict[str, Any]) -> dict[str, Any]:
        """A context with its ``protection`` ("protected", "read-only") when the settings guard it."""
        protection = self.k8s.policy.of(str(item["name"]))
        return item if protection == "open" else {**item, "protection": protection}

    @command("ktl.k8s.use")
    async def use(self, a: UseArgs) -> dict[str, Any]:
        clusters = self.k8s.clusters
        if a.context:
            try:
                (await clusters.config()).context(a.context)
            except ConfigError as exc:
                raise ArgumentError(f"field 'context': {exc}") from exc
        if a.context is not None:
            clusters.default_context = a.context or None
        if a.namespace is not None:
            clusters.default_namespace = a.namespace or None
        if a.context is not None:
            for hook in self.on_use:
                hook(clusters.default_context)
        return {"context": clusters.default_context, "namespace": clusters.default_namespace}
