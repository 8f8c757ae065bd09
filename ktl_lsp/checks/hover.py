"""Hover text for Kubernetes manifests: what a field is (and in which Kubernetes versions), and
what an apiVersion/kind is (and whether it is deprecated or no longer served).

Built-in kinds are described from the bundled schemas of the targeted Kubernetes version;
custom resources from the openAPIV3Schema of a CRD the workspace (or the cluster) defines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ktl_lsp.checks.crds import CrdVersion
from ktl_lsp.checks.field_history import field_history
from ktl_lsp.checks.schema_docs import FieldDoc, crd_field_doc, field_doc, resource_doc
from ktl_lsp.documents.positions import Position, PositionEncoding, Range
from ktl_lsp.documents.yaml_parse import ParsedText
from ktl_lsp.documents.yaml_path import PathPart, document_type, path_at

MAX_DESCRIPTION = 2000


@dataclass(frozen=True, slots=True)
class HoverText:
    markdown: str
    range: Range | None
    """In the encoding asked for."""


def hover_at(
    parsed: ParsedText,
    position: Position,
    k8s_version: str,
    crd_for: Callable[[str, str], CrdVersion | None],
    encoding: PositionEncoding = "utf-16",
) -> HoverText | None:
    """The hover at a client-encoded position of a manifest, or None (never raises for input)."""
    if position.line < 0 or position.character < 0 or position.line >= parsed.lines.line_count():
        return None
    where = parsed.lines.from_client(position, encoding)
    if parsed.lines.to_client(where, encoding) != position:
        return None  # past the end of its line
    found = path_at(parsed, where.line, where.character)
    if found is None or not found.path or (found.key is None and found.on == "key"):
        return None
    api_version, kind = document_type(parsed, found.document)
    if not api_version or not kind:
        return None
    path = _field_path(found.path)
    if not path:
        return None
    markdown = describe(api_version, kind, path, k8s_version, crd_for)
    if markdown is None:
        return None
    rng = found.key_range
    if rng is not None:
        rng = parsed.lines.range_to_client(rng, encoding)
    return HoverText(markdown, rng)


def describe(
    api_version: str,
    kind: str,
    path: tuple[PathPart, ...],
    k8s_version: str,
    crd_for: Callable[[str, str], CrdVersion | None],
) -> str | None:
    """Markdown for a field of a resource (the resource itself on apiVersion or kind)."""
    if path in (("apiVersion",), ("kind",)):
        return _resource(api_version, kind, k8s_version, crd_for)
    doc = field_doc(k8s_version, api_version, kind, path)
    history = field_history(api_version, kind, path) if doc is not None else None
    crd = crd_for(api_version, kind) if doc is None else None
    if crd is not None:
        doc = crd_field_doc(crd, k8s_version, path)
    return _field(doc, api_version, kind, path, history) if doc is not None else None


def _field_path(path: tuple[PathPart, ...]) -> tuple[PathPart, ...]:
    """The field a path names: an item of a list is described by its list's field."""
    end = len(path)
    while end and isinstance(path[end - 1], int):
        end -= 1
    return path[:end]


def _dotted(path: tuple[PathPart, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + part)
    return out


def _field(
    doc: FieldDoc,
    api_version: str,
    kind: str,
    path: tuple[PathPart, ...],
    history: str | None = None,
) -> str:
    head = f"**{doc.name}** `{doc.type}`" + (" · required" if doc.required else "")
    parts = [head]
    if doc.description:
        parts.append(_clip(doc.description))
    facts = []
    if doc.default is not None:
        facts.append(f"Default: `{doc.default}`")
    if doc.enum:
        facts.append("Values: " + ", ".join(f"`{v}`" for v in doc.enum))
    if history is not None:
        facts.append(f"Kubernetes: {history}")
    if facts:
        parts.append("  \n".join(facts))
    parts.append(f"*{api_version} {kind} · {_dotted(path)}*")
    return "\n\n".join(parts)


def _resource(
    api_version: str,
    kind: str,
    k8s_version: str,
    crd_for: Callable[[str, str], CrdVersion | None],
) -> str | None:
    doc = resource_doc(k8s_version, api_version, kind)
    if doc is None:
        crd = crd_for(api_version, kind)
        if crd is None:
            return None
        description = crd.schema.get("description") if isinstance(crd.schema, dict) else None
        parts = [f"**{kind}** `{api_version}` · custom resource"]
        if isinstance(description, str) and description:
            parts.append(_clip(description))
        if not crd.served:
            parts.append(f"**Not served**: `served: false` for {api_version} in its CRD.")
        return "\n\n".join(parts)
    parts = [f"**{kind}** `{api_version}`"]
    if doc.description:
        parts.append(_clip(doc.description))
    if not doc.served:
        where = ""
        if doc.served_in:
            first, last = doc.served_in[0], doc.served_in[-1]
            where = f" (served in {first}" + (f" to {last})" if last != first else ")")
        note = f"**Not served in Kubernetes {doc.version}**: `{api_version}` {kind}{where}."
        if doc.replacement:
            note += f" Use `apiVersion: {doc.replacement}`."
        parts.append(note)
    elif doc.removed_in:
        note = f"**Deprecated**: `{api_version}` {kind} is removed in Kubernetes {doc.removed_in}"
        if doc.successor:
            note += f"; use `apiVersion: {doc.successor}`"
        parts.append(note + ".")
    return "\n\n".join(parts)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
