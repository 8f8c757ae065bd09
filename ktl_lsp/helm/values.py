"""The keys of a chart's values files with their places, types and defaults, as a path index,
and the descriptions `values.schema.json` gives them.

Mappings are walked key by key; a list, a scalar, an empty mapping or null is a leaf (what a
template reads as one value). Only the first YAML document counts, as Helm reads it. Keys left
commented out (`# mechanism: plain` under `scram:`) are documented values the user may give;
they are found by indentation, line by line.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import json_kind, mapping_pairs, scalar_value
from ktl_lsp.documents.yaml_parse import parse_text

MAX_DEFAULT = 60


@dataclass(frozen=True, slots=True)
class ValueEntry:
    path: tuple[str, ...]
    key_range: Range
    value_range: Range
    type: str
    """object, array, string, integer, number, boolean or null."""
    default: str
    """The value as written, shortened (`{…}` for a mapping with keys)."""
    leaf: bool
    open: bool
    """Null or an empty mapping: keys below it are the user's to give."""


@dataclass(frozen=True, slots=True)
class ValuesIndex:
    entries: dict[tuple[str, ...], ValueEntry]
    parsed: bool
    """False when the file is no YAML mapping (a syntax error, a list at the top)."""
    documented: frozenset[tuple[str, ...]] = frozenset()
    """Paths of keys written in comments (`# password:`): the user's to give."""

    def get(self, path: tuple[str, ...]) -> ValueEntry | None:
        return self.entries.get(path)

    def children(self, path: tuple[str, ...]) -> list[ValueEntry]:
        size = len(path) + 1
        return [e for p, e in self.entries.items() if len(p) == size and p[:-1] == path]

    def defines(self, path: tuple[str, ...]) -> bool:
        """The path is a key here, or lies below a null/empty mapping the user fills."""
        if not path or path in self.entries or path in self.documented:
            return True
        return any(
            (entry := self.entries.get(path[:size])) is not None and entry.open
            for size in range(1, len(path))
        )

    def leaves(self) -> list[ValueEntry]:
        return [e for e in self.entries.values() if e.leaf]


def _range(node: Node, line_offset: int) -> Range:
    s, e = node.start_mark, node.end_mark
    return Range.of(s.line + line_offset, s.column, e.line + line_offset, e.column)


def _short(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "{…}" if node.value else "{}"
    if isinstance(node, SequenceNode):
        if not node.value:
            return "[]"
        items = [_short(n) for n in node.value[:3]]
        more = ", …" if len(node.value) > 3 else ""
        return _cut("[" + ", ".join(items) + more + "]")
    value = scalar_value(node)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _cut(json.dumps(value))
    return _cut(str(value))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_DEFAULT else text[: MAX_DEFAULT - 1] + "…"


def index_values(text: str) -> ValuesIndex:
    """The key index of one values file; never raises."""
    parsed = parse_text(text)
    document = next((d for d in parsed.documents if d.root is not None), None)
    if document is None:
        return ValuesIndex({}, not parsed.problems and not parsed.documents)
    root = document.root
    if not isinstance(root, MappingNode):
        return ValuesIndex({}, False)
    entries: dict[tuple[str, ...], ValueEntry] = {}
    documented = _commented_keys(text) if "#" in text else frozenset()
    offset = document.start_line
    stack: list[tuple[tuple[str, ...], MappingNode, int]] = [((), root, 0)]
    while stack:
        prefix, node, depth = stack.pop()
        for key, value in mapping_pairs(node):
            if not isinstance(key, ScalarNode):
                continue
            path = (*prefix, str(key.value))
            kind = json_kind(value)
            is_map = isinstance(value, MappingNode)
            empty_map = is_map and not value.value
            entries[path] = ValueEntry(
                path,
                _range(key, offset),
                _range(value, offset),
                kind,
                _short(value),
                leaf=not is_map or empty_map,
                open=empty_map or kind == "null",
            )
            if is_map and value.value and depth < 64:
                assert isinstance(value, MappingNode)
                stack.append((path, value, depth + 1))
    return ValuesIndex(entries, True, documented - entries.keys())


_KEY_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<hash>#+[ \t]*)?(?P<key>[A-Za-z_][\w.-]*)[ \t]*:(?:[ \t]|$)"
)


def _commented_keys(text: str) -> frozenset[tuple[str, ...]]:
    """Paths of the keys in comments, nested by their columns (a commented key's column is its
    `#`'s, plus the spaces beyond the first after it: `# secret:` then `#   name: x` is
    `secret.name`, a sibling of the real keys at the `#`'s column)."""
    stack: list[tuple[int, tuple[str, ...]]] = []
    found: set[tuple[str, ...]] = set()
    for line in text.splitlines():
        match = _KEY_LINE.match(line)
        if match is None:
            continue
        column = match.start("key")
        marker = match.group("hash")
        if marker:  # `#` then one space mark the comment; more spaces indent the key in it
            column = match.start("hash") + max(0, len(marker) - len(marker.rstrip(" \t")) - 1)
        while stack and stack[-1][0] >= column:
            stack.pop()
        path = (*(stack[-1][1] if stack else ()), match.group("key"))
        stack.append((column, path))
        if match.group("hash"):
            found.add(path)
    return frozenset(found)


_CACHE: dict[str, ValuesIndex] = {}
_LOCK = threading.Lock()


def index_cached(text: str) -> ValuesIndex:
    """`index_values`, remembered per text."""
    with _LOCK:
        found = _CACHE.get(text)
    if found is None:
        found = index_values(text)
        with _LOCK:
            if len(_CACHE) > 512:
                _CACHE.clear()
            _CACHE[text] = found
    return found


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    description: str
    type: str
    default: str | None


def schema_info(schema_text: str | None, path: tuple[str, ...]) -> SchemaInfo | None:
    """What values.schema.json says of a path (following `properties`, local `$ref`s and
    `additionalProperties`); None when it says nothing or is no JSON."""
    if not schema_text:
        return None
    schema = _load_schema(schema_text)
    if not isinstance(schema, dict):
        return None
    node: Any = schema
    for key in path:
        node = _resolve(schema, node)
        if not isinstance(node, dict):
            return None
        properties = node.get("properties")
        if isinstance(properties, dict) and key in properties:
            node = properties[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return None
    description = str(node.get("description") or node.get("title") or "")
    kind = node.get("type")
    type_text = "|".join(map(str, kind)) if isinstance(kind, list) else str(kind or "")
    default = json.dumps(node["default"]) if "default" in node else None
    if not description and not type_text and default is None:
        return None
    return SchemaInfo(description, type_text, default)


def _resolve(schema: dict[str, Any], node: Any) -> Any:
    for _ in range(16):
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            return node
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = schema
        for part in ref[2:].split("/"):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(target, dict)
                else None
            )
        node = target
    return node


_SCHEMAS: dict[str, Any] = {}


def _load_schema(text: str) -> Any:
    with _LOCK:
        if text in _SCHEMAS:
            return _SCHEMAS[text]
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    with _LOCK:
        if len(_SCHEMAS) > 32:
            _SCHEMAS.clear()
        _SCHEMAS[text] = loaded
    return loaded
