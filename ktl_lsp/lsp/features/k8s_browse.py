"""``ktl.k8s.list``: what the cluster runs, for the editors' pickers (no typing pod names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pygls.exceptions import JsonRpcException

from ktl_lsp.k8s.listing import DEFAULT_KINDS, KINDS, list_items
from ktl_lsp.lsp.arguments import ArgumentError
from ktl_lsp.lsp.feature import REQUEST_FAILED, Feature, command
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.server import KtlServer


@dataclass
class ListArgs:
    kinds: list[str] | None = None  #: plural names; pods, workloads and services by default
    namespace: str | None = None
    context: str | None = None

    def check(self) -> None:
        unknown = [k for k in self.kinds or [] if k not in KINDS]
        if unknown:
            raise ArgumentError(
                f"field 'kinds': unknown {', '.join(unknown)} (known: {', '.join(KINDS)})"
            )


class K8sBrowse(Feature):
    def __init__(self, server: KtlServer, context: KubeContext) -> None:
        self.k8s = context.k8s

    @command("ktl.k8s.list")
    async def list_cluster(self, a: ListArgs) -> dict[str, Any]:
        cluster, problem = await self.k8s.cluster(a.context)
        if cluster is None:
            raise JsonRpcException(problem or "no cluster", REQUEST_FAILED)
        namespace = self.k8s.namespace(cluster, a.namespace)
        async with cluster.using():
            items = await list_items(cluster, namespace, list(a.kinds or DEFAULT_KINDS))
        return {"context": cluster.name, "namespace": namespace, "items": items}
