"""A tiny declarative description of YAML config files (keys, types) and its walker.

ktl parses its files with yaml.v3 and silently ignores unknown keys; describing the known keys
once lets us warn about typos at the exact key and report type errors at the exact value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ktl_lsp.checks.findings import Finding, Severity
from ktl_lsp.checks.schema_engine import describe, node_range, number_fix, rename_key
from ktl_lsp.documents.edits import Fix
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.yaml_nodes import json_kind, mapping_pairs, scalar_value

GO_DURATION = re.compile(r"^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$|^0$")


@dataclass(frozen=True)
class Shape:
    """Expected shape of a value: `type` is string|bool|int|number|duration|scalar|list|map|object|any."""

    type: str
    fields: Mapping[str, Shape] = field(default_factory=dict)
    item: Shape | None = None
    enum: tuple[str, ...] | None = None
    notes: Mapping[str, str] = field(default_factory=dict)
    """Messages for keys that exist elsewhere but are ignored here (replace "unknown key")."""


def obj(fields: Mapping[str, Shape] | None = None, **kw: Shape) -> Shape:
    return Shape("object", {**(fields or {}), **kw})


STRING = Shape("string")
BOOL = Shape("bool")
INT = Shape("int")
NUMBER = Shape("number")
DURATION = Shape("duration")
SCALAR = Shape("scalar")
ANY = Shape("any")
STRINGS = Shape("list", item=STRING)


def list_of(item: Shape) -> Shape:
    return Shape("list", item=item)


def map_of(item: Shape) -> Shape:
    return Shape("map", item=item)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class ShapeWalk:
    def __init__(self, code: str, subject: str = "") -> None:
        self.code = code
        self.subject = subject
        """How the file is named in "unknown key" messages (e.g. "ktl")."""
        self.findings: list[Finding] = []

    def add(
        self, node: Node, message: str, severity: Severity = "error", fixes: tuple[Fix, ...] = ()
    ) -> None:
        self.findings.append(Finding(node_range(node), severity, self.code, message, fixes=fixes))

    def walk(self, node: Node | None, shape: Shape, path: str) -> None:
        if node is None:
            return
        kind = json_kind(node)
        if kind == "null" or shape.type == "any":
            return
        t = shape.type
        if t == "object" or t == "map":
            if not isinstance(node, MappingNode):
                self.add(node, f"{path}: expected a mapping, got {describe(node)}")
                return
            for key, value in mapping_pairs(node):
                name = key.value if isinstance(key, ScalarNode) else None
                if not isinstance(name, str):
                    continue
                if t == "map":
                    if shape.item is not None:
                        self.walk(value, shape.item, join(path, name))
                    continue
                sub = shape.fields.get(name)
                if sub is None:
                    note = shape.notes.get(name)
                    fixes: tuple[Fix, ...] = ()
                    if note is None:
                        note = f'unknown key "{join(path, name)}"'
                        close = difflib.get_close_matches(
                            name, list(shape.fields), n=1, cutoff=0.75
                        )
                        if close:
                            note += f' (did you mean "{close[0]}"?)'
                            fixes = (rename_key(key, close[0]),)
                        if self.subject:
                            note += f"; {self.subject} ignores it"
                    self.add(key, note, "warning", fixes)
                    continue
                self.walk(value, sub, join(path, name))
            return
        if t == "list":
            if not isinstance(node, SequenceNode):
                self.add(node, f"{path}: expected a list, got {describe(node)}")
                return
            if shape.item is not None:
                for index, item in enumerate(node.value):
                    self.walk(item, shape.item, join(path, index))
            return
        if isinstance(node, MappingNode | SequenceNode):
            self.add(node, f"{path}: expected a {_NAMES.get(t, t)}, got {kind}")
            return
        if t == "string" and kind != "string":
            self.add(node, f"{path}: expected a string, got {describe(node)}")
        elif t == "bool" and kind != "boolean":
            self.add(node, f"{path}: expected true or false, got {describe(node)}")
        elif t == "int" and kind != "integer":
            fixes = number_fix(node, frozenset({"integer"}))
            self.add(node, f"{path}: expected an integer, got {describe(node)}", fixes=fixes)
        elif t == "number" and kind not in ("integer", "number"):
            fixes = number_fix(node, frozenset({"number"}))
            self.add(node, f"{path}: expected a number, got {describe(node)}", fixes=fixes)
        elif t == "duration":
            text = str(node.value)
            if kind != "string" or not GO_DURATION.match(text):
                self.add(
                    node,
                    f"{path}: must be a Go duration such as 90s or 2m (got {text!r}); "
                    "bare numbers are rejected",
                )
        elif shape.enum is not None and str(scalar_value(node)) not in shape.enum:
            self.add(
                node,
                f'{path} must be {"|".join(shape.enum)} (got "{node.value}")',
            )


_NAMES = {"string": "string", "bool": "boolean", "int": "integer", "scalar": "scalar value"}
