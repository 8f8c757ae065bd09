"""Checks across documents and files: duplicate resources, Services that select nothing.

Each document is reduced once to a small `ResourceSummary` (cached with its parse), so the
workspace-wide pass is a few dictionary operations per document even on very large workspaces.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ktl_lsp.checks.findings import Finding, Related
from ktl_lsp.checks.k8s_manifest import list_items, string_map, type_info
from ktl_lsp.checks.k8s_schemas import CLUSTER_SCOPED_KINDS, split_api_version
from ktl_lsp.checks.schema_engine import node_range
from ktl_lsp.documents.nodes import MappingNode, Node, SequenceNode
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
    ports: tuple[tuple[str, int | str], ...] = ()
    """A workload's named container ports (name, containerPort); a Service's ports (name or
    "", port): what `targetPort` and an Ingress backend's port are completed with."""


def summarize_all(root: Node | None) -> tuple[ResourceSummary, ...]:
    """The named objects of one document: itself, or each item of a list (nested lists too)."""
    items = list_items(root)
    if items is None:
        summary = summarize(root)
        return () if summary is None else (summary,)
    out: list[ResourceSummary] = []
    for item in items:
        if list_items(item.node) is not None:
            out.extend(summarize_all(item.node))
            continue
        summary = summarize(item.node, item.api_version, item.kind)
        if summary is not None:
            out.append(summary)
    return tuple(out)


def summarize(
    root: Node | None, api_version: str | None = None, kind: str | None = None
) -> ResourceSummary | None:
    """One object's summary; ``api_version``/``kind`` when it inherits them from its list."""
    if not isinstance(root, MappingNode):
        return None
    if api_version is None or kind is None:
        info = type_info(root)
        api_version, kind = info.api_version, info.kind
    if not api_version or not kind:
        return None
    name_pair = get_pair(get(root, "metadata"), "name")
    name = scalar_text(name_pair[1]) if name_pair else None
    if name is None or name_pair is None:
        return None
    group, _ = split_api_version(api_version)
    pod_labels: tuple[tuple[str, str], ...] | None = None
    path = POD_TEMPLATE_PATHS.get(kind)
    labels_node = get(root, *path) if path else get(root, "spec", "template", "metadata", "labels")
    labels = string_map(labels_node)
    if labels is not None:
        pod_labels = tuple(sorted((k, v) for k, (v, _) in labels.items()))
    selector = selector_range = None
    ports: tuple[tuple[str, int | str], ...] = ()
    if path is not None:
        ports = _container_ports(get(root, *path[:-2], "spec"))
    if kind == "Service" and group == "":
        ports = _ports(get(root, "spec", "ports"), "port", named_only=False)
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
        ports,
    )


def _ports(
    node: Node | None, number_key: str, named_only: bool
) -> tuple[tuple[str, int | str], ...]:
    """(name, number) of a list of port objects (a container's, a Service's)."""
    out: list[tuple[str, int | str]] = []
    for item in node.value if isinstance(node, SequenceNode) else ():
        name = scalar_text(get(item, "name")) or ""
        number = scalar_text(get(item, number_key)) or ""
        if (name or not named_only) and number:
            out.append((name, int(number) if number.isdigit() else number))
    return tuple(out)


def _container_ports(pod_spec: Node | None) -> tuple[tuple[str, int | str], ...]:
    containers = get(pod_spec, "containers")
    return tuple(
        port
        for container in (containers.value if isinstance(containers, SequenceNode) else ())
        for port in _ports(get(container, "ports"), "containerPort", named_only=True)
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


ApplyUnits = Callable[[str], frozenset[object]]
"""A file's apply units: two files sharing one are applied together (a directory, a
kustomization file). Each file is one with itself."""


def workspace_findings(
    summaries: Iterable[PlacedSummary],
    namespaced_crd: dict[tuple[str, str], bool] | None = None,
    units: ApplyUnits | None = None,
    scope: str = "in the workspace",
) -> dict[str, list[Finding]]:
    """Duplicates and Services selecting no workload (information), by path; `scope` says in
    messages where the summaries come from.

    A duplicate is a warning where its copies are applied together (``units``; without them,
    every file is applied with every other); copies never applied together are one hint for
    the object, on its first copy."""
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
        if len(members) >= 2:
            _duplicates(out, group, kind, name, members, units, scope)
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


def _duplicates(
    out: dict[str, list[Finding]],
    group: str,
    kind: str,
    name: str,
    members: list[PlacedSummary],
    units: ApplyUnits | None,
    scope: str,
) -> None:
    members.sort(key=lambda p: (p.path, p.name_range.start))
    label = f"{group}/{kind}" if group else kind
    shared: list[frozenset[object]] = [
        (units(m.path) if units else frozenset({None})) | {m.path} for m in members
    ]
    for index, member in enumerate(members):
        partners = [
            (other, shared[index] & shared[at])
            for at, other in enumerate(members)
            if at != index and shared[index] & shared[at]
        ]
        if not partners:
            continue
        where = _where(member.path, partners[0][1], scope)
        out[member.path].append(
            Finding(
                member.name_range,
                "warning",
                "k8s-duplicate-resource",
                f'{label} "{name}" is defined {len(partners) + 1} times {where}',
                tuple(Related(o.name_range, "also defined here", o.path) for o, _ in partners[:5]),
            )
        )
    first = members[0]
    unrelated = [m for i, m in enumerate(members) if i and not shared[0] & shared[i]]
    if unrelated:
        out[first.path].append(
            Finding(
                first.name_range,
                "hint",
                "k8s-duplicate-resource",
                f'{label} "{name}" is also defined in {len(unrelated)} other place(s) never '
                "applied with this one (not the same file, directory, or kustomization)",
                tuple(Related(o.name_range, "also defined here", o.path) for o in unrelated[:5]),
            )
        )


def _where(path: str, common: frozenset[object], scope: str) -> str:
    """Says what applies the copies together, for the message."""
    if path in common:
        return "in this file"
    files = sorted(u for u in common if isinstance(u, Path))
    if files:
        return f"in the resources of {files[0].parent.name}/{files[0].name}"
    if any(isinstance(u, tuple) and u and u[0] == "directory" for u in common):
        return "in this directory (applied together by kubectl apply -f)"
    return scope
