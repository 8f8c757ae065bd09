"""CustomResourceDefinitions learned from manifests, so custom resources validate like built-ins.

Every served version of every CRD document contributes its openAPIV3Schema; compiled schemas
are cached per (apiVersion, kind, Kubernetes version) until the set of CRDs changes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ktl_lsp.checks.k8s_schemas import KubernetesSchemas
from ktl_lsp.checks.schema_engine import Schema, SchemaCompiler
from ktl_lsp.documents.nodes import Node
from ktl_lsp.documents.yaml_nodes import get, scalar_text, to_python

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
CRD_GROUP = "apiextensions.k8s.io"


@dataclass(frozen=True, slots=True)
class CrdVersion:
    """One version of one CRD."""

    api_version: str
    kind: str
    served: bool
    namespaced: bool
    schema: Any
    """The openAPIV3Schema as plain data (None: the CRD declares no schema)."""


def is_crd(api_version: str | None, kind: str | None) -> bool:
    return kind == "CustomResourceDefinition" and (api_version or "").startswith(CRD_GROUP + "/")


def crd_versions(root: Node) -> list[CrdVersion]:
    """The versions a CRD document defines (v1 and the old v1beta1 layout)."""
    spec = get(root, "spec")
    group = scalar_text(get(spec, "group"))
    kind = scalar_text(get(spec, "names", "kind"))
    if not group or not kind:
        return []
    namespaced = scalar_text(get(spec, "scope")) != "Cluster"
    versions = get(spec, "versions")
    out: list[CrdVersion] = []
    shared_schema = get(spec, "validation", "openAPIV3Schema")  # v1beta1
    items = versions.value if versions is not None and isinstance(versions.value, list) else []
    for item in items:
        name = scalar_text(get(item, "name"))
        if not name:
            continue
        served_node = get(item, "served")
        served = served_node is None or to_python(served_node) is not False
        schema_node = get(item, "schema", "openAPIV3Schema") or shared_schema
        schema = to_python(schema_node) if schema_node is not None else None
        out.append(CrdVersion(f"{group}/{name}", kind, served, namespaced, schema))
    single = scalar_text(get(spec, "version"))
    if not out and single:
        schema = to_python(shared_schema) if shared_schema is not None else None
        out.append(CrdVersion(f"{group}/{single}", kind, True, namespaced, schema))
    return out


def crd_versions_of_object(obj: Any) -> list[CrdVersion]:
    """The versions of a CRD as the API server returns it (apiextensions.k8s.io/v1 JSON)."""
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        return []
    names = spec.get("names") or {}
    group, kind = spec.get("group"), names.get("kind") if isinstance(names, dict) else None
    if not isinstance(group, str) or not isinstance(kind, str) or not group or not kind:
        return []
    namespaced = spec.get("scope") != "Cluster"
    out: list[CrdVersion] = []
    for item in spec.get("versions") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        schema = (item.get("schema") or {}).get("openAPIV3Schema")
        served = item.get("served") is not False
        out.append(CrdVersion(f"{group}/{item['name']}", kind, served, namespaced, schema))
    return out


class CrdRegistry:
    """The CRDs currently known; replace them as a whole with `set_versions`."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], CrdVersion] = {}
        self._compiled: dict[tuple[str, str, str], Schema] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def set_versions(self, versions: Iterable[CrdVersion]) -> bool:
        """Replace the known CRDs; returns whether anything changed."""
        new = {(v.api_version, v.kind): v for v in versions}
        with self._lock:
            if new == self._versions:
                return False
            self._versions = new
            self._compiled.clear()
            self.generation += 1
            return True

    def get(self, api_version: str, kind: str) -> CrdVersion | None:
        return self._versions.get((api_version, kind))

    def versions(self) -> list[CrdVersion]:
        return list(self._versions.values())

    def kinds_in_group(self, group: str) -> list[str]:
        return sorted({k for (a, k) in self._versions if a.startswith(group + "/")})

    def schema(self, crd: CrdVersion, k8s: KubernetesSchemas) -> Schema:
        key = (crd.api_version, crd.kind, k8s.version)
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                compiled = _compile(crd, k8s)
                self._compiled[key] = compiled
            return compiled


def _compile(crd: CrdVersion, k8s: KubernetesSchemas) -> Schema:
    compiler = SchemaCompiler(structural=True)
    raw = crd.schema if isinstance(crd.schema, dict) else {}
    if "type" not in raw:
        raw = {**raw, "type": "object"}
    root = compiler.compile(raw)
    if crd.schema is None:
        root.additional = None  # no schema: anything goes
    string = compiler.compile({"type": "string"})
    root.props = {**root.props, "apiVersion": string, "kind": string}
    if k8s.has_definition(OBJECT_META):
        root.props["metadata"] = k8s.compiler.definition(OBJECT_META)
    return root
