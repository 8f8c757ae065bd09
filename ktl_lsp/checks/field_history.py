"""In which bundled Kubernetes versions a field of a built-in kind exists, and where it is
deprecated ("since 1.29", "removed in 1.33").

Each version's definitions are reduced once, on first use, to a small index of which property
leads to which definition (the full schemas of thirteen versions would cost hundreds of MB);
answers are cached per apiVersion, kind and path, so only the first hover pays (~0.3 s).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ktl_lsp.checks.k8s_schemas import available_versions, read_definitions, resource_kinds
from ktl_lsp.checks.schema_engine import REF_PREFIXES

PathPart = str | int

_DEPRECATED = re.compile(
    r"(?:^|\.\s+)(?:Deprecated|DEPRECATED)\b|\bDeprecated:|field is deprecated"
)
"""A description that says the field itself is deprecated (not one naming a deprecated one)."""


@dataclass(frozen=True, slots=True)
class _Prop:
    target: str | None
    """The definition the value (or each item of the list) is; None for scalars and maps."""
    deprecated: bool


@dataclass(frozen=True, slots=True)
class _Index:
    kinds: dict[tuple[str, str], str]
    props: dict[str, dict[str, _Prop]]


def _ref(raw: Mapping[str, Any]) -> str | None:
    ref = raw.get("$ref")
    all_of = raw.get("allOf")
    if not isinstance(ref, str) and isinstance(all_of, list) and len(all_of) == 1:
        ref = all_of[0].get("$ref") if isinstance(all_of[0], Mapping) else None
    if isinstance(ref, str):
        for prefix in REF_PREFIXES:
            if ref.startswith(prefix):
                return ref[len(prefix) :]
    return None


@functools.cache
def _index(version: str) -> _Index:
    definitions = read_definitions(version)
    props: dict[str, dict[str, _Prop]] = {}
    for name, definition in definitions.items():
        properties = definition.get("properties") if isinstance(definition, Mapping) else None
        if not isinstance(properties, Mapping):
            continue
        own: dict[str, _Prop] = {}
        for key, raw in properties.items():
            if not isinstance(raw, Mapping):
                continue
            items = raw.get("items")
            target = _ref(raw) or (_ref(items) if isinstance(items, Mapping) else None)
            description = str(raw.get("description") or "")
            own[key] = _Prop(target, bool(_DEPRECATED.search(description)))
        props[name] = own
    return _Index(resource_kinds(definitions), props)


def _state(version: str, api_version: str, kind: str, path: tuple[PathPart, ...]) -> str | None:
    """ "present", "deprecated" or None (absent) for a field in one version."""
    index = _index(version)
    name: str | None = index.kinds.get((api_version, kind))
    if name is None:
        return None
    deprecated = False
    for part in path:
        if isinstance(part, int):
            continue
        if name is None:
            break  # under a map or an inline object: the index follows no further
        prop = index.props.get(name, {}).get(part)
        if prop is None:
            return None
        deprecated, name = prop.deprecated, prop.target
    return "deprecated" if deprecated else "present"


@functools.lru_cache(maxsize=4096)
def field_history(api_version: str, kind: str, path: tuple[PathPart, ...]) -> str | None:
    """ "1.29..1.37 (since 1.29)", "1.25..1.32 (removed in 1.33)", "1.25..1.37 (every bundled
    version)", with "; deprecated from 1.30" when its description says so; None when the field
    exists in no bundled version (an apiVersion they do not serve, a custom resource)."""
    versions = available_versions()
    states = [_state(v, api_version, kind, path) for v in versions]
    present = [i for i, state in enumerate(states) if state is not None]
    if not present or not path:
        return None
    runs: list[tuple[int, int]] = []
    for i in present:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    shown = ", ".join(versions[a] if a == b else f"{versions[a]}..{versions[b]}" for a, b in runs)
    notes = []
    for n, (a, b) in enumerate(runs):
        if a > 0:
            notes.append(f"{'since' if n == 0 else 'again in'} {versions[a]}")
        if b < len(versions) - 1:
            notes.append(f"removed in {versions[b + 1]}")
    text = f"{shown} ({', '.join(notes) if notes else 'every bundled version'})"
    deprecated = [i for i in present if states[i] == "deprecated"]
    if deprecated:
        first = deprecated[0]
        text += "; deprecated" + ("" if first == present[0] else f" from {versions[first]}")
    return text
