"""A compiled JSON-Schema subset that validates YAML nodes directly, with exact positions.

Kubernetes' OpenAPI schemas and CRD structural schemas use a small subset of JSON Schema
(type, properties, additionalProperties, required, items, $ref, enum, formats, simple bounds,
oneOf/anyOf/allOf and the x-kubernetes-* extensions). Compiling that subset once and walking the
YAML nodes avoids converting every document to Python objects and mapping error paths back to
positions, and is several times faster than a general validator.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ktl_lsp.checks.findings import Finding, Severity
from ktl_lsp.documents.edits import Fix, replace_with
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import (
    BOOL,
    FLOAT,
    INT,
    NULL,
    STR,
    json_kind,
    last_leaf,
    mapping_pairs,
    scalar_value,
)

REF_PREFIXES = ("#/$defs/", "/api/_definitions.json#/$defs/", "#/definitions/")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

Path = tuple[str | int, ...]
Hook = Callable[["SchemaWalk", Node, Path], None]


def node_range(node: Node) -> Range:
    """Chunk-relative range of a node."""
    s, e = node.start_mark, node.end_mark
    return Range.of(s.line, s.column, e.line, e.column)


def format_path(path: Path) -> str:
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(("." if out else "") + part)
    return "".join(out) or "(root)"


def describe(node: Node) -> str:
    kind = json_kind(node)
    if isinstance(node, ScalarNode) and kind != "null":
        text = str(node.value)
        text = text if len(text) <= 40 else text[:37] + "..."
        return f'{kind} "{text}"' if kind == "string" else f"{kind} {text}"
    return kind


class Schema:
    """One compiled schema node; `$ref`s resolve lazily through the compiler (recursion-safe)."""

    __slots__ = (
        "additional",
        "all_of",
        "alternatives",
        "compiler",
        "def_name",
        "embedded",
        "enum",
        "fmt",
        "items",
        "max_items",
        "max_len",
        "maximum",
        "min_items",
        "min_len",
        "minimum",
        "pattern",
        "props",
        "ref",
        "required",
        "types",
        "xmax",
        "xmin",
    )

    def __init__(self, compiler: SchemaCompiler) -> None:
        self.compiler = compiler
        self.ref: str | None = None
        self.def_name: str | None = None
        self.types: frozenset[str] | None = None
        self.props: dict[str, Schema] = {}
        self.required: tuple[str, ...] = ()
        self.additional: Schema | bool | None = None
        """False: unknown fields are reported; None/True: anything goes."""
        self.items: Schema | None = None
        self.enum: tuple[Any, ...] | None = None
        self.fmt: str | None = None
        self.pattern: re.Pattern[str] | None = None
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.xmin = False
        self.xmax = False
        self.min_len: int | None = None
        self.max_len: int | None = None
        self.min_items: int | None = None
        self.max_items: int | None = None
        self.alternatives: tuple[Schema, ...] = ()
        self.all_of: tuple[Schema, ...] = ()
        self.embedded = False

    def target(self) -> Schema:
        schema = self
        hops = 0
        while schema.ref is not None and hops < 50:
            schema = schema.compiler.definition(schema.ref)
            hops += 1
        return schema


class SchemaCompiler:
    """Compiles raw schema dicts; definitions are compiled once, on first use."""

    def __init__(
        self,
        definitions: Mapping[str, Any] | None = None,
        *,
        structural: bool = False,
        enums: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
    ) -> None:
        self._raw = definitions or {}
        self._compiled: dict[str, Schema] = {}
        self.structural = structural
        """CRD mode: objects with properties reject unknown fields unless preserved."""
        self._enums = enums or {}

    def has(self, name: str) -> bool:
        return name in self._raw

    def raw(self, name: str) -> Mapping[str, Any] | None:
        """A definition as written (descriptions included, which compiling drops)."""
        raw = self._raw.get(name)
        return raw if isinstance(raw, Mapping) else None

    def definition(self, name: str) -> Schema:
        schema = self._compiled.get(name)
        if schema is None:
            raw = self._raw.get(name)
            schema = Schema(self)
            self._compiled[name] = schema  # before compiling: recursive definitions
            if isinstance(raw, Mapping):
                self._fill(schema, raw, name)
            schema.def_name = name
        return schema

    def compile(self, raw: Any, def_name: str | None = None) -> Schema:
        schema = Schema(self)
        if isinstance(raw, Mapping):
            self._fill(schema, raw, def_name)
        return schema

    def _fill(self, schema: Schema, raw: Mapping[str, Any], def_name: str | None) -> None:
        ref = raw.get("$ref")
        if isinstance(ref, str):
            for prefix in REF_PREFIXES:
                if ref.startswith(prefix):
                    schema.ref = ref[len(prefix) :]
                    return
        types = raw.get("type")
        if isinstance(types, str):
            types = [types]
        if isinstance(types, list) and types:
            names = set(types)
            if raw.get("nullable") is True:
                names.add("null")
            schema.types = frozenset(names)
        if raw.get("x-kubernetes-int-or-string") is True:
            schema.types = frozenset({"integer", "string", "null"})
        props = raw.get("properties")
        if isinstance(props, Mapping):
            schema.props = {str(name): self.compile(sub, None) for name, sub in props.items()}
            if def_name is not None:
                for name, sub in schema.props.items():
                    values = self._enums.get((def_name, name))
                    if values:
                        (sub.items if sub.items is not None else sub).enum = values
        required = raw.get("required")
        if isinstance(required, list):
            schema.required = tuple(str(r) for r in required)
        additional = raw.get("additionalProperties")
        if isinstance(additional, Mapping):
            schema.additional = self.compile(additional)
        elif isinstance(additional, bool):
            schema.additional = additional
        elif self.structural and schema.props:
            schema.additional = False
        if raw.get("x-kubernetes-preserve-unknown-fields") is True and not isinstance(
            schema.additional, Schema
        ):
            schema.additional = None
        if raw.get("x-kubernetes-embedded-resource") is True:
            schema.embedded = True
        items = raw.get("items")
        if isinstance(items, Mapping):
            schema.items = self.compile(items)
        enum = raw.get("enum")
        if isinstance(enum, list) and enum:
            schema.enum = tuple(enum)
        fmt = raw.get("format")
        if isinstance(fmt, str):
            schema.fmt = fmt
        pattern = raw.get("pattern")
        if isinstance(pattern, str):
            try:
                schema.pattern = re.compile(pattern)
            except re.error:
                schema.pattern = None
        for key, attr in (("minimum", "minimum"), ("maximum", "maximum")):
            value = raw.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                setattr(schema, attr, value)
        schema.xmin = raw.get("exclusiveMinimum") is True
        schema.xmax = raw.get("exclusiveMaximum") is True
        for key, attr, flag in (
            ("exclusiveMinimum", "minimum", "xmin"),
            ("exclusiveMaximum", "maximum", "xmax"),
        ):
            value = raw.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                setattr(schema, attr, value)  # JSON Schema 2019+: the bound itself
                setattr(schema, flag, True)
        for key, attr in (
            ("minLength", "min_len"),
            ("maxLength", "max_len"),
            ("minItems", "min_items"),
            ("maxItems", "max_items"),
        ):
            value = raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(schema, attr, value)
        alternatives = [*(raw.get("oneOf") or []), *(raw.get("anyOf") or [])]
        if alternatives:
            schema.alternatives = tuple(self.compile(a) for a in alternatives)
        all_of = raw.get("allOf")
        if isinstance(all_of, list):
            schema.all_of = tuple(self.compile(a) for a in all_of)


@dataclass(frozen=True, slots=True)
class WalkOptions:
    code: str = "k8s-schema"
    unknown_field_severity: Severity = "warning"
    hooks: Mapping[str, Hook] | None = None
    """Extra checks keyed by definition name (labels in ObjectMeta, quantities, ...)."""
    patch: bool = False
    """A partial object (a strategic-merge patch): no required fields, `$` directives allowed."""


class SchemaWalk:
    """Validates one node tree against a schema, collecting chunk-relative findings."""

    def __init__(self, options: WalkOptions | None = None) -> None:
        self.options = options or WalkOptions()
        self.findings: list[Finding] = []
        self._hooks = self.options.hooks or {}

    def report(
        self,
        node: Node,
        message: str,
        severity: Severity = "error",
        rng: Range | None = None,
        fixes: tuple[Fix, ...] = (),
    ) -> None:
        self.findings.append(
            Finding(rng or node_range(node), severity, self.options.code, message, fixes=fixes)
        )

    def validate(
        self, node: Node, schema: Schema, path: Path = (), anchor: Node | None = None
    ) -> None:
        self._walk(node, schema, path, anchor or node)

    def _walk(self, node: Node, schema: Schema, path: Path, anchor: Node) -> None:
        if schema.ref is not None:
            schema = schema.target()
        def_name = schema.def_name
        if def_name is not None:
            hook = self._hooks.get(def_name)
            if hook is not None:
                hook(self, node, path)
                if def_name in SPECIAL_DEFS:
                    return
        node_type = type(node)
        if node_type is MappingNode:
            kind = "object"
        elif node_type is SequenceNode:
            kind = "array"
        else:
            kind = _SCALAR_KINDS.get(node.tag, "string")
        types = schema.types
        if (
            types is not None
            and kind not in types
            and not (kind == "integer" and "number" in types)
        ):
            if kind == "null" or (kind == "number" and "integer" in types and _integral(node)):
                return
            expected = " or ".join(sorted(t for t in types if t != "null"))
            self.report(
                node,
                f"{format_path(path)}: expected {expected}, got {describe(node)}",
                fixes=number_fix(node, types),
            )
            return
        if schema.alternatives and not self._any_matches(node, schema.alternatives, path):
            self.report(
                node, f"{format_path(path)}: {describe(node)} matches none of the allowed forms"
            )
            return
        for sub in schema.all_of:
            self._walk(node, sub, path, anchor)
        if kind == "object":
            self._object(node, schema, path, anchor)
        elif kind == "array":
            items = schema.items
            values = node.value
            if schema.min_items is not None and len(values) < schema.min_items:
                self.report(
                    node, f"{format_path(path)}: must have at least {schema.min_items} items"
                )
            if schema.max_items is not None and len(values) > schema.max_items:
                self.report(
                    node, f"{format_path(path)}: must have at most {schema.max_items} items"
                )
            if items is not None:
                for index, item in enumerate(values):
                    self._walk(item, items, (*path, index), item)
        elif kind != "null":
            self._scalar(node, schema, kind, path)

    def _any_matches(self, node: Node, alternatives: tuple[Schema, ...], path: Path) -> bool:
        for alternative in alternatives:
            probe = SchemaWalk(self.options)
            probe._walk(node, alternative, path, node)
            if not any(f.severity == "error" for f in probe.findings):
                return True
        return False

    def _object(self, node: Node, schema: Schema, path: Path, anchor: Node) -> None:
        props = schema.props
        additional = schema.additional
        merges = False
        patch = self.options.patch
        for key, value in node.value:
            if type(key) is not ScalarNode:
                continue
            name = key.value
            if name == "<<":
                merges = True
                continue
            if patch and name[:1] == "$":
                continue  # $patch, $setElementOrder/..., $retainKeys
            self._member(key, value, name, schema, props, additional, path)
        if merges:
            own = {k.value for k, _ in node.value if type(k) is ScalarNode}
            for key, value in mapping_pairs(node):
                if type(key) is ScalarNode and key.value not in own:
                    self._member(key, value, key.value, schema, props, additional, path)
        if not schema.required or patch:
            return
        present = (
            {k.value for k, _ in mapping_pairs(node)}
            if merges
            else {k.value for k, _ in node.value}
        )
        for name in schema.required:
            if name not in present:
                where = format_path(path)
                rng = node_range(anchor)
                if anchor is node and isinstance(node, MappingNode) and node.value:
                    rng = node_range(node.value[0][0])
                sub = props.get(name)
                placeholder = _PLACEHOLDERS.get(_type_of(sub) if sub else "", '""')
                fix = add_key(node, name, placeholder) if isinstance(node, MappingNode) else None
                self.findings.append(
                    Finding(
                        rng,
                        "error",
                        self.options.code,
                        f'missing required field "{name}" in {where}',
                        fixes=(fix,) if fix else (),
                    )
                )

    def _member(
        self,
        key: Node,
        value: Node,
        name: str,
        schema: Schema,
        props: Mapping[str, Schema],
        additional: Schema | bool | None,
        path: Path,
    ) -> None:
        sub = props.get(name)
        if sub is not None:
            self._walk(value, sub, (*path, name), key)
        elif additional is False:
            if not (schema.embedded and name in ("apiVersion", "kind", "metadata")):
                self._unknown(key, name, props, path)
        elif isinstance(additional, Schema):
            self._walk(value, additional, (*path, name), key)

    def _unknown(self, key: Node, name: str, props: Mapping[str, Schema], path: Path) -> None:
        full = format_path((*path, name))
        message = f'unknown field "{full}"'
        close = difflib.get_close_matches(name, list(props), n=1, cutoff=0.75)
        fixes: tuple[Fix, ...] = ()
        if close:
            message += f' (did you mean "{close[0]}"?)'
            fixes = (rename_key(key, close[0]),)
        self.report(key, message, self.options.unknown_field_severity, fixes=fixes)

    def _scalar(self, node: Node, schema: Schema, kind: str, path: Path) -> None:
        if schema.enum is not None:
            value = scalar_value(node)
            if value not in schema.enum:
                allowed = ", ".join(f'"{v}"' for v in schema.enum)
                self.report(
                    node,
                    f'{format_path(path)}: Unsupported value: "{node.value}": '
                    f"supported values: {allowed}",
                )
                return
        if kind == "integer":
            fmt = schema.fmt
            if (
                fmt in ("int32", "int64")
                or schema.minimum is not None
                or schema.maximum is not None
            ):
                value = scalar_value(node)
                if isinstance(value, int):
                    low, high = INT32 if fmt == "int32" else INT64
                    if not low <= value <= high:
                        self.report(node, f"{format_path(path)}: {value} is out of range for {fmt}")
                    self._bounds(node, schema, value, path)
        elif kind == "number":
            value = scalar_value(node)
            if isinstance(value, float):
                self._bounds(node, schema, value, path)
        elif kind == "string":
            text = str(node.value)
            if schema.pattern is not None and not schema.pattern.search(text):
                self.report(
                    node,
                    f'{format_path(path)}: "{text}" does not match the pattern '
                    f"{schema.pattern.pattern!r}",
                )
            if schema.min_len is not None and len(text) < schema.min_len:
                self.report(
                    node, f"{format_path(path)}: must be at least {schema.min_len} characters"
                )
            if schema.max_len is not None and len(text) > schema.max_len:
                self.report(
                    node, f"{format_path(path)}: must be at most {schema.max_len} characters"
                )

    def _bounds(self, node: Node, schema: Schema, value: float, path: Path) -> None:
        if schema.minimum is not None and (
            value < schema.minimum or (schema.xmin and value == schema.minimum)
        ):
            op = ">" if schema.xmin else ">="
            self.report(node, f"{format_path(path)}: must be {op} {schema.minimum:g}")
        if schema.maximum is not None and (
            value > schema.maximum or (schema.xmax and value == schema.maximum)
        ):
            op = "<" if schema.xmax else "<="
            self.report(node, f"{format_path(path)}: must be {op} {schema.maximum:g}")


def add_key(mapping: MappingNode, name: str, placeholder: str) -> Fix | None:
    """Inserts `name: placeholder` as the last key of a mapping, at its keys' indentation."""
    title = f'Add the required field "{name}"'
    pair = f"{name}: {placeholder}"
    end = mapping.end_mark
    if mapping.flow_style or not mapping.value:
        if not mapping.value:
            return replace_with(node_range(mapping), "{" + pair + "}", title)
        at = Range.of(end.line, end.column - 1, end.line, end.column - 1)
        return replace_with(at, ", " + pair, title)
    first = mapping.value[0][0]
    if first.start_mark.line != mapping.start_mark.line:
        return None  # a key after a tag or anchor line: leave it to the person
    leaf = last_leaf(mapping.value[-1][1]).end_mark
    indent = " " * first.start_mark.column
    if leaf.column == 0 and leaf.line > first.start_mark.line:
        at = Range.of(leaf.line, 0, leaf.line, 0)
        return replace_with(at, f"{indent}{pair}\n", title)
    at = Range.of(leaf.line, leaf.column, leaf.line, leaf.column)
    return replace_with(at, f"\n{indent}{pair}", title)


