"""The objects of a manifest file, as the cluster operations see them.

Every document of the file becomes a ``Manifest``: either an object that can be sent, or the
reason nothing is sent for it (a YAML error, no ``kind``, no name...) with the range to show it
at. Document indexes are the YAML stream's, the same that CodeLens and ``documents`` use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import to_python
from ktl_lsp.documents.yaml_parse import ParsedText, YamlDocument, parse_text
from ktl_lsp.k8s.fieldpath import doc_anchor

#: Applied first (and deleted last): what other objects live in or are typed by.
FIRST = {"Namespace", "CustomResourceDefinition"}
#: Applied before workloads so they find them: identities, config, storage, networking.
EARLY = {
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "PriorityClass",
    "LimitRange",
    "ResourceQuota",
    "Service",
}


@dataclass
class Manifest:
    index: int
    doc: YamlDocument
    obj: dict[str, Any] | None = None
    problem: str | None = None  #: why nothing is sent for this document
    problem_range: Range | None = None
    code: str = "k8s-api-error"

    @property
    def empty(self) -> bool:
        return self.obj is None and self.problem is None

    @property
    def kind(self) -> str:
        return str((self.obj or {}).get("kind") or "")

    @property
    def api_version(self) -> str:
        return str((self.obj or {}).get("apiVersion") or "")

    @property
    def name(self) -> str:
        return str(((self.obj or {}).get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str | None:
        ns = ((self.obj or {}).get("metadata") or {}).get("namespace")
        return str(ns) if ns else None

    def label(self) -> str:
        if self.obj is None:
            return f"document {self.index}"
        return f"{self.kind}/{self.name}" if self.name else f"{self.kind} (document {self.index})"


def load(text: str) -> tuple[ParsedText, list[Manifest]]:
    parsed = parse_text(text)
    return parsed, [_manifest(doc) for doc in parsed.documents]


def _manifest(doc: YamlDocument) -> Manifest:
    m = Manifest(doc.index, doc)
    chunk = doc.chunk
    if not chunk.usable:
        problem = next((p for p in chunk.problems if p.severity == "error"), None)
        reason = problem.message if problem else "invalid YAML"
        m.problem = f"not sent: YAML error: {reason}"
        m.code = "yaml-syntax"
        m.problem_range = (
            problem.range.shifted(doc.start_line)
            if problem
            else Range.of(doc.start_line, 0, doc.start_line, 0)
        )
        return m
    if chunk.root is None:
        return m  # an empty document: nothing to do
    value = to_python(chunk.root)
    anchor = doc_anchor(doc)
    if value is None:
        return m
    if not isinstance(value, dict):
        m.problem, m.problem_range = (
            "not sent: the document is not a Kubernetes object (a mapping)",
            anchor,
        )
        return m
    if not value.get("kind"):
        m.problem, m.problem_range = "not sent: the document has no kind", anchor
        return m
    if not value.get("apiVersion"):
        m.problem, m.problem_range = "not sent: the document has no apiVersion", anchor
        return m
    meta = value.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        reason = (
            "generateName cannot be applied"
            if isinstance(meta, dict) and meta.get("generateName")
            else "metadata.name is missing"
        )
        m.problem, m.problem_range = f"not sent: {reason}", anchor
        m.obj = None
        return m
    m.obj = value
    return m


def rank(kind: str) -> int:
    if kind in FIRST:
        return 0
    if kind in EARLY:
        return 1
    return 2


def tiers(manifests: list[Manifest], reverse: bool = False) -> list[list[Manifest]]:
    """Groups in dependency order (namespaces and CRDs first; last when deleting)."""
    groups: dict[int, list[Manifest]] = {}
    for m in manifests:
        groups.setdefault(rank(m.kind), []).append(m)
    order = sorted(groups, reverse=reverse)
    return [groups[r] for r in order]
