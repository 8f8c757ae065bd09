"""Completion, hover, definition and references in a chart's templates and values files,
from the text alone (no render). Positions and ranges count code points; the language
server converts them to the client's encoding.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ktl_lsp.documents.positions import LineIndex, Position, Range
from ktl_lsp.helm.chart_text import ChartText
from ktl_lsp.helm.templates import ROOT, Call, Define, Dot, TemplateScan, scan_cached
from ktl_lsp.helm.values import ValueEntry, ValuesIndex, index_cached, schema_info
from ktl_lsp.helm.values_refs import dotted

#: Built-in objects of a template's context and their fields (Helm's documentation).
BUILTINS: dict[str, dict[str, str]] = {
    "": {
        "Values": "The chart's values: values.yaml merged with the files and --set given",
        "Release": "The release being installed: Name, Namespace, IsInstall, ...",
        "Chart": "The contents of Chart.yaml",
        "Capabilities": "What the cluster supports: KubeVersion, APIVersions",
        "Template": "The template being rendered: Name, BasePath",
        "Files": "Non-template files of the chart: Get, Glob, AsConfig, ...",
        "Subcharts": "The subcharts' scopes, by name",
    },
    "Release": {
        "Name": "The release name",
        "Namespace": "The namespace released into",
        "IsUpgrade": "true when the operation is an upgrade or rollback",
        "IsInstall": "true when the operation is an install",
        "Revision": "The revision number (1 on install)",
        "Service": 'The service rendering the template ("Helm")',
    },
    "Chart": {
        "Name": "The chart's name",
        "Version": "The chart's version",
        "AppVersion": "The version of the app the chart contains",
        "Description": "The chart's description",
        "Type": "application or library",
        "ApiVersion": "The chart API version (v2)",
        "KubeVersion": "The Kubernetes versions the chart supports (a constraint)",
        "Home": "The project's home page",
        "Keywords": "Keywords of the chart",
        "Sources": "URLs of the source code",
        "Maintainers": "The chart's maintainers",
        "Icon": "An SVG or PNG image URL",
        "Deprecated": "Whether the chart is deprecated",
        "Annotations": "Chart.yaml annotations",
        "Dependencies": "The chart's dependencies",
    },
    "Capabilities": {
        "KubeVersion": "The Kubernetes version: Version, Major, Minor, GitVersion",
        "APIVersions": 'The API versions served; .Has "apps/v1" or "apps/v1/Deployment"',
        "HelmVersion": "The Helm version: Version, GitCommit, GoVersion",
    },
    "Capabilities.KubeVersion": {
        "Version": "The Kubernetes version (v1.31.0)",
        "Major": "The major version",
        "Minor": "The minor version",
        "GitVersion": "The version as git describes it",
    },
    "Capabilities.HelmVersion": {
        "Version": "The Helm version",
        "GitCommit": "The Helm git commit",
        "GitTreeState": "The git tree state of the Helm build",
        "GoVersion": "The Go version Helm was built with",
    },
    "Template": {
        "Name": "The path of the current template (mychart/templates/x.yaml)",
        "BasePath": "The path of the chart's templates directory",
    },
    "Files": {
        "Get": "Get NAME: a file's content as a string",
        "GetBytes": "GetBytes NAME: a file's content as bytes",
        "Glob": "Glob PATTERN: the files matching a pattern",
        "Lines": "Lines NAME: a file's lines, for range",
        "AsSecrets": "The files as Secret data (base64)",
        "AsConfig": "The files as ConfigMap data",
    },
}

KEYWORDS = (
    "if",
    "else",
    "end",
    "with",
    "range",
    "define",
    "template",
    "block",
    "break",
    "continue",
)


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    signature: str
    doc: str


@cache
def functions() -> dict[str, Function]:
    """The bundled table of Go template, Sprig and Helm functions."""
    data = json.loads(resources.files("ktl_lsp.helm").joinpath("functions.json").read_text())
    return {
        name: Function(name, item["signature"], item["doc"])
        for name, item in data["functions"].items()
    }


@dataclass(frozen=True, slots=True)
class Completion:
    label: str
    kind: str
    """value, field, template, function or keyword."""
    range: Range
    """What the completion replaces (the word being typed)."""
    detail: str = ""
    documentation: str = ""
    sort_text: str = ""


@dataclass(frozen=True, slots=True)
class Hover:
    markdown: str
    range: Range


@dataclass(frozen=True, slots=True)
class Place:
    path: Path
    range: Range


def lines_of(chart: ChartText, path: Path) -> LineIndex | None:
    """The line index of one of the chart's files (to convert its ranges)."""
    if path in chart.templates:
        return chart.templates[path].lines
    text = chart.value_texts.get(path)
    return LineIndex(text) if text is not None else None


def _scan(chart: ChartText, path: Path, text: str) -> TemplateScan:
    held = chart.templates.get(path)
    return held if held is not None and held.text == text else scan_cached(text)


# -- completion --------------------------------------------------------------------------------
_NAME_IN_STRING = re.compile(r"""\b(?:include|template)\s+"([^"]*)$""")
_PATH_TAIL = re.compile(r"(\$?[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]*)*)$")
_WORD_AFTER = re.compile(r"[A-Za-z0-9_-]*")


