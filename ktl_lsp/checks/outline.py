"""The structure CodeLens needs: Kubernetes documents, stack releases and plan nodes, with ranges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ktl_lsp.documents.file_kinds import FileKind
from ktl_lsp.documents.nodes import MappingNode, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import get, scalar_text
from ktl_lsp.documents.yaml_parse import ParsedText

WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
)


@dataclass(frozen=True, slots=True)
class OutlineItem:
    kind: Literal["k8s-object", "stack-release", "plan-node"]
    range: Range
    """Where the lens goes: the item's first line through its end."""
    label: str
    document: int
    """0-based document index in the file (for `ktl.apply` `documents`)."""
    details: dict[str, str] = field(default_factory=dict)

    @property
    def is_workload(self) -> bool:
        return self.kind == "k8s-object" and self.details.get("kind") in WORKLOAD_KINDS


def _ports(root: MappingNode, kind: str) -> list[str]:
    """The ports a port-forward lens offers: a Service's ports, a workload's container ports."""
    if kind == "Service":
        lists = [get(root, "spec", "ports")]
        key = "port"
    elif kind in WORKLOAD_KINDS and kind != "CronJob":
        pod_spec = get(root, "spec") if kind == "Pod" else get(root, "spec", "template", "spec")
        containers = get(pod_spec, "containers")
        items = containers.value if isinstance(containers, SequenceNode) else []
        lists = [get(c, "ports") for c in items]
        key = "containerPort"
    else:
        return []
    out: list[str] = []
    for node in lists:
        for entry in node.value if isinstance(node, SequenceNode) else []:
            port = scalar_text(get(entry, key))
            if port and port.isdigit() and port not in out:
                out.append(port)
    return out


def outline_of(kind: FileKind, parsed: ParsedText) -> list[OutlineItem]:
    items: list[OutlineItem] = []
    for document in parsed.documents:
        root = document.root
        if not isinstance(root, MappingNode):
            continue
        if kind == FileKind.K8S_MANIFEST:
            api_version, object_kind = (
                scalar_text(get(root, "apiVersion")),
                scalar_text(get(root, "kind")),
            )
            if not api_version or not object_kind:
                continue
            name = scalar_text(get(root, "metadata", "name")) or ""
            details = {"apiVersion": api_version, "kind": object_kind, "name": name}
            namespace = scalar_text(get(root, "metadata", "namespace"))
            if namespace:
                details["namespace"] = namespace
            ports = _ports(root, object_kind)
            if ports:
                details["ports"] = ",".join(ports)
            items.append(
                OutlineItem(
                    "k8s-object",
                    document.range_of(root),
                    f"{object_kind}/{name}",
                    document.index,
                    details,
                )
            )
        elif kind == FileKind.KTL_RELEASE:
            release = scalar_text(get(root, "name"))
            if release:
                items.append(
                    OutlineItem(
                        "stack-release",
                        document.range_of(root),
                        release,
                        document.index,
                        {"name": release},
                    )
                )
        elif kind in (FileKind.KTL_STACK, FileKind.PLAN):
            stack = kind == FileKind.KTL_STACK
            list_key, key = ("releases", "name") if stack else ("nodes", "id")
            item_kind: Literal["stack-release", "plan-node"] = (
                "stack-release" if stack else "plan-node"
            )
            entries = get(root, list_key)
            for entry in entries.value if isinstance(entries, SequenceNode) else []:
                label = scalar_text(get(entry, key))
                if label:
                    items.append(
                        OutlineItem(
                            item_kind, document.range_of(entry), label, document.index, {key: label}
                        )
                    )
    return items
