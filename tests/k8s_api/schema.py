"""What the loopback API server knows of a kind's fields: names, types and list semantics.

Built-in kinds take their schema from the official client's models (``openapi_types`` and
``attribute_map``: the API's field names and types), custom resources from their CRD's
``openAPIV3Schema``. Lists merge as the API's ``x-kubernetes-list-type`` says: a map keyed by
its ``x-kubernetes-list-map-keys`` (containers by ``name``, container ports by ``containerPort``
and ``protocol``, ...), a set, or atomic (replaced whole). Structured-merge-diff's messages are
used for what a typed apply refuses: ``.spec.foo: field not declared in schema``,
``.spec.replicas: expected numeric (int or float), got string``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import models

#: A python client type name (``V1Deployment``, ``List[V1Container]``, ``str``) or a CRD's
#: JSON schema node.
Type = str | dict[str, Any]
#: One step of a field path: a field name, or a list item (its index and its key, if keyed).
PathStep = str | tuple[int, dict[str, Any] | None]

#: (model, field) -> the keys of a ``listType=map`` list (the API's ``+listMapKey`` markers).
LIST_MAP_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("V1PodSpec", "containers"): ("name",),
    ("V1PodSpec", "initContainers"): ("name",),
    ("V1PodSpec", "ephemeralContainers"): ("name",),
    ("V1PodSpec", "volumes"): ("name",),
    ("V1PodSpec", "imagePullSecrets"): ("name",),
    ("V1Container", "ports"): ("containerPort", "protocol"),
    ("V1Container", "env"): ("name",),
    ("V1Container", "volumeMounts"): ("mountPath",),
    ("V1ServiceSpec", "ports"): ("port", "protocol"),
    ("V1ObjectMeta", "ownerReferences"): ("uid",),
}
#: (model, field) of ``listType=set`` lists.
LIST_SETS = {("V1ObjectMeta", "finalizers")}
#: What the API defaults in a list-map key before merging (``protocol: TCP``).
KEY_DEFAULTS = {"protocol": "TCP"}
#: Fields the client types as strings that the API takes as a Quantity (``cpu: 1``).
QUANTITIES = {
    ("V1ResourceRequirements", "limits"),
    ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"),
    ("V1VolumeResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "sizeLimit"),
}
_GENERIC = re.compile(r"^(List|Dict)\[(?:str, )?(.+)\]$")


def model_of(group_version: str, kind: str) -> str | None:
    """The client's model of a built-in kind (``apps/v1`` Deployment: ``V1Deployment``)."""
    version = group_version.rpartition("/")[2]
    for name in (f"{version.capitalize()}{kind}", f"CoreV1{kind}"):
        if hasattr(models, name):
            return name
    return None


def crd_schema(crd: dict[str, Any], version: str) -> dict[str, Any] | None:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            found = (v.get("schema") or {}).get("openAPIV3Schema")
            return found if isinstance(found, dict) else None
    return None


def shape(t: Type) -> str:
    """struct, map, list, string, integer, number, boolean, quantity or any."""
    if isinstance(t, dict):
        if t.get("x-kubernetes-int-or-string") or (
            t.get("x-kubernetes-preserve-unknown-fields") and "properties" not in t
        ):
            return "any"
        ty = t.get("type")
        if ty == "object":
            return "map" if isinstance(t.get("additionalProperties"), dict) else "struct"
        return str(ty) if ty in ("array", "string", "integer", "number", "boolean") else "any"
    if t in ("str", "datetime", "date"):
        return "string"
    if t in ("int", "float", "bool"):
        return {"int": "integer", "float": "number", "bool": "boolean"}[t]
    if t in ("object", "quantity"):
        return "any" if t == "object" else "quantity"
    m = _GENERIC.match(t)
    if m:
        return "list" if m.group(1) == "List" else "map"
    return "struct" if hasattr(models, t) else "any"


def child(t: Type, key: str) -> Type | None:
    """The type of field ``key`` of a struct or map (None: the field is not declared)."""
    if isinstance(t, dict):
        if isinstance(t.get("additionalProperties"), dict):
            return dict(t["additionalProperties"])
        props = t.get("properties") or {}
        if key in props:
            found_t: Type = props[key] if isinstance(props[key], str) else dict(props[key])
            return found_t
        return (
            {"x-kubernetes-preserve-unknown-fields": True}
            if t.get("x-kubernetes-preserve-unknown-fields")
            else None
        )
    m = _GENERIC.match(t)
    if m:
        return m.group(2)
    cls = getattr(models, t, None)
    if cls is None:
        return "object"
    attr = {v: k for k, v in cls.attribute_map.items()}.get(key)
    if attr is None:
        return None
    if (t, key) in QUANTITIES:
        return "Dict[str, quantity]" if key != "sizeLimit" else "quantity"
    found: str = cls.openapi_types[attr]
    return found