def complete(chart: ChartText, path: Path, text: str, position: Position) -> list[Completion]:
    """Completions in a template at `position`; empty outside actions."""
    scan = _scan(chart, path, text)
    offset = scan.offset(position)
    action = scan.action_at(offset)
    if action is None or action.comment or offset < action.body_start:
        return []
    before = scan.text[action.body_start : offset]
    after = _WORD_AFTER.match(scan.text, offset)
    end = after.end() if after is not None else offset
    named = _NAME_IN_STRING.search(before)
    if named is not None:
        start = offset - len(named.group(1))
        rng = scan.range(start, end)
        return [
            Completion(d.name, "template", rng, "named template", _define_markdown(chart, d, p))
            for p, d in _defines(chart)
        ]
    if _in_string(before):
        return []
    tail = _PATH_TAIL.search(before)
    word = tail.group(1) if tail is not None else ""
    if "." not in word:
        rng = scan.range(offset - len(word), end)
        return _functions(rng) if not word.startswith("$") else []
    base, _, partial = word.rpartition(".")
    rng = scan.range(offset - len(partial), end)
    dot, variables = scan.contexts.get(action.start, (ROOT, {"$": ROOT}))
    target = _resolve(base, dot, variables)
    if target is None:
        return []
    kind, where = target
    if kind == "builtin":
        fields = BUILTINS.get(".".join(where), {})
        return [Completion(name, "field", rng, "", doc) for name, doc in fields.items()]
    return _value_keys(chart, where, rng)


