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
from ktl_lsp.checks.k8s_schemas import (
    KubernetesSchemas,
    available_versions,
    schemas_for,
    versions_serving,
)
from ktl_lsp.checks.schema_engine import REF_PREFIXES

PathPart = str | int

SERVER_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "io.k8s.api.core.v1.Container": ("image",),
}
"""Keys the schema leaves optional but the API server rejects a workload without (a pod's
containers need an image; the schema is lax for the sake of defaulting tools)."""

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
    required_children: tuple[tuple[str, str], ...] = ()
    """(name, type) of the keys the field's object (or each item of its list) must have."""


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
    removed_in: str | None = None
    """Served now, but not by a later packaged version (deprecated): the first that drops it."""
    successor: str | None = None
    """The apiVersion that serves the kind in `removed_in`."""


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
        walked = self._walk(root, root_name, path)
        return walked[2] if walked is not None else None

    def children(
        self, root: Mapping[str, Any], root_name: str | None, path: tuple[PathPart, ...]
    ) -> tuple[FieldDoc, ...]:
        """The fields an object at `path` under `root` may have (an array's items' fields)."""
        walked = self._walk(root, root_name, path)
        if walked is None:
            return ()
        current, current_name, _ = walked
        items = current.get("items")
        if isinstance(items, Mapping):
            current, current_name = self.target(items)
        props = current.get("properties")
        if not isinstance(props, Mapping):
            return ()
        return tuple(
            self._doc(current, current_name, name, raw)
            for name, raw in props.items()
            if isinstance(name, str) and isinstance(raw, Mapping)
        )

    def _walk(
        self, root: Mapping[str, Any], root_name: str | None, path: tuple[PathPart, ...]
    ) -> tuple[Mapping[str, Any], str | None, FieldDoc | None] | None:
        """(schema, definition name, doc of the last key) at `path`, or None off the schema."""
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
            found = self._doc(current, current_name, part, raw)
            current, current_name = self.target(raw)
        return current, current_name, found

    def _doc(
        self,
        parent: Mapping[str, Any],
        parent_name: str | None,
        part: str,
        raw: Mapping[str, Any],
    ) -> FieldDoc:
        required = part in (parent.get("required") or ()) or part in SERVER_REQUIRED.get(
            parent_name or "", ()
        )
        target, target_name = self.target(raw)
        description = str(raw.get("description") or target.get("description") or "")
        enum = raw.get("enum") or target.get("enum")
        values = tuple(str(v) for v in enum) if isinstance(enum, list) else ()
        if not values and parent_name is not None:
            values = tuple(ENUMS.get((parent_name, part), ()))
        default = raw.get("default", target.get("default"))
        if default is None:
            match = _DEFAULT.search(description)
            default = match.group(1).strip("\"'") if match else None
        required_children = _required_children(self, target, target_name)
        return FieldDoc(
            part,
            description,
            self.type_of(raw),
            required,
            None if default is None else str(default),
            values,
            required_children,
        )


def _required_children(
    walker: _Walker, target: Mapping[str, Any], name: str | None
) -> tuple[tuple[str, str], ...]:
    """(name, type) of the keys an object (or each item of an array) must have."""
    items = target.get("items")
    if isinstance(items, Mapping):
        target, name = walker.target(items)
    required = [*(target.get("required") or ()), *SERVER_REQUIRED.get(name or "", ())]
    props = target.get("properties")
    if not isinstance(props, Mapping):
        return ()
    out = []
    for name in required:
        raw = props.get(name)
        if isinstance(name, str) and isinstance(raw, Mapping):
            out.append((name, walker.type_of(raw)))
    return tuple(out)


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


@functools.lru_cache(maxsize=4096)
def field_children(
    version: str, api_version: str, kind: str, path: tuple[PathPart, ...]
) -> tuple[FieldDoc, ...]:
    """The fields the object at `path` (() for the resource itself) of a built-in kind may have."""
    found = _builtin_name(schemas_for(version), api_version, kind)
    if found is None:
        return ()
    k8s, name = found
    raw = k8s.compiler.raw(name)
    return _Walker(k8s.compiler.raw).children(raw, name, path) if raw is not None else ()


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
    removed_in = successor = None
    versions = available_versions()
    if served and served_in and served_in[-1] != versions[-1]:
        removed_in = versions[versions.index(served_in[-1]) + 1]
        successor = schemas_for(removed_in).preferred_api_version(kind)
    return ResourceDoc(
        api_version,
        kind,
        description,
        served,
        k8s.version,
        replacement,
        served_in,
        removed_in,
        successor,
    )


def json_schema_children(
    schema: Mapping[str, Any], path: tuple[PathPart, ...]
) -> tuple[FieldDoc, ...]:
    """The fields of the object at `path` of a JSON Schema with local `$defs` (ktl's formats)."""
    return _json_walker(schema).children(schema, None, path)


def json_schema_field(schema: Mapping[str, Any], path: tuple[PathPart, ...]) -> FieldDoc | None:
    return _json_walker(schema).field(schema, None, path) if path else None


def _json_walker(schema: Mapping[str, Any]) -> _Walker:
    defs = schema.get("$defs")
    return _Walker(defs.get if isinstance(defs, Mapping) else lambda _name: None)


def crd_field_doc(crd: CrdVersion, version: str, path: tuple[PathPart, ...]) -> FieldDoc | None:
    """The doc of a field of a custom resource, from its CRD's openAPIV3Schema."""
    if not path:
        return None
    found = _crd_schema(crd, version, path)
    return found[0].field(found[1], None, path) if found is not None else None


def crd_field_children(
    crd: CrdVersion, version: str, path: tuple[PathPart, ...]
) -> tuple[FieldDoc, ...]:
    """The fields the object at `path` of a custom resource may have."""
    found = _crd_schema(crd, version, path)
    if found is None:
        return ()
    walker, schema = found
    children = walker.children(schema, None, path)
    if not path:  # the CRD's schema rarely lists the fields every object has
        have = {c.name for c in children}
        wrapper = {"properties": {k: {"type": "string"} for k in ("apiVersion", "kind")}}
        base = _Walker(lambda _name: None).children(wrapper, None, ())
        meta = _crd_schema(crd, version, ("metadata",))
        extra = meta[0].children(meta[1], None, ()) if meta is not None else ()
        children += tuple(c for c in (*base, *extra) if c.name not in have)
    return children


def _crd_schema(
    crd: CrdVersion, version: str, path: tuple[PathPart, ...]
) -> tuple[_Walker, Mapping[str, Any]] | None:
    """The walker and root schema that describe `path` of a custom resource (metadata is
    ObjectMeta, whatever the CRD says)."""
    if path[:1] == ("metadata",):
        k8s = schemas_for(version)
        if k8s.compiler.raw(OBJECT_META) is None:
            return None
        wrapper = {"properties": {"metadata": {"$ref": "#/$defs/" + OBJECT_META}}}
        return _Walker(k8s.compiler.raw), wrapper
    schema = crd.schema if isinstance(crd.schema, Mapping) else None
    return (_Walker(lambda _name: None), schema) if schema is not None else None
