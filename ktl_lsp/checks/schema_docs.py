"""What a schema says about a field: description, type, required, default, allowed values.

Compiled schemas (schema_engine) keep only what validation needs; hover reads the raw
definitions they were compiled from. Answers are cached per Kubernetes version and path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ktl_lsp.checks.crds import OBJECT_META, CrdVersion
from ktl_lsp.checks.k8s_formats import ENUMS
from ktl_lsp.checks.k8s_schemas import KubernetesSchemas, schemas_for, versions_serving
from ktl_lsp.checks.schema_engine import REF_PREFIXES

PathPart = str | int

_DEFAULT = re.compile(r"\bDefaults? to (\"[^\"]+\"|'[^']+'|[^\s.,;]+)\.(?:\s|$)")
"""A plain default stated in a description ("Defaults to 1."), not a conditional one."""


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    description: str
    type: str
    """"string", "integer (int32)", "Container" (an object definition), "[]Container", ..."""
    required: bool
    default: str | None
    enum: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResourceDoc:
    api_version: str
    kind: str
    description: str
    served: bool
    """Served in the targeted Kubernetes version."""
    version: str
    """The targeted Kubernetes version."""
    replacement: str | None = None
    """The apiVersion that serves this kind in the targeted version (when this one is not)."""
    served_in: tuple[str, ...] = ()
    """Packaged Kubernetes versions that serve this apiVersion and kind."""


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Walker:
    """Follows a path through raw schemas, resolving `$ref`s through `definitions`."""

    def __init__(self, definition: Any) -> None:
        self._definition = definition

    def target(self, raw: Mapping[str, Any], hops: int = 0) -> tuple[Mapping[str, Any], str | None]:
        """The schema a `$ref` (or a single `allOf` ref) points to, and its definition name."""
        ref = raw.get("$ref")
        if not isinstance(ref, str):
            all_of = raw.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
                ref = all_of[0].get("$ref")
        if isinstance(ref, str) and hops < 20:
            for prefix in REF_PREFIXES:
                if ref.startswith(prefix):
                    name = ref[len(prefix) :]
                    found = self._definition(name)
                    if isinstance(found, Mapping):
                        inner, inner_name = self.target(found, hops + 1)
                        return inner, inner_name or name
        return raw, None

    def type_of(self, raw: Mapping[str, Any]) -> str:
        target, name = self.target(raw)
        if name is not None and name.startswith("io.k8s.apimachinery.pkg.util.intstr"):
            return "integer or string"
        if target.get("x-kubernetes-int-or-string") is True:
            return "integer or string"
        types = target.get("type")
        names = [types] if isinstance(types, str) else list(types or [])
        names = [t for t in names if t != "null"]
        kind = names[0] if names else ("object" if "properties" in target else "")
        if kind == "array":
            items = target.get("items")
            return "[]" + (self.type_of(items) if isinstance(items, Mapping) else "any")
        if kind == "object" and name is not None:
            return _short(name)
        if kind == "object" and isinstance(target.get("additionalProperties"), Mapping):
            return "map[string]" + self.type_of(target["additionalProperties"])
        fmt = target.get("format")
        if kind and isinstance(fmt, str):
            return f"{kind} ({fmt})"
        return kind or (_short(name) if name else "any")

    def field(
        self, root: Mapping[str, Any], root_name: str | None, path: tuple[PathPart, ...]
    ) -> FieldDoc | None:
        """The doc of the field at `path` under `root` (indexes step into array items)."""
        current, current_name = self.target(root)
        current_name = current_name or root_name
        found: FieldDoc | None = None
        for part in path:
            if isinstance(part, int):
                items = current.get("items")
                if not isinstance(items, Mapping):
                    return None
                current, current_name = self.target(items)
                continue
            props = current.get("properties")
            raw = props.get(part) if isinstance(props, Mapping) else None
            if not isinstance(raw, Mapping):
                additional = current.get("additionalProperties")
                if not isinstance(additional, Mapping):
                    return None
                raw = additional
            required = part in (current.get("required") or ())
            target, name = self.target(raw)
            description = str(raw.get("description") or target.get("description") or "")
            enum = raw.get("enum") or target.get("enum")
            values = tuple(str(v) for v in enum) if isinstance(enum, list) else ()
            if not values and current_name is not None:
                values = tuple(ENUMS.get((current_name, part), ()))
            default = raw.get("default", target.get("default"))
            if default is None:
                match = _DEFAULT.search(description)
                default = match.group(1).strip("\"'") if match else None
            found = FieldDoc(
                part,
                description,
                self.type_of(raw),
                required,
                None if default is None else str(default),
                values,
            )
            current, current_name = target, name
        return found


def _builtin_name(
    k8s: KubernetesSchemas, api_version: str, kind: str
) -> tuple[KubernetesSchemas, str] | None:
    """The schemas and definition of a built-in kind; an apiVersion the targeted version no
    longer serves is described from the newest version that does."""
    name = k8s.kinds.get((api_version, kind))
    if name is not None:
        return k8s, name
    serving = versions_serving(api_version, kind)
    if not serving:
        return None
    older = schemas_for(serving[-1])
    name = older.kinds.get((api_version, kind))
    return (older, name) if name is not None else None


@functools.lru_cache(maxsize=4096)
def field_doc(
    version: str, api_version: str, kind: str, path: tuple[PathPart, ...]
) -> FieldDoc | None:
    """The doc of a field of a built-in kind in Kubernetes `version` (None when unknown)."""
    found = _builtin_name(schemas_for(version), api_version, kind)
    if found is None or not path:
        return None
    k8s, name = found
    raw = k8s.compiler.raw(name)
    return _Walker(k8s.compiler.raw).field(raw, name, path) if raw is not None else None


@functools.lru_cache(maxsize=1024)
def resource_doc(version: str, api_version: str, kind: str) -> ResourceDoc | None:
    """What a built-in apiVersion/kind is, and whether `version` serves it (else what does)."""
    k8s = schemas_for(version)
    served_in = versions_serving(api_version, kind)
    found = _builtin_name(k8s, api_version, kind)
    served = (api_version, kind) in k8s.kinds
    replacement = None if served else k8s.preferred_api_version(kind)
    if found is None and replacement is None:
        return None
    description = ""
    if found is not None:
        raw = found[0].compiler.raw(found[1]) or {}
        description = str(raw.get("description") or "")
    elif replacement is not None:
        raw = k8s.compiler.raw(k8s.kinds[(replacement, kind)]) or {}
        description = str(raw.get("description") or "")
    return ResourceDoc(api_version, kind, description, served, k8s.version, replacement, served_in)


def crd_field_doc(crd: CrdVersion, version: str, path: tuple[PathPart, ...]) -> FieldDoc | None:
    """The doc of a field of a custom resource, from its CRD's openAPIV3Schema."""
    if not path:
        return None
    if path[0] == "metadata":
        k8s = schemas_for(version)
        meta = k8s.compiler.raw(OBJECT_META)
        if meta is None:
            return None
        wrapper = {"properties": {"metadata": {"$ref": "#/$defs/" + OBJECT_META}}}
        return _Walker(k8s.compiler.raw).field(wrapper, None, path)
    schema = crd.schema if isinstance(crd.schema, Mapping) else None
    if schema is None:
        return None
    return _Walker(lambda _name: None).field(schema, None, path)
