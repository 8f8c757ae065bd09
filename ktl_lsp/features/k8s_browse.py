"""``ktl.k8s.list``: what the cluster runs, for the editors' pickers (no typing pod names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pygls.exceptions import JsonRpcException

from ktl_lsp.features.arguments import ArgumentError, parse
from ktl_lsp.features.k8s import cluster_of, namespace_of
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.k8s.listing import DEFAULT_KINDS, KINDS, list_items
from ktl_lsp.server import KtlServer

#: LSP 3.17 RequestFailed: the request was fine, the cluster said no (or is not there).
REQUEST_FAILED = -32803


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


def setup(server: KtlServer) -> None:
    @server.command("ktl.k8s.list")
    async def list_(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(ListArgs, args)
        cluster, problem = await cluster_of(ls, a.context)
        if cluster is None:
            raise JsonRpcException(problem or "no cluster", REQUEST_FAILED)
        namespace = namespace_of(ls, cluster, a.namespace)
        try:
            async with cluster.using():
                items = await list_items(cluster, namespace, list(a.kinds or DEFAULT_KINDS))
        except K8sError as exc:
            raise JsonRpcException(str(exc), REQUEST_FAILED) from exc
        return {"context": cluster.name, "namespace": namespace, "items": items}
