"""Helm values files against the chart's `values.schema.json`, at the exact key or value.

Helm validates the merged values, so an override file (`values-prod.yaml`) is merged over the
chart's `values.yaml` first: a required field that the defaults provide is no false alarm, and
only errors located in the file itself are reported there. Its `secret://` references are
checked too (`secret_refs`), with or without a schema.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Protocol

from ktl_lsp.checks.findings import Finding
from ktl_lsp.checks.schema_engine import node_range
from ktl_lsp.checks.secret_refs import check_secret_refs
from ktl_lsp.documents.file_kinds import values_chart_dir
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import mapping_pairs, to_python
from ktl_lsp.documents.yaml_parse import ParsedText

CODE = "helm-values-schema"
MAX_ERRORS = 200


class FileSource(Protocol):
    def text_of(self, path: Path) -> str | None: ...

    def parsed_of(self, path: Path) -> ParsedText | None: ...


_LOCK = threading.Lock()
_VALIDATORS: dict[str, Any] = {}


def _validator(schema_text: str) -> Any:
    """A compiled validator per schema text; raises ValueError for a broken schema."""
    with _LOCK:
        cached = _VALIDATORS.get(schema_text)
        if cached is not None:
            return cached
    try:
        schema = json.loads(schema_text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"values.schema.json is not valid JSON: {error.msg} (line {error.lineno})"
        ) from error
    import jsonschema  # only charts with a values.schema.json pay for it

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise ValueError(
            f"values.schema.json is not a valid JSON Schema: {error.message}"
        ) from error
    # No retrieval at all: a schema from a cloned repository must never make us fetch a URL
    # or read a file ($ref to http:// or file://); only references inside it resolve.
    from referencing import Registry
    from referencing.exceptions import NoSuchResource

    def refuse(uri: str) -> Any:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]

    validator = cls(schema, registry=Registry(retrieve=refuse))  # type: ignore[call-arg]
    with _LOCK:
        if len(_VALIDATORS) > 64:
            _VALIDATORS.clear()
        _VALIDATORS[schema_text] = validator
    return validator


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


def _child(node: Node, part: str | int) -> tuple[Node, Node | None] | None:
    """(value node, key node) for one step of a path."""
    if isinstance(node, MappingNode):
        for key, value in mapping_pairs(node):
            if isinstance(key, ScalarNode) and str(key.value) == str(part):
                return value, key
    elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], None
    return None


def _locate(root: Node, path: list[str | int]) -> tuple[Node, Node | None, int]:
    """The deepest node along a path, its key node, and how many steps were found."""
    node, key = root, None
    for depth, part in enumerate(path):
        step = _child(node, part)
        if step is None:
            return node, key, depth
        node, key = step
    return node, key, len(path)


def check_values_file(path: Path, parsed: ParsedText, source: FileSource) -> list[Finding]:
    """Findings for one values file (absolute ranges): the chart's schema, then secret refs."""
    return _check_schema(path, parsed, source) + check_secret_refs(path, parsed, source)


def _check_schema(path: Path, parsed: ParsedText, source: FileSource) -> list[Finding]:
    """Schema findings; nothing when the chart has no schema."""
    chart_dir = values_chart_dir(path)
    schema_text = source.text_of(chart_dir / "values.schema.json")
    if schema_text is None:
        return []
    document = next((d for d in parsed.documents if d.root is not None), None)
    if document is None:
        return []
    try:
        validator = _validator(schema_text)
    except ValueError as error:
        return [Finding(Range.of(0, 0, 0, 0), "warning", CODE, str(error))]
    root = document.root
    assert root is not None
    values = to_python(root)
    own_file = path.name == "values.yaml"
    if not own_file:
        defaults = source.parsed_of(chart_dir / "values.yaml")
        base = None
        if defaults is not None:
            base = next((d.root for d in defaults.documents if d.root is not None), None)
        if base is not None:
            values = _merge(to_python(base), values)
    if values is None:
        values = {}
    from referencing.exceptions import Unresolvable

    findings: list[Finding] = []
    try:
        for count, problem in enumerate(validator.iter_errors(values)):
            if count >= MAX_ERRORS:
                break
            findings.extend(_to_findings(problem, root, own_file))
    except Unresolvable as error:
        message = (
            f"values.schema.json refers to {error} outside the file; ktl-lsp never fetches "
            "schema references, so this part is not checked"
        )
        findings.append(Finding(Range.of(0, 0, 0, 0), "warning", CODE, message))
    return [f.shifted(document.start_line) for f in findings]


def _to_findings(error: Any, root: Node, own_file: bool) -> list[Finding]:
    path = list(error.absolute_path)
    where = ".".join(str(p) for p in path) or "(root)"
    node, key, found = _locate(root, path)
    if found < len(path) and not own_file:
        return []  # about values that come from the chart's defaults
    validator = error.validator
    if validator == "additionalProperties" and isinstance(node, MappingNode):
        extras = re.findall(r"'([^']+)'", str(error.message).rsplit("(", 1)[-1])
        out: list[Finding] = []
        for extra in extras:
            step = _child(node, extra)
            if step is not None and step[1] is not None:
                out.append(
                    Finding(
                        node_range(step[1]),
                        "error",
                        CODE,
                        f'{where}: additional property "{extra}" is not allowed',
                    )
                )
        if out:
            return out
    target = node
    if validator == "required":
        if key is not None:
            target = key
        elif isinstance(root, MappingNode) and root.value and not path:
            target = root.value[0][0]
    return [Finding(node_range(target), "error", CODE, f"{where}: {error.message}")]