def item(t: Type) -> Type:
    if isinstance(t, dict):
        return dict(t.get("items") or {"x-kubernetes-preserve-unknown-fields": True})
    m = _GENERIC.match(t)
    return m.group(2) if m else "object"


@dataclass(frozen=True)
class ListType:
    kind: str  #: "map", "set" or "atomic"
    keys: tuple[str, ...] = ()


def list_type(parent: Type, key: str) -> ListType:
    """How the list in field ``key`` of ``parent`` merges."""
    if isinstance(parent, dict):
        t = (parent.get("properties") or {}).get(key) or {}
        kind = t.get("x-kubernetes-list-type", "atomic")
        return ListType(kind, tuple(t.get("x-kubernetes-list-map-keys") or ()))
    if (parent, key) in LIST_MAP_KEYS:
        return ListType("map", LIST_MAP_KEYS[(parent, key)])
    if (parent, key) in LIST_SETS:
        return ListType("set")
    return ListType("atomic")


def key_of(value: Any, lt: ListType) -> dict[str, Any] | None:
    if lt.kind != "map" or not isinstance(value, dict):
        return None
    return {k: value[k] for k in lt.keys if k in value}


def render(path: list[PathStep], smd: bool = True) -> str:
    """``.spec.containers[name="app"].image`` (structured-merge-diff) or
    ``spec.containers[0].image`` (the API's warnings)."""
    out = ""
    for step in path:
        if isinstance(step, str):
            out += "." + step if smd or out else step
        else:
            index, key = step
            if smd and key:
                out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
            else:
                out += f"[{index}]"
    return out


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "numeric"
    return "string"


@dataclass
class Checked:
    """What a typed apply found: fields the schema lacks, values of the wrong type."""

    unknown: list[list[PathStep]] = field(default_factory=list)
    wrong: list[tuple[list[PathStep], str]] = field(default_factory=list)


def check(value: Any, t: Type, found: Checked, path: list[PathStep] | None = None) -> Any:
    """``value`` without its undeclared fields; what is undeclared or mistyped goes to ``found``.

    Keys of keyed list items are defaulted as the API does (``protocol: TCP``)."""
    path = path or []
    if value is None:
        return None
    sh = shape(t)
    expect = {
        "string": ("string", "expected string"),
        "integer": ("numeric", "expected numeric (int or float)"),
        "number": ("numeric", "expected numeric (int or float)"),
        "boolean": ("bool", "expected boolean"),
        "struct": ("map", "expected map"),
        "map": ("map", "expected map"),
        "list": ("list", "expected list"),
        "array": ("list", "expected list"),
    }.get(sh)
    if sh == "quantity" and _got(value) not in ("string", "numeric"):
        expect = ("string", "expected string")
    if expect is not None and _got(value) != expect[0]:
        found.wrong.append((path, f"{expect[1]}, got {_got(value)}"))
        return value
    if sh == "struct":
        out = {}
        for k, v in value.items():
            sub = child(t, k)
            if sub is None:
                found.unknown.append([*path, k])
                continue
            lt = list_type(t, k)
            if lt.kind == "map" and isinstance(v, list):
                items = []
                for i, entry in enumerate(v):
                    if isinstance(entry, dict):
                        for key_field in lt.keys:
                            if key_field in KEY_DEFAULTS and key_field not in entry:
                                entry = {**entry, key_field: KEY_DEFAULTS[key_field]}
                    step: PathStep = (i, key_of(entry, lt))
                    items.append(check(entry, item(sub), found, [*path, k, step]))
                out[k] = items
            else:
                out[k] = check(v, sub, found, [*path, k])
        return out
    if sh == "map":
        sub = child(t, "")
        return {k: check(v, sub or "object", found, [*path, k]) for k, v in value.items()}
    if sh in ("list", "array"):
        return [check(v, item(t), found, [*path, (i, None)]) for i, v in enumerate(value)]
    return value
