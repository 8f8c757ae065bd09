"""Drift: how a live object differs from what a manifest document would make of it.

The document is sent as a server-side dry-run apply (as ``ktl.diff`` does, forcing ownership),
and the answer is compared with the live object after the same normalisation as the diff. Each
differing field is named with its declared and live values and the field manager that set the
live value (from ``managedFields``), so "replicas 3 -> 5 set by ktl-scale" says who drifted it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.errors import ApiError
from ktl_lsp.k8s.manifests import Manifest
from ktl_lsp.k8s.ops import FIELD_MANAGER, normalize

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Change:
    path: Path
    declared: Any
    live: Any
    manager: str | None

    def text(self) -> str:
        leaf = ".".join(str(p) for p in self.path[-1:]) if self.path else "object"
        by = f" set by {self.manager}" if self.manager else ""
        return f"{leaf} {_short(self.declared)} -> {_short(self.live)}{by}"


@dataclass(frozen=True)
class Drift:
    changes: tuple[Change, ...]

    def message(self) -> str:
        n = len(self.changes)
        first = self.changes[0].text()
        return f"live differs: {n} field{'s' if n != 1 else ''}, {first}"


def _short(value: Any) -> str:
    text = "<none>" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _leaves(value: Any, prefix: Path = ()) -> dict[Path, Any]:
    if isinstance(value, dict) and value:
        out: dict[Path, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, (*prefix, str(k))))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(_leaves(v, (*prefix, i)))
        return out
    return {prefix: value}


def changes(live: dict[str, Any], merged: dict[str, Any]) -> list[Change]:
    """The fields where the dry-run result (``merged``, the document's values) and ``live``
    differ, sorted by path."""
    a, b = _leaves(normalize(live) or {}), _leaves(normalize(merged) or {})
    managed = (live.get("metadata") or {}).get("managedFields") or []
    out = []
    for path in sorted(set(a) | set(b), key=lambda p: [str(x) for x in p]):
        if a.get(path) != b.get(path):
            out.append(Change(path, b.get(path), a.get(path), manager_of(managed, path)))
    return out


def manager_of(managed: list[dict[str, Any]], path: Path) -> str | None:
    """The field manager owning the deepest part of ``path`` (other than ktl's own apply)."""
    best: tuple[int, str] | None = None
    for entry in managed:
        fields = entry.get("fieldsV1") or {}
        depth = 0
        for part in path:
            if not isinstance(part, str) or not isinstance(fields, dict):
                break
            key = f"f:{part}"
            if key not in fields:
                break
            fields = fields[key]
            depth += 1
        manager = str(entry.get("manager") or "")
        if depth and manager != FIELD_MANAGER and (best is None or depth > best[0]):
            best = (depth, manager)
    return best[1] if best else None


async def drift_of(cluster: Cluster, m: Manifest, namespace: str | None) -> Drift | None:
    """How the live object of ``m`` differs from the document; None when it does not exist
    or does not differ."""
    res = await cluster.resource_for(m.api_version, m.kind)
    if res is None or m.obj is None:
        return None
    ns = (m.namespace or namespace or cluster.default_namespace) if res.namespaced else None
    try:
        _, live = await cluster.request("GET", res.path(ns, m.name))
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise
    body = dict(m.obj)
    if ns:
        body["metadata"] = {**(body.get("metadata") or {}), "namespace": ns}
    _, merged = await cluster.request(
        "PATCH",
        res.path(ns, m.name),
        [("fieldManager", FIELD_MANAGER), ("force", "true"), ("dryRun", "All")],
        body=body,
        content_type="application/apply-patch+yaml",
    )
    found = changes(dict(live or {}), dict(merged or {}))
    return Drift(tuple(found)) if found else None
