"""Checks across documents and files: duplicate resources, Services that select nothing.

Each document is reduced once to a small `ResourceSummary` (cached with its parse), so the
workspace-wide pass is a few dictionary operations per document even on very large workspaces.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node

from ktl_lsp.checks.findings import Finding, Related
from ktl_lsp.checks.k8s_manifest import string_map, type_info
from ktl_lsp.checks.k8s_schemas import CLUSTER_SCOPED_KINDS, split_api_version
from ktl_lsp.checks.schema_engine import node_range
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import get, get_pair, scalar_text

POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "metadata", "labels"),
    "StatefulSet": ("spec", "template", "metadata", "labels"),
    "DaemonSet": ("spec", "template", "metadata", "labels"),
    "ReplicaSet": ("spec", "template", "metadata", "labels"),
    "ReplicationController": ("spec", "template", "metadata", "labels"),
    "Job": ("spec", "template", "metadata", "labels"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "metadata", "labels"),
    "Pod": ("metadata", "labels"),
}


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    """What the workspace-wide checks need from one document (chunk-relative ranges)."""

    group: str
    kind: str
    name: str
    namespace: str | None
    cluster_scoped: bool
    name_range: Range
    pod_labels: tuple[tuple[str, str], ...] | None
    selector: tuple[tuple[str, str], ...] | None
    selector_range: Range | None


def summarize(root: Node | None) -> ResourceSummary | None:
    if not isinstance(root, MappingNode):
        return None
    info = type_info(root)
    if not info.api_version or not info.kind:
        return None
    name_pair = get_pair(get(root, "metadata"), "name")
    name = scalar_text(name_pair[1]) if name_pair else None
    if name is None or name_pair is None:
        return None
    group, _ = split_api_version(info.api_version)
    kind = info.kind
    pod_labels: tuple[tuple[str, str], ...] | None = None
    path = POD_TEMPLATE_PATHS.get(kind)
    labels_node = get(root, *path) if path else get(root, "spec", "template", "metadata", "labels")
    labels = string_map(labels_node)
    if labels is not None:
        pod_labels = tuple(sorted((k, v) for k, (v, _) in labels.items()))
    selector = selector_range = None
    if kind == "Service" and group == "":
        selector_pair = get_pair(get(root, "spec"), "selector")
        if selector_pair is not None:
            found = string_map(selector_pair[1])
            if found:
                selector = tuple(sorted((k, v) for k, (v, _) in found.items()))
                selector_range = node_range(selector_pair[0])
    return ResourceSummary(
        group,
        kind,
        name,
        scalar_text(get(root, "metadata", "namespace")),
        kind in CLUSTER_SCOPED_KINDS,
        node_range(name_pair[1]),
        pod_labels,
        selector,
        selector_range,
    )


@dataclass(frozen=True, slots=True)
class PlacedSummary:
    """A summary with its file and the line its document starts at."""

    path: str
    line_offset: int
    summary: ResourceSummary

    @property
    def name_range(self) -> Range:
        return self.summary.name_range.shifted(self.line_offset)


def workspace_findings(
    summaries: Iterable[PlacedSummary],
    namespaced_crd: dict[tuple[str, str], bool] | None = None,
    scope: str = "in the workspace",
) -> dict[str, list[Finding]]:
    """Duplicates (warning) and Services selecting no workload (information), by path; `scope`
    says in messages where the summaries come from."""
    out: dict[str, list[Finding]] = defaultdict(list)
    groups: dict[tuple[str, str, str, str], list[PlacedSummary]] = defaultdict(list)
    workloads: list[PlacedSummary] = []
    services: list[PlacedSummary] = []
    for placed in summaries:
        s = placed.summary
        scoped = s.cluster_scoped or (namespaced_crd or {}).get((s.group, s.kind)) is False
        namespace = "" if scoped else (s.namespace if s.namespace is not None else "\0")
        groups[(s.group, s.kind, namespace, s.name)].append(placed)
        if s.pod_labels is not None:
            workloads.append(placed)
        if s.selector is not None:
            services.append(placed)
    for (group, kind, _, name), members in groups.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda p: (p.path, p.name_range.start))
        label = f"{group}/{kind}" if group else kind
        for member in members:
            others = [m for m in members if m is not member][:5]
            out[member.path].append(
                Finding(
                    member.name_range,
                    "warning",
                    "k8s-duplicate-resource",
                    f'{label} "{name}" is defined {len(members)} times {scope}',
                    tuple(Related(o.name_range, "also defined here", o.path) for o in others),
                )
            )
    for service in services:
        s = service.summary
        assert s.selector is not None and s.selector_range is not None
        wanted = set(s.selector)
        if any(
            wanted <= set(w.summary.pod_labels or ())
            and (s.namespace is None or w.summary.namespace in (None, s.namespace))
            for w in workloads
        ):
            continue
        shown = ", ".join(f"{k}={v}" for k, v in s.selector)
        out[service.path].append(
            Finding(
                s.selector_range.shifted(service.line_offset),
                "information",
                "k8s-service-no-match",
                f'Service "{s.name}" selects {shown}, which matches no workload {scope}',
            )
        )
    return out