def _in_string(before: str) -> bool:
    """Whether the text of an action up to the cursor leaves a string literal open."""
    quote = ""
    i = 0
    while i < len(before):
        ch = before[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"`'":
            quote = ch
        i += 1
    return bool(quote)


def _resolve(base: str, dot: Dot, variables: dict[str, Dot]) -> tuple[str, tuple[str, ...]] | None:
    """What `base.` denotes: a builtin object (`Release`, ...) or a values path."""
    parts = base.split(".")
    head = parts[0]
    if head == "":
        context = dot
    elif head.startswith("$"):
        context = variables.get(head)
    else:
        return None
    rest = parts[1:]
    if context == ROOT:
        if not rest:
            return "builtin", ()
        if rest[0] == "Values":
            return "values", tuple(rest[1:])
        return "builtin", tuple(rest)
    if isinstance(context, tuple):
        return "values", (*context, *rest)
    return None


def _value_keys(chart: ChartText, prefix: tuple[str, ...], rng: Range) -> list[Completion]:
    seen: dict[str, list[tuple[Path, ValueEntry]]] = {}
    for file, index in chart.values.items():
        for entry in index.children(prefix):
            seen.setdefault(entry.path[-1], []).append((file, entry))
    out: list[Completion] = []
    for key, found in sorted(seen.items()):
        first = found[0][1]
        detail = f"{first.type} = {first.default}" if first.leaf else first.type
        out.append(Completion(key, "value", rng, detail, _values_markdown(chart, first.path), key))
    return out


def _functions(rng: Range) -> list[Completion]:
    out = [
        Completion(f.name, "function", rng, f.signature, f.doc, "1" + f.name)
        for f in functions().values()
    ]
    out.extend(Completion(k, "keyword", rng, "", "", "2" + k) for k in KEYWORDS)
    return out


def _defines(chart: ChartText) -> list[tuple[Path, Define]]:
    return [(p, d) for p, s in chart.templates.items() for d in s.defines]


# -- hover -------------------------------------------------------------------------------------
def hover(chart: ChartText, path: Path, text: str, position: Position) -> Hover | None:
    """What the word at `position` of a template is: a values path's values and schema
    description, a named template's body, a function's signature."""
    scan = _scan(chart, path, text)
    offset = scan.offset(position)
    ref = _ref_at(scan, offset)
    if ref is not None:
        target, (start, end) = ref
        return Hover(_values_markdown(chart, target), scan.range(start, end))
    call = _call_at(scan, offset)
    if call is not None:
        found = [(p, d) for p, d in _defines(chart) if d.name == call.name]
        if not found:
            body = f'**{call.kind} "{call.name}"**\n\nNo `define "{call.name}"` in this chart.'
        else:
            body = "\n\n".join(_define_markdown(chart, d, p) for p, d in found)
        return Hover(body, scan.range(call.start, call.end))
    for use in scan.functions:
        if use.start <= offset <= use.end:
            function = functions().get(use.name)
            if function is not None:
                markdown = f"```\n{function.signature}\n```\n{function.doc}"
                return Hover(markdown, scan.range(use.start, use.end))
    return None


def _ref_at(scan: TemplateScan, offset: int) -> tuple[tuple[str, ...], tuple[int, int]] | None:
    """The values path at `offset` (up to the key under the cursor) and that key's span."""
    for ref in scan.refs:
        if not ref.start <= offset <= ref.end:
            continue
        given = len(ref.path) - len(ref.segments)
        for i, segment in enumerate(ref.segments):
            if segment.start <= offset <= segment.end:
                return ref.path[: given + i + 1], (segment.start, segment.end)
        return ref.path, (ref.start, ref.end)
    return None


def _call_at(scan: TemplateScan, offset: int) -> Call | None:
    return next((c for c in scan.calls if c.start <= offset <= c.end), None)


def _define_markdown(chart: ChartText, define: Define, path: Path) -> str:
    scan = chart.templates.get(path)
    body = scan.text[define.body_start : define.body_end].strip("\n") if scan else ""
    line = scan.position(define.start).line + 1 if scan else 0
    where = path.relative_to(chart.root).as_posix() if chart.root in path.parents else str(path)
    return f'**define "{define.name}"** · {where}:{line}\n```\n{body}\n```'


def _values_markdown(chart: ChartText, target: tuple[str, ...]) -> str:
    lines = [f"**{dotted(target)}**", ""]
    for file, index in chart.values.items():
        name = chart.names[file]
        entry = index.get(target)
        if entry is not None:
            lines.append(f"- `{name}`: `{entry.default}` ({entry.type})")
        elif file == chart.defaults:
            lines.append(f"- `{name}`: not set")
    info = schema_info(chart.schema_text, target)
    if info is not None:
        lines.append("")
        if info.type:
            lines.append(
                f"Schema type: `{info.type}`"
                + (f", default `{info.default}`" if info.default else "")
            )
        if info.description:
            lines.append("")
            lines.append(info.description)
    return "\n".join(lines).rstrip()


# -- navigation --------------------------------------------------------------------------------
def definition(chart: ChartText, path: Path, text: str, position: Position) -> list[Place]:
    """A values path -> its key in each values file (the deepest key given where the path is
    not); an include/template name -> its define."""
    scan = _scan(chart, path, text)
    offset = scan.offset(position)
    ref = _ref_at(scan, offset)
    if ref is not None:
        return _value_places(chart, ref[0])
    call = _call_at(scan, offset)
    if call is not None:
        return [
            Place(p, chart.templates[p].range(d.name_start, d.name_end))
            for p, d in _defines(chart)
            if d.name == call.name
        ]
    return []


def _value_places(chart: ChartText, target: tuple[str, ...]) -> list[Place]:
    out: list[Place] = []
    for file, index in chart.values.items():
        for size in range(len(target), 0, -1):
            entry = index.get(target[:size])
            if entry is not None:
                out.append(Place(file, entry.key_range))
                break
    return out


def references(
    chart: ChartText, path: Path, text: str, position: Position, declaration: bool = True
) -> list[Place]:
    """In a values file: the templates' reads of the key at `position` (reads below it and
    reads of a mapping holding it too). In a template: the other reads of the same path, or
    the calls of the same named template."""
    if path in chart.values or path.name.startswith("values"):
        index = chart.values.get(path) or index_cached(text)
        entry = key_at(index, position)
        if entry is None:
            return []
        places = _reads(chart, entry.path)
        return ([Place(path, entry.key_range)] if declaration else []) + places
    scan = _scan(chart, path, text)
    offset = scan.offset(position)
    ref = _ref_at(scan, offset)
    if ref is not None:
        target = ref[0]
        found = [
            Place(p, s.range(r.start, r.end))
            for p, s in _templates(chart, path, scan)
            for r in s.refs
            if r.path == target
        ]
        return (_value_places(chart, target) if declaration else []) + found
    name = _name_at(scan, offset)
    if name is None:
        return []
    calls = [
        Place(p, s.range(c.start, c.end))
        for p, s in _templates(chart, path, scan)
        for c in s.calls
        if c.name == name
    ]
    defines = [
        Place(p, chart.templates[p].range(d.name_start, d.name_end))
        for p, d in _defines(chart)
        if d.name == name
    ]
    return (defines if declaration else []) + calls


def _name_at(scan: TemplateScan, offset: int) -> str | None:
    call = _call_at(scan, offset)
    if call is not None:
        return call.name
    define = next((d for d in scan.defines if d.name_start <= offset <= d.name_end), None)
    return define.name if define is not None else None


def _templates(chart: ChartText, path: Path, scan: TemplateScan) -> list[tuple[Path, TemplateScan]]:
    """The chart's template scans, the file being edited with its current text."""
    held = dict(chart.templates)
    held[path] = scan
    return sorted(held.items())


def _reads(chart: ChartText, key: tuple[str, ...]) -> list[Place]:
    size = len(key)
    out: list[Place] = []
    for file, scan in sorted(chart.templates.items()):
        for ref in scan.refs:
            if ref.path[:size] == key or (ref.path and key[: len(ref.path)] == ref.path):
                out.append(Place(file, scan.range(ref.start, ref.end)))
    return out


def key_at(index: ValuesIndex, position: Position) -> ValueEntry | None:
    """The values key at `position`: on the key itself, or on a scalar value of it."""
    best: ValueEntry | None = None
    for entry in index.entries.values():
        on_key = entry.key_range.contains(position)
        on_value = entry.leaf and entry.value_range.contains(position)
        if (on_key or on_value) and (best is None or len(entry.path) > len(best.path)):
            best = entry
    return best
