"""Document symbols: each Kubernetes document as `Kind/name` with its top-level keys and its
containers, stack releases and plan nodes (the same structure CodeLens shows); workspace
symbols: every object, stack release and plan node of the workspace, fuzzy matched."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ktl_lsp.checks.k8s_workspace import PlacedSummary
from ktl_lsp.checks.outline import WORKLOAD_KINDS, outline_of
from ktl_lsp.checks.references import KtlItem, relative
from ktl_lsp.documents.file_kinds import FileKind
from ktl_lsp.documents.nodes import MappingNode, Node, SequenceNode
from ktl_lsp.documents.positions import PositionEncoding, Range
from ktl_lsp.documents.yaml_nodes import get, get_pair, scalar_text
from ktl_lsp.documents.yaml_parse import ParsedText, YamlDocument

SymbolKind = Literal["object", "key", "container", "release", "node"]

_POD_SPEC: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(slots=True)
class Symbol:
    name: str
    kind: SymbolKind
    range: Range
    selection: Range
    """Inside `range`: what the editor highlights (the name)."""
    detail: str = ""
    children: list[Symbol] = field(default_factory=list)


def symbols_of(
    kind: FileKind, parsed: ParsedText, encoding: PositionEncoding = "utf-16"
) -> list[Symbol]:
    """The file's symbols, ranges in `encoding`."""
    out: list[Symbol] = []
    for item in outline_of(kind, parsed):
        document = parsed.documents[item.document]
        if item.kind == "k8s-object":
            root = document.root
            assert isinstance(root, MappingNode)
            name_node = get(root, "metadata", "name") or get(root, "kind")
            symbol = Symbol(
                item.label,
                "object",
                item.range,
                _selection(document, name_node, item.range),
                item.details.get("namespace", ""),
                _keys(document, root, item.details.get("kind", "")),
            )
        else:
            symbol = Symbol(
                item.label,
                "release" if item.kind == "stack-release" else "node",
                item.range,
                item.range,
                "release" if item.kind == "stack-release" else "plan node",
            )
        out.append(symbol)
    return [_encoded(s, parsed, encoding) for s in out]


def _selection(document: YamlDocument, node: Node | None, within: Range) -> Range:
    if node is None:
        return within
    rng = document.range_of(node)
    return rng if within.start <= rng.start and rng.end <= within.end else within


def _keys(document: YamlDocument, root: MappingNode, kind: str) -> list[Symbol]:
    out: list[Symbol] = []
    for key, value in root.value:
        name = scalar_text(key)
        if name is None:
            continue
        span = Range(document.range_of(key).start, document.range_of(value).end)
        symbol = Symbol(name, "key", span, document.range_of(key))
        if name == "spec":
            symbol.children = _containers(document, root, kind)
        out.append(symbol)
    return out


def _containers(document: YamlDocument, root: MappingNode, kind: str) -> list[Symbol]:
    if kind not in WORKLOAD_KINDS:
        return []
    pod_spec = get(root, *_POD_SPEC.get(kind, ("spec", "template", "spec")))
    out: list[Symbol] = []
    for list_key in _CONTAINER_LISTS:
        items = get(pod_spec, list_key)
        for item in items.value if isinstance(items, SequenceNode) else []:
            pair = get_pair(item, "name")
            name = scalar_text(pair[1]) if pair else None
            if not name or pair is None:
                continue
            rng = document.range_of(item)
            detail = scalar_text(get(item, "image")) or ""
            if list_key != "containers":
                detail = f"{list_key[:-1]} {detail}".strip()
            out.append(Symbol(name, "container", rng, _selection(document, pair[1], rng), detail))
    return out


def _encoded(symbol: Symbol, parsed: ParsedText, encoding: PositionEncoding) -> Symbol:
    lines = parsed.lines
    symbol.range = lines.range_to_client(symbol.range, encoding)
    symbol.selection = lines.range_to_client(symbol.selection, encoding)
    symbol.children = [_encoded(c, parsed, encoding) for c in symbol.children]
    return symbol


@dataclass(frozen=True)
class WorkspaceSymbol:
    """One object, release or node of the workspace for ``workspace/symbol``, where it is named:
    ``Kind/name`` in its namespace, ``release name`` or ``node id`` in its file."""

    name: str
    container: str | None
    """An object's namespace; the (workspace-relative) file of a release or node."""
    path: str
    range: Range
    kind: Literal["object", "release", "node"] = "object"


def fuzzy_score(query: str, text: str) -> int | None:
    """How well ``query`` matches ``text`` as an in-order subsequence, ignoring case: lower is
    better (a prefix or a whole word beats scattered letters); None when it does not match."""
    if not query:
        return 0
    haystack, needle = text.lower(), query.lower()
    at = haystack.find(needle)
    if at >= 0:
        return 0 if at == 0 or not haystack[at - 1].isalnum() else 1
    position, gaps = -1, 0
    for char in needle:
        found = haystack.find(char, position + 1)
        if found < 0:
            return None
        gaps += found - position - 1
        position = found
    return 2 + gaps


def _best(query: str, *texts: str) -> int | None:
    scores = [s for s in (fuzzy_score(query, t) for t in texts) if s is not None]
    return min(scores, default=None)


def workspace_symbols(
    objects: list[PlacedSummary],
    query: str,
    limit: int = 500,
    items: Iterable[KtlItem] = (),
    roots: Iterable[Path] = (),
) -> list[WorkspaceSymbol]:
    """The workspace's objects, stack releases and plan nodes (`items`) that match ``query``
    (fuzzy), best first, at most ``limit``; files named relative to ``roots``."""
    scored: list[tuple[int, int, str, WorkspaceSymbol]] = []
    for placed in objects:
        summary = placed.summary
        label = f"{summary.kind}/{summary.name}"
        score = _best(query, summary.name, label)
        if score is not None:
            symbol = WorkspaceSymbol(label, summary.namespace, placed.path, placed.name_range)
            scored.append((score, len(label), label, symbol))
    folders = list(roots)
    for item in items:
        label = f"{item.kind} {item.name}"
        score = _best(query, item.name, label)
        if score is not None:
            where = relative(item.path, folders)
            symbol = WorkspaceSymbol(label, where, item.path, item.range, item.kind)
            scored.append((score, len(label), label, symbol))
    scored.sort(key=lambda item: item[:3])
    return [item[3] for item in scored[:limit]]
