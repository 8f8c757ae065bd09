"""Names of the connected cluster's ConfigMaps, Secrets, ServiceAccounts, PVCs and Services for
completion, cached per context, namespace and kind.

A context is active once the user picks one (``ktl.k8s.use``, as for the cluster's CRDs). The
cluster is never asked on the completion request path: a lookup answers from the cache and,
when its entry is missing or older than ``FRESH_S``, starts a refresh in the background, so the
first completion may lack the cluster's names and a later one has them. Lists ask for metadata
only (``PartialObjectMetadataList``): a Secret's data never leaves the cluster. A cluster that
cannot be reached only logs; completion keeps the names it had.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ktl_lsp.aio import background
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.lsp.feature import Feature
from ktl_lsp.lsp.features.completion import Completions
from ktl_lsp.lsp.features.k8s_context import KubeContext

if TYPE_CHECKING:
    from ktl_lsp.checks.completion import Listed

log = logging.getLogger(__name__)

#: Kinds completed by name (all in the core group), with their resource.
PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "ServiceAccount": "serviceaccounts",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Service": "services",
}
#: Metadata only, as ``kubectl get`` asks; a server that cannot answers the plain list.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
FRESH_S = 30.0

Key = tuple[str, str, str]
"""(context, namespace, kind)"""


@dataclass(frozen=True, slots=True)
class _Entry:
    names: tuple[str, ...]
    at: float


class ClusterObjects(Feature):
    def __init__(self, context: KubeContext, completions: Completions) -> None:
        self.clusters = context.k8s.clusters
        self._cache: dict[Key, _Entry] = {}
        self._pending: set[Key] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: (context name, its namespace) once a context is active.
        self._active: tuple[str, str] | None = None
        context.on_use.append(self.activate)
        completions.cluster = self.lookup

    def activate(self, context: str | None) -> None:
        """A context was picked: learn its name and fill the cache for its namespace."""
        self._loop = asyncio.get_running_loop()

        async def run() -> None:
            try:
                cluster = await self.clusters.get(context)
            except K8sError as exc:
                self._active = None
                log.info("cluster names not listed: %s", exc)
                return
            self._active = (cluster.name, cluster.default_namespace)
            namespace = self.clusters.default_namespace or cluster.default_namespace
            for kind in PLURALS:
                self._refresh_soon((cluster.name, namespace, kind))

        background(run(), name="cluster-names")

    def lookup(self, kind: str, namespace: str | None) -> Listed | None:
        """What the cache knows (any thread); a missing or stale entry is refreshed later."""
        from ktl_lsp.checks.completion import Listed

        active = self._active
        if active is None or kind not in PLURALS:
            return None
        context = active[0]
        namespace = namespace or self.clusters.default_namespace or active[1]
        key = (context, namespace, kind)
        entry = self._cache.get(key)
        if entry is None or time.monotonic() - entry.at > FRESH_S:
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(self._refresh_soon, key)
        return Listed(context, namespace, entry.names) if entry is not None else None

    def _refresh_soon(self, key: Key) -> None:
        with self._lock:
            if key in self._pending:
                return
            self._pending.add(key)
        background(self._refresh(key), name="cluster-names-refresh")

    async def _refresh(self, key: Key) -> None:
        context, namespace, kind = key
        try:
            cluster = await self.clusters.get(context)
            async with cluster.using():
                _, body = await cluster.request(
                    "GET",
                    f"/api/v1/namespaces/{namespace}/{PLURALS[kind]}",
                    timeout=10,
                    accept=METADATA_ONLY,
                )
            items = (body or {}).get("items") if isinstance(body, dict) else None
            names = sorted(
                {
                    str(name)
                    for item in items or []
                    if isinstance(item, dict) and (name := (item.get("metadata") or {}).get("name"))
                }
            )
            self._cache[key] = _Entry(tuple(names), time.monotonic())
        except K8sError as exc:
            old = self._cache.get(key)
            # Keep what was known, and wait FRESH_S before asking again.
            self._cache[key] = _Entry(old.names if old else (), time.monotonic())
            log.info("%s names of %s not listed: %s", kind, context, exc)
        finally:
            with self._lock:
                self._pending.discard(key)