def _type_of(schema: Schema) -> str:
    types = schema.target().types or frozenset()
    return next((t for t in ("object", "array", "boolean", "integer", "number") if t in types), "")


_PLACEHOLDERS = {"object": "{}", "array": "[]", "boolean": "false", "integer": "0", "number": "0"}


def rename_key(key: Node, name: str) -> Fix:
    """The fix for a misspelled key: the name the schema knows."""
    return replace_with(node_range(key), name, f'Change "{key.value}" to "{name}"')


def number_fix(node: Node, types: frozenset[str]) -> tuple[Fix, ...]:
    """A quoted number where a number is required ("80" for 80): the number itself."""
    if not isinstance(node, ScalarNode) or node.tag != STR:
        return ()
    text = str(node.value).strip()
    wanted = "integer" if "integer" in types else "number" if "number" in types else None
    if wanted is None or "string" in types or not _NUMBER.fullmatch(text):
        return ()
    if wanted == "integer" and not _INTEGER.fullmatch(text):
        return ()
    number = str(int(text)) if _INTEGER.fullmatch(text) else text.lstrip("+")
    title = f'Change "{node.value}" to the {wanted} {number}'
    return (replace_with(node_range(node), number, title),)


_INTEGER = re.compile(r"[-+]?[0-9]+")
_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")
"""Forms YAML reads as a number once unquoted (``1e3`` would stay a string)."""


def _integral(node: Node) -> bool:
    """1.0 for an integer field: JSON has one number type and the API server accepts it."""
    value = scalar_value(node)
    return isinstance(value, float) and value.is_integer()


_SCALAR_KINDS = {STR: "string", INT: "integer", FLOAT: "number", BOOL: "boolean", NULL: "null"}

SPECIAL_DEFS = frozenset(
    {
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    }
)
"""Definitions whose hook replaces the generic walk (their oneOf would say less)."""
