"""The cluster reads agents may make: list, describe, logs (bounded), events, and a server-side
dry-run diff of a file. Read-only verbs only: GET, and PATCH with ``dryRun=All`` for the diff.

Context and namespace default to the kubeconfig's current ones. Secrets' values never leave:
``describe`` of a Secret shows its keys, not its data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ktl_lsp.agents.tools import MAX_BYTES, MAX_LOG_LINES, BadArgument, plain_lines, redact_text
from ktl_lsp.k8s import listing, ops
from ktl_lsp.k8s.client import Cluster, Clusters
from ktl_lsp.k8s.events import event_line
from ktl_lsp.k8s.manifests import load
from ktl_lsp.sessions.plain import cap_tail


class _Collect:
    """An ``ops.Output`` that keeps what a session would have shown."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def event(self, **fields: Any) -> None:
        pass

    @property
    def text(self) -> str:
        return plain_lines("".join(self.parts))


class ClusterTools:
    def __init__(self, clusters: Clusters | None = None) -> None:
        self.clusters = clusters or Clusters()

    async def _cluster(self, context: str | None) -> Cluster:
        return await self.clusters.get(context)

    async def list(
        self, kinds: list[str] | None, namespace: str | None, context: str | None
    ) -> dict[str, Any]:
        wanted = kinds or list(listing.DEFAULT_KINDS)
        unknown = [k for k in wanted if k not in listing.KINDS]
        if unknown:
            raise BadArgument(
                f"unknown kind {unknown[0]!r}: one of {', '.join(sorted(listing.KINDS))}"
            )
        cluster = await self._cluster(context)
        ns = namespace or cluster.default_namespace
        async with cluster.using():
            items = await listing.list_items(cluster, ns, wanted)
        return {"context": cluster.name, "namespace": ns, "items": items}

    async def describe(
        self, kind: str, name: str, namespace: str | None, context: str | None
    ) -> dict[str, Any]:
        cluster = await self._cluster(context)
        ns = namespace or cluster.default_namespace
        async with cluster.using():
            res = await cluster.resource_by_name(kind)
            if res is None:
                raise BadArgument(f"the cluster serves no kind named {kind!r}")
            _, obj = await cluster.request("GET", res.path(ns if res.namespaced else None, name))
            events: list[str] = []
            ev_res = await cluster.resource_for("v1", "Event")
            if ev_res is not None:
                selector = f"involvedObject.name={name},involvedObject.kind={res.kind}"
                _, data = await cluster.request(
                    "GET", ev_res.path(ns), [("fieldSelector", selector)]
                )
                events = [
                    plain_lines(event_line(e)).rstrip("\n")
                    for e in sorted(
                        (data or {}).get("items") or [],
                        key=lambda e: str(e.get("lastTimestamp") or ""),
                    )
                ]
        obj = dict(obj or {})
        (obj.get("metadata") or {}).pop("managedFields", None)
        if res.kind == "Secret":
            for key in ("data", "stringData"):
                if isinstance(obj.get(key), dict):
                    obj[key] = {k: "[REDACTED]" for k in obj[key]}
        text = redact_text(yaml.safe_dump(obj, sort_keys=False))
        text, cut = cap_tail(text, MAX_BYTES)
        return {"context": cluster.name, "yaml": text, "truncated": cut, "events": events}

    async def logs(
        self,
        pod: str,
        namespace: str | None,
        container: str | None,
        tail_lines: int,
        max_bytes: int,
        context: str | None,
    ) -> dict[str, Any]:
        if not 1 <= tail_lines <= MAX_LOG_LINES:
            raise BadArgument(f"tailLines must be between 1 and {MAX_LOG_LINES}, got {tail_lines}")
        if not 1 <= max_bytes <= MAX_BYTES:
            raise BadArgument(f"maxBytes must be between 1 and {MAX_BYTES}, got {max_bytes}")
        cluster = await self._cluster(context)
        ns = namespace or cluster.default_namespace
        name = pod.removeprefix("pod/")
        query: list[tuple[str, Any]] = [("tailLines", tail_lines), ("limitBytes", max_bytes)]
        if container:
            query.append(("container", container))
        async with cluster.using():
            res = await cluster.resource_for("v1", "Pod")
            assert res is not None
            _, body = await cluster.request(
                "GET", res.path(ns, name) + "/log", query, accept="text/plain"
            )
        text = body if isinstance(body, str) else yaml.safe_dump(body)
        text, cut = cap_tail(plain_lines(text), max_bytes)
        return {
            "context": cluster.name,
            "namespace": ns,
            "pod": name,
            "text": text,
            "truncated": cut,
        }

    async def events(self, namespace: str | None, context: str | None) -> dict[str, Any]:
        from ktl_lsp.k8s.events import events

        cluster = await self._cluster(context)
        ns = namespace or cluster.default_namespace
        out = _Collect()
        async with cluster.using():
            await events(cluster, ns, out, follow=False)
        text, cut = cap_tail(out.text, MAX_BYTES)
        return {"context": cluster.name, "namespace": ns, "text": text, "truncated": cut}

    async def diff(self, path: str, namespace: str | None, context: str | None) -> dict[str, Any]:
        file = Path(path)
        if not file.is_file():
            raise BadArgument(f"no such file: {path}")
        _, manifests = load(file.read_text(encoding="utf-8", errors="replace"))
        manifests = [m for m in manifests if not m.empty]
        if not manifests:
            raise BadArgument(f"{path} holds no Kubernetes objects")
        cluster = await self._cluster(context)
        out = _Collect()
        async with cluster.using():
            outcomes = await ops.diff(cluster, manifests, ops.Options(namespace=namespace), out)
        return {
            "context": cluster.name,
            "objects": [
                {**o.to_lsp(), "diff": redact_text(o.diff)} if o.diff else o.to_lsp()
                for o in outcomes
            ],
            "text": cap_tail(out.text, MAX_BYTES)[0],
        }
