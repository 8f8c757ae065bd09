"""CRDs learned from the connected cluster, so custom resources it serves validate offline too.

"Connected" means the user has worked with a cluster from the editor: picking a context
(``ktl.k8s.use``) or applying to it learns its CRDs in the background (apply may have just added
some); ``ktl.k8s.learnCrds`` does it on demand and reports what it found. A cluster that cannot
be reached or refuses the list is not an error for diagnostics: the workspace's own CRDs still
count, and the reason is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pygls.exceptions import JsonRpcException

from ktl_lsp.aio import background, import_off_loop
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import REQUEST_FAILED, Feature, command
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.server import KtlServer

log = logging.getLogger(__name__)
CRDS_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


@dataclass
class LearnArgs:
    context: str | None = None  #: default: the context picked with ktl.k8s.use, else current


class ClusterCrds(Feature):
    def __init__(self, server: KtlServer, context: KubeContext, checker: Checker) -> None:
        self.server = server
        self.k8s = context.k8s
        self.checker = checker
        context.on_use.append(self.learn_soon)

    @command("ktl.k8s.learnCrds")
    async def learn_crds(self, a: LearnArgs) -> dict[str, Any]:
        try:
            return await self.learn(a.context)
        except K8sError as exc:
            raise JsonRpcException(
                f"cannot learn the cluster's CRDs: {exc}", REQUEST_FAILED
            ) from exc

    async def learn(self, context: str | None = None) -> dict[str, Any]:
        await import_off_loop("ktl_lsp.checks.crds")
        from ktl_lsp.checks.crds import crd_versions_of_object

        cluster = await self.k8s.clusters.get(context)
        async with cluster.using():
            _, body = await cluster.request("GET", CRDS_PATH, timeout=30)
        items = [i for i in (body or {}).get("items") or [] if isinstance(i, dict)]
        versions = [v for item in items for v in crd_versions_of_object(item)]
        rechecked = await self.checker.set_cluster_crds(versions)
        log.info("learned %d CRDs from context %s", len(items), cluster.name)
        return {
            "context": cluster.name,
            "crds": sorted(str((i.get("metadata") or {}).get("name", "")) for i in items),
            "versions": len(versions),
            "rechecked": rechecked,
        }

    def learn_soon(self, context: str | None = None) -> None:
        """Learns in the background; a failure only logs (the editor did not ask for this)."""

        async def run() -> None:
            try:
                await self.learn(context)
            except K8sError as exc:
                log.info("cluster CRDs not learned: %s", exc)

        background(run(), name="learn-cluster-crds")
