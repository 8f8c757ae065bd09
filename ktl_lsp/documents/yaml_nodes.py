"""Small helpers over composed YAML nodes: typed scalars, mapping lookups with merge keys, values.

Checkers walk nodes rather than constructed Python objects so every finding keeps the exact
position of the key or value it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from ktl_lsp.documents.nodes import (
    ConstructorError,
    MappingNode,
    Node,
    SafeConstructor,
    ScalarNode,
    SequenceNode,
)

TAG_PREFIX = "tag:yaml.org,2002:"
STR = TAG_PREFIX + "str"
INT = TAG_PREFIX + "int"
FLOAT = TAG_PREFIX + "float"
BOOL = TAG_PREFIX + "bool"
NULL = TAG_PREFIX + "null"
MERGE = TAG_PREFIX + "merge"

JsonKind = Literal["object", "array", "string", "integer", "number", "boolean", "null"]

_CONSTRUCTOR = SafeConstructor()

__all__ = [
    "JsonKind",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "get",
    "get_pair",
    "json_kind",
    "mapping_pairs",
    "scalar_text",
    "scalar_value",
    "to_python",
]


def json_kind(node: Node) -> JsonKind:
    """The JSON type a node becomes once Kubernetes converts YAML to JSON."""
    if isinstance(node, MappingNode):
        return "object"
    if isinstance(node, SequenceNode):
        return "array"
    tag = node.tag
    if tag == STR:
        return "string"
    if tag == INT:
        return "integer"
    if tag == FLOAT:
        return "number"
    if tag == BOOL:
        return "boolean"
    if tag == NULL:
        return "null"
    return "string"  # timestamps, binary and custom tags arrive as strings


def scalar_value(node: Node) -> Any:
    """The Python value of a scalar (None for collections); never raises."""
    if not isinstance(node, ScalarNode):
        return None
    tag = node.tag
    try:
        if tag == INT:
            return _CONSTRUCTOR.construct_yaml_int(node)
        if tag == FLOAT:
            return _CONSTRUCTOR.construct_yaml_float(node)
        if tag == BOOL:
            return _CONSTRUCTOR.construct_yaml_bool(node)
        if tag == NULL:
            return None
    except (ConstructorError, ValueError):
        return node.value
    return node.value


def scalar_text(node: Node | None) -> str | None:
    """The text of a string-like scalar, else None."""
    if isinstance(node, ScalarNode) and node.tag != NULL:
        return str(node.value)
    return None


def mapping_pairs(node: Node, _depth: int = 0) -> Iterator[tuple[Node, Node]]:
    """Key/value pairs with `<<` merge keys expanded (explicit keys win, as in YAML 1.1)."""
    if not isinstance(node, MappingNode):
        return
    merged: list[tuple[Node, Node]] = []
    explicit: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if isinstance(key, ScalarNode) and (key.tag == MERGE or key.value == "<<") and _depth < 20:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                merged.extend(mapping_pairs(source, _depth + 1))
        else:
            explicit.append((key, value))
    if not merged:
        yield from explicit
        return
    own = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
    seen: set[object] = set()
    for key, value in merged:
        ident = key.value if isinstance(key, ScalarNode) else id(key)
        if ident in own or ident in seen:
            continue
        seen.add(ident)
        yield key, value
    yield from explicit


def get_pair(node: Node | None, key: str) -> tuple[Node, Node] | None:
    """The (key node, value node) for a string key of a mapping."""
    if not isinstance(node, MappingNode):
        return None
    merges = False
    for k, v in node.value:
        value = k.value
        if value == key and k.tag != MERGE:
            return k, v
        if value == "<<":
            merges = True
    if merges:
        for k, v in mapping_pairs(node):
            if isinstance(k, ScalarNode) and k.value == key:
                return k, v
    return None


def get(node: Node | None, *path: str) -> Node | None:
    """The value node at a path of string keys, or None."""
    current = node
    for key in path:
        pair = get_pair(current, key)
        if pair is None:
            return None
        current = pair[1]
    return current


def _key_text(key: Node) -> str:
    """Mapping keys become strings, as in the JSON that Kubernetes and Helm see."""
    value = scalar_value(key) if isinstance(key, ScalarNode) else None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null" if isinstance(key, ScalarNode) else f"<{json_kind(key)}>"
    return str(value)


def to_python(node: Node, _depth: int = 0) -> Any:
    """A JSON-like Python value (merge keys applied, timestamps as strings).

    Only call this on chunks marked usable: those have bounded depth and alias expansion.
    """
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key, value in mapping_pairs(node):
            result[_key_text(key)] = to_python(value, _depth + 1)
        return result
    if isinstance(node, SequenceNode):
        return [to_python(item, _depth + 1) for item in node.value]
    return scalar_value(node)


def last_leaf(node: Node) -> Node:
    """The node a value's text really ends with: a block collection's end mark is where the next
    token starts (after blank and comment lines), its last leaf's is not."""
    while isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        tail = node.value[-1]
        node = tail[1] if isinstance(tail, tuple) else tail
    return node
