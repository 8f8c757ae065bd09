"""Completion for Kubernetes manifests: keys from the schema of the document's apiVersion/kind,
values (enums, booleans, kinds with their apiVersion), also while the document does not parse.

Answers are plain data in the client's position encoding; the language server turns them into
`CompletionItem`s. Anything that cannot be answered is an empty list, never an exception.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Literal, Protocol

from ktl_lsp.checks.crds import OBJECT_META, CrdVersion
from ktl_lsp.checks.hover import describe
from ktl_lsp.checks.k8s_manifest import string_map
from ktl_lsp.checks.k8s_schemas import schemas_for
from ktl_lsp.checks.k8s_workspace import POD_TEMPLATE_PATHS, PlacedSummary
from ktl_lsp.checks.ktl_config import KTL_CONFIG
from ktl_lsp.checks.plan_file import plan_schema_data
from ktl_lsp.checks.schema_docs import (
    FieldDoc,
    crd_field_children,
    crd_field_doc,
    field_children,
    field_doc,
    json_schema_children,
    json_schema_field,
)
from ktl_lsp.checks.shape import Shape
from ktl_lsp.checks.stack_shapes import INLINE_RELEASE, RELEASE_FILE, ROOT_STACK
from ktl_lsp.documents.file_kinds import FileKind
from ktl_lsp.documents.nodes import MappingNode, Node, SequenceNode
from ktl_lsp.documents.positions import LineIndex, Position, PositionEncoding, Range
from ktl_lsp.documents.yaml_nodes import get, scalar_text
from ktl_lsp.documents.yaml_parse import ParsedText
from ktl_lsp.documents.yaml_path import PathPart, YamlPath, document_type, path_at

SuggestionKind = Literal["key", "value", "enum", "boolean", "kind", "apiVersion", "reference"]

#: The end of a field path (list indexes left out) that names another object, and its
#: (group, kind): completed from the workspace's objects of that kind.
REFERENCES: Mapping[tuple[str, ...], tuple[str, str]] = {
    ("configMapRef", "name"): ("", "ConfigMap"),
    ("configMapKeyRef", "name"): ("", "ConfigMap"),
    ("configMap", "name"): ("", "ConfigMap"),
    ("secretRef", "name"): ("", "Secret"),
    ("secretKeyRef", "name"): ("", "Secret"),
    ("secret", "secretName"): ("", "Secret"),
    ("secret", "name"): ("", "Secret"),
    ("imagePullSecrets", "name"): ("", "Secret"),
    ("serviceAccountName",): ("", "ServiceAccount"),
    ("persistentVolumeClaim", "claimName"): ("", "PersistentVolumeClaim"),
    ("service", "name"): ("", "Service"),
}
"""`secret.name`: a projected volume's source; `service.name`: an Ingress backend's, a
webhook's or an APIService's Service."""


#: (group, kind) of the objects with a pod template (or pods): whose ports a Service targets.
POD_KINDS: tuple[tuple[str, str], ...] = tuple(
    ("" if kind in ("Pod", "ReplicationController") else "batch" if "Job" in kind else "apps", kind)
    for kind in POD_TEMPLATE_PATHS
)


@dataclass(frozen=True, slots=True)
class Listed:
    """Names of one kind's objects in a namespace of the connected cluster (from a cache)."""

    context: str
    namespace: str
    names: tuple[str, ...]


ClusterNames = Callable[[str, str | None], Listed | None]
"""(kind, the document's namespace or None) -> what the cluster has, if known yet: never waits
for the cluster (a lookup may start a refresh in the background)."""


class Known(Protocol):
    """What the workspace knows beyond the bundled schemas (`Workspace` is one)."""

    def crd(self, api_version: str, kind: str) -> CrdVersion | None: ...

    def crds(self) -> list[CrdVersion]: ...

    def objects(self, kind: str, group: str = "") -> list[PlacedSummary]: ...


#: Keys the API server writes: not offered at the top of an object.
_SERVER_WRITTEN = frozenset({"status"})


@dataclass(frozen=True, slots=True)
class Edit:
    range: Range
    """In the client's encoding."""
    new_text: str


@dataclass(frozen=True, slots=True)
class Topic:
    """What a suggestion is about, for its documentation (`describe`) on resolve."""

    api_version: str
    kind: str
    path: tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    kind: SuggestionKind
    edit: Edit
    """Replaces the word being typed."""
    detail: str = ""
    snippet: bool = False
    """`edit.new_text` is a snippet (`$1` placeholders)."""
    required: bool = False
    sort_text: str = ""
    additional_edits: tuple[Edit, ...] = ()
    topic: Topic | None = None
    documentation: str | None = None
    """Plain text known at once (else `documentation(topic)` on resolve)."""

    def shifted(self, lines: int) -> Suggestion:
        """The same suggestion for a document that starts `lines` further down its file."""
        if not lines:
            return self
        return replace(
            self,
            edit=Edit(self.edit.range.shifted(lines), self.edit.new_text),
            additional_edits=tuple(
                Edit(e.range.shifted(lines), e.new_text) for e in self.additional_edits
            ),
        )


def complete_at(
    parsed: ParsedText,
    position: Position,
    k8s_version: str,
    known: Known,
    encoding: PositionEncoding = "utf-16",
    snippets: bool = False,
    cluster: ClusterNames | None = None,
) -> list[Suggestion]:
    """Suggestions at a client-encoded position of a manifest (never raises for input); names
    of objects from the workspace and, given `cluster`, from the connected cluster."""
    located = _locate(parsed, position, encoding)
    if located is None:
        return []
    where, found = located
    at = _Context(parsed, found, where, encoding, k8s_version, known, snippets, cluster=cluster)
    if found.on == "key":
        return at.keys(found.path[:-1], found.key_range)
    return at.values()


def _locate(
    parsed: ParsedText, position: Position, encoding: PositionEncoding
) -> tuple[Position, YamlPath] | None:
    """The position in code points and the path there, or None off the text."""
    lines = parsed.lines
    if position.line < 0 or position.character < 0 or position.line >= lines.line_count():
        return None
    where = lines.from_client(position, encoding)
    if lines.to_client(where, encoding) != position:
        return None  # past the end of its line
    text = lines.line_text(where.line)
    found = path_at(parsed, where.line, where.character, layout_only=_bare_word(text))
    if found is None or not found.path:
        return None
    return where, found


def complete_names(
    parsed: ParsedText,
    position: Position,
    file_kind: FileKind,
    releases: Callable[[], list[tuple[str, str, str]]],
    encoding: PositionEncoding = "utf-16",
) -> list[Suggestion]:
    """ktl files: a stack's release names in `needs` (`releases` gives the stack's (id, name,
    file)), a plan's node ids in `deps`; not the item itself, not the names listed already."""
    located = _locate(parsed, position, encoding)
    if located is None or located[1].on != "value":
        return []
    where, found = located
    path = found.path
    if file_kind == FileKind.PLAN:
        item, list_key, own_key = path[:2], "deps", "id"
    elif file_kind == FileKind.KTL_STACK:
        item, list_key, own_key = path[:2], "needs", "name"
    elif file_kind == FileKind.KTL_RELEASE:
        item, list_key, own_key = (), "needs", "name"
    else:
        return []
    if item and (len(item) < 2 or item[0] != _LISTS[file_kind] or not isinstance(item[1], int)):
        return []
    rest = path[len(item) :]
    if not rest or rest[0] != list_key:
        return []
    if len(rest) > 2 or (len(rest) == 2 and not isinstance(rest[1], int)):
        return []
    root, _, _ = _document(parsed, found.document)
    node = _node_at(root, item) if root is not None else None
    own = scalar_text(get(node, own_key)) if root is not None else _own(parsed, where, own_key)
    listed = get(node, list_key)
    taken = {own} | {
        scalar_text(v) for v in (listed.value if isinstance(listed, SequenceNode) else [])
    }
    if file_kind == FileKind.PLAN:
        choices = [(name, "plan node") for name in _node_values(parsed, found.document, "id")]
    else:
        choices = [
            (name, f"release {rid} · {PurePath(file).name}") for rid, name, file in releases()
        ]
    text = parsed.lines.line_text(where.line)
    start, end = _word_span(text, where.character)
    typed = text[start:end]
    pad = " " if start == end and text[:start].endswith((":", "-")) else ""
    out: dict[str, Suggestion] = {}
    for name, detail in choices:
        if name in out or (name in taken and name != typed):
            continue
        rng = parsed.lines.range_to_client(Range.of(where.line, start, where.line, end), encoding)
        out[name] = Suggestion(
            name, "reference", Edit(rng, pad + name), detail, sort_text=f"{len(out):04d}"
        )
    return list(out.values())


def complete_ktl(
    parsed: ParsedText,
    position: Position,
    file_kind: FileKind,
    releases: Callable[[], list[tuple[str, str, str]]] = list,
    encoding: PositionEncoding = "utf-16",
    snippets: bool = False,
) -> list[Suggestion]:
    """ktl files: the keys and values of their format (plan, stack, release, `.ktl.yaml`),
    release names in `needs`, node ids in `deps`, tool names under a plan's `toolLimits`."""
    located = _locate(parsed, position, encoding)
    if located is None:
        return []
    where, found = located
    if file_kind in (FileKind.PLAN, FileKind.KTL_STACK, FileKind.KTL_RELEASE):
        names = complete_names(parsed, position, file_kind, releases, encoding)
        if names or any(p in ("deps", "needs") for p in found.path[:-1]):
            return names
        if found.on == "value" and found.path[-1:] in (("deps",), ("needs",)):
            return names
    own: _Fields
    if file_kind == FileKind.PLAN:
        own = _PlanFields(parsed, found.document)
    elif file_kind in _SHAPES:
        own = _ShapeFields(_SHAPES[file_kind])
    else:
        return []
    at = _Context(parsed, found, where, encoding, "", _NOTHING, snippets, own)
    return at.keys(found.path[:-1], found.key_range) if found.on == "key" else at.values()


class _Fields(Protocol):
    """The keys and values of a ktl format."""

    def fields(self, parent: tuple[PathPart, ...]) -> list[FieldDoc]: ...

    def field(self, path: tuple[PathPart, ...]) -> FieldDoc | None: ...


@dataclass(frozen=True, slots=True)
class _PlanFields:
    """The plan format's JSON Schema; `toolLimits` keys are the tools the nodes name."""

    parsed: ParsedText
    document: int

    def fields(self, parent: tuple[PathPart, ...]) -> list[FieldDoc]:
        if parent == ("toolLimits",):
            tools = _node_values(self.parsed, self.document, "tool")
            return [FieldDoc(t, "", "integer", False, None) for t in dict.fromkeys(tools)]
        return list(json_schema_children(plan_schema_data(), parent))

    def field(self, path: tuple[PathPart, ...]) -> FieldDoc | None:
        return json_schema_field(plan_schema_data(), path)


_SHAPE_TYPES = {"bool": "boolean", "int": "integer", "object": "object"}
_RELEASE_REQUIRED = ("name", "chart")


@dataclass(frozen=True, slots=True)
class _ShapeFields:
    """A format described by `Shape`s (stack.yaml, release.yaml, .ktl.yaml)."""

    root: Shape

    def _at(self, path: tuple[PathPart, ...]) -> Shape | None:
        shape: Shape | None = self.root
        for part in path:
            if shape is None:
                return None
            if isinstance(part, int) or shape.type == "map":
                shape = shape.item if shape.type in ("list", "map") else None
            else:
                shape = shape.fields.get(part) if shape.type == "object" else None
        return shape

    def fields(self, parent: tuple[PathPart, ...]) -> list[FieldDoc]:
        shape = self._at(parent)
        if shape is not None and shape.type == "list":
            shape = shape.item
        if shape is None or shape.type != "object":
            return []
        required = _RELEASE_REQUIRED if shape in (INLINE_RELEASE, RELEASE_FILE) else ()
        return [self._doc(name, sub, name in required) for name, sub in shape.fields.items()]

    def field(self, path: tuple[PathPart, ...]) -> FieldDoc | None:
        shape = self._at(path)
        last = path[-1] if path else None
        return (
            self._doc(last, shape, False) if shape is not None and isinstance(last, str) else None
        )

    @staticmethod
    def _doc(name: str, shape: Shape, required: bool) -> FieldDoc:
        return FieldDoc(name, "", _shape_type(shape), required, None, shape.enum or ())


def _shape_type(shape: Shape) -> str:
    if shape.type == "list":
        return "[]" + (_shape_type(shape.item) if shape.item is not None else "any")
    if shape.type == "map":
        return "map[string]" + (_shape_type(shape.item) if shape.item is not None else "any")
    return _SHAPE_TYPES.get(shape.type, shape.type)


_SHAPES: Mapping[FileKind, Shape] = {
    FileKind.KTL_STACK: ROOT_STACK,
    FileKind.KTL_RELEASE: RELEASE_FILE,
    FileKind.KTL_CONFIG: KTL_CONFIG,
}


class _Nothing:
    """No CRDs and no objects: what a ktl file's completion knows of the workspace."""

    def crd(self, api_version: str, kind: str) -> CrdVersion | None:
        return None

    def crds(self) -> list[CrdVersion]:
        return []

    def objects(self, kind: str, group: str = "") -> list[PlacedSummary]:
        return []


_NOTHING = _Nothing()


def _own(parsed: ParsedText, where: Position, key: str) -> str | None:
    """The `- key: value` of the list item around the cursor, read from the lines above."""
    lines = parsed.lines
    indent = _indent(lines.line_text(where.line))
    pattern = re.compile(rf"""^([ \t]*)-[ \t]+{key}:[ \t]*["']?([^\s"'#,}}]+)""")
    for n in range(where.line, -1, -1):
        match = pattern.match(lines.line_text(n))
        if match and len(match.group(1)) < indent:
            return match.group(2)
    return None


def _document(parsed: ParsedText, index: int) -> tuple[Node | None, int, int]:
    """(root, first line, end line) of a document; the whole text for the comments or blank
    lines before any document (where `path_at` says document 0)."""
    if 0 <= index < len(parsed.documents):
        document = parsed.documents[index]
        return document.root, document.start_line, document.end_line
    return None, 0, parsed.lines.line_count()


_LISTS = {FileKind.PLAN: "nodes", FileKind.KTL_STACK: "releases"}


def _node_values(parsed: ParsedText, index: int, key: str) -> list[str]:
    """A key's values in a plan's nodes (`id`, `tool`): from the parse, else from the lines."""
    root, first, last = _document(parsed, index)
    nodes = get(root, "nodes")
    if isinstance(nodes, SequenceNode):
        values = (scalar_text(get(entry, key)) for entry in nodes.value)
        return [v for v in values if v]
    pattern = re.compile(rf"""(?:^|[\s{{,]){key}:[ \t]*["']?([^\s"'#,}}\]]+)""")
    lines = parsed.lines
    found: list[str] = []
    for n in range(first, last):
        found.extend(m.group(1) for m in pattern.finditer(lines.line_text(n)))
    return found


def _word_span(text: str, character: int) -> tuple[int, int]:
    """The name around `character`, between YAML's punctuation and blanks."""
    stop = " \t[]{},:#"
    start = character
    while start > 0 and text[start - 1] not in stop:
        start -= 1
    end = character
    while end < len(text) and text[end] not in stop:
        end += 1
    return start, end


def documentation(
    topic: Topic, k8s_version: str, crd_for: Callable[[str, str], CrdVersion | None]
) -> str | None:
    """Markdown about a suggestion's field or resource (what hover says there)."""
    path = topic.path
    while path and isinstance(path[-1], int):  # an item of a list: its list's field
        path = path[:-1]
    return describe(topic.api_version, topic.kind, path, k8s_version, crd_for) if path else None


def _bare_word(text: str) -> bool:
    """A line holding at most a word (no colon, no list dash, no flow collection): a key being
    typed, whatever the parse makes of it."""
    stripped = text.strip()
    return ":" not in stripped and not stripped.startswith(("-", "{", "[", "#", "|", ">"))


_KEY = re.compile(r"""("[^"]*"|'[^']*'|[^\s#:'"\[\]{},&*!|>-][^#]*?|-[^\s#][^#]*?)\s*:(?:\s|$)""")
_DASHES = re.compile(r"(?:-(?:[ \t]+|$))+")


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" \t"))


def _content(text: str) -> tuple[int, bool]:
    """The column after a line's `- ` dashes, and whether it has any."""
    start = _indent(text)
    dashes = _DASHES.match(text, start)
    return (dashes.end(), True) if dashes else (start, False)


def _key_of(text: str, col: int) -> str | None:
    match = _KEY.match(text, col)
    return match.group(1).strip("'\"") if match else None


def _node_at(root: Node, path: tuple[PathPart, ...]) -> Node | None:
    node: Node | None = root
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, SequenceNode) or not 0 <= part < len(node.value):
                return None
            node = node.value[part]
        else:
            if not isinstance(node, MappingNode):
                return None
            node = next((v for k, v in node.value if scalar_text(k) == part), None)
    return node


@functools.cache
def _builtin_objects(k8s_version: str) -> tuple[tuple[str, str], ...]:
    """(apiVersion, kind) of the version's objects (with ObjectMeta: not lists, not the
    discovery types such as APIGroup)."""
    k8s = schemas_for(k8s_version)
    out = []
    for pair, name in k8s.kinds.items():
        props = (k8s.compiler.raw(name) or {}).get("properties")
        meta = props.get("metadata") if isinstance(props, Mapping) else None
        ref = meta.get("$ref") if isinstance(meta, Mapping) else None
        if isinstance(ref, str) and ref.endswith(OBJECT_META):
            out.append(pair)
    return tuple(out)


def _kinds_served(k8s_version: str, crds: Iterable[CrdVersion]) -> list[tuple[str, str]]:
    """(apiVersion, kind) pairs of resources: built-in ones of the version, then the CRDs'."""
    pairs = list(_builtin_objects(k8s_version))
    pairs += [(c.api_version, c.kind) for c in crds if c.served]
    return pairs


@dataclass(slots=True)
class _Context:
    parsed: ParsedText
    found: YamlPath
    where: Position
    """In code points."""
    encoding: PositionEncoding
    k8s_version: str
    known: Known
    snippets: bool
    own: _Fields | None = None
    """Keys and values of a ktl format (else the manifest's apiVersion/kind)."""
    cluster: ClusterNames | None = None

    @property
    def lines(self) -> LineIndex:
        return self.parsed.lines

    def _edit(self, start: int, end: int, new_text: str, line: int | None = None) -> Edit:
        at = self.where.line if line is None else line
        rng = Range.of(at, start, at, end)
        return Edit(self.lines.range_to_client(rng, self.encoding), new_text)

    def _type(self) -> tuple[str | None, str | None]:
        return document_type(self.parsed, self.found.document)

    # -- keys ------------------------------------------------------------------------------
    def _fields(self, parent: tuple[PathPart, ...]) -> list[FieldDoc]:
        if self.own is not None:
            return self.own.fields(parent)
        api_version, kind = self._type()
        if not api_version or not kind:
            return []
        fields = field_children(self.k8s_version, api_version, kind, parent)
        if not fields:
            crd = self.known.crd(api_version, kind)
            if crd is not None:
                fields = crd_field_children(crd, self.k8s_version, parent)
        return list(fields)

    def _field(self, path: tuple[PathPart, ...]) -> FieldDoc | None:
        if self.own is not None:
            return self.own.field(path)
        api_version, kind = self._type()
        if not api_version or not kind:
            return None
        doc = field_doc(self.k8s_version, api_version, kind, path)
        if doc is None:
            crd = self.known.crd(api_version, kind)
            doc = crd_field_doc(crd, self.k8s_version, path) if crd is not None else None
        return doc

    def _topic(self, path: tuple[PathPart, ...]) -> Topic | None:
        api_version, kind = self._type()
        if self.own is not None or not api_version or not kind:
            return None
        return Topic(api_version, kind, path)

    def keys(self, parent: tuple[PathPart, ...], span: Range | None) -> list[Suggestion]:
        api_version, kind = self._type()
        text = self.lines.line_text(self.where.line)
        if span is not None and span.start.line == self.where.line:
            start, end = span.start.character, span.end.character
        else:
            start = end = self.where.character
        typed = text[start:end]
        if self.own is not None or (api_version and kind):
            fields = self._fields(parent)
        elif not parent:
            fields = [FieldDoc(k, "", "string", True, None) for k in ("apiVersion", "kind")]
            fields.append(FieldDoc("metadata", "", "ObjectMeta", True, None))
        else:
            fields = []
        if not fields:
            return []
        present = self._present(parent, start)
        present.discard(typed)
        has_colon = re.match(r"[ \t]*:", text[end:]) is not None
        out = []
        for field in fields:
            if field.name in present or (not parent and field.name in _SERVER_WRITTEN):
                continue
            if has_colon:
                new_text, snippet = field.name, False
            elif self.snippets:
                new_text, snippet = _snippet(field), True
            else:
                new_text, snippet = field.name + (":" if _collection(field.type) else ": "), False
            out.append(
                Suggestion(
                    field.name,
                    "key",
                    self._edit(start, end, new_text),
                    field.type + (" · required" if field.required else ""),
                    snippet,
                    field.required,
                    ("0" if field.required else "1") + field.name,
                    topic=self._topic((*parent, field.name)),
                    documentation=(field.description or None) if self.own is not None else None,
                )
            )
        return out

    def _present(self, parent: tuple[PathPart, ...], col: int) -> set[str]:
        """Keys the mapping being completed already has."""
        root, first, last = _document(self.parsed, self.found.document)
        if root is not None:
            node = _node_at(root, parent)
            if isinstance(node, MappingNode):
                return {scalar_text(k) or "" for k, _ in node.value}
        return self._siblings(first, last, col)

    def _siblings(self, first: int, last: int, col: int) -> set[str]:
        """Keys at column `col` of the block around the cursor's line, read from the text."""
        out: set[str] = set()
        here = self.where.line
        _, dashed = _content(self.lines.line_text(here))
        for step in (-1, 1):
            if step < 0 and dashed:
                continue  # the cursor's line starts an item: the lines above are another's
            n = here + step
            while first <= n < last:
                text = self.lines.line_text(n)
                n += step
                if not text.strip() or text.lstrip().startswith("#"):
                    continue
                start, has_dash = _content(text)
                if start == col:
                    if has_dash and step > 0:
                        break  # the next item
                    key = _key_of(text, col)
                    if key is not None:
                        out.add(key)
                    if has_dash:
                        break  # the first line of this item
                elif _indent(text) < col:
                    break
        return out

    # -- values ----------------------------------------------------------------------------
    def values(self) -> list[Suggestion]:
        api_version, kind = self._type()
        path = self.found.path
        start, end = self._value_span()
        if path == ("kind",) and not self.own is not None:
            return self._kinds(start, end, api_version)
        if path == ("apiVersion",) and not self.own is not None:
            return self._api_versions(start, end, kind)
        if isinstance(path[-1], int) and self._fields(path):
            # `- na` under a list of objects: the first key of a new item
            span = Range.of(self.where.line, start, self.where.line, end)
            return self.keys(path, span)
        field_path = path
        while field_path and isinstance(field_path[-1], int):
            field_path = field_path[:-1]
        if not field_path:
            return []
        doc = self._field(field_path)
        if doc is None:
            return []
        topic = self._topic(field_path)
        names = tuple(p for p in field_path if isinstance(p, str))
        ports = self._port_choices(kind, names, field_path)
        if ports is not None and topic is not None:
            return self._choices(start, end, ports, topic)
        target = REFERENCES.get(names[-2:]) or REFERENCES.get(names[-1:])
        if target is not None and topic is not None:
            return self._references(start, end, *target, topic)
        if doc.enum:
            values, what = doc.enum, "enum"
        elif doc.type == "boolean":
            values, what = ("true", "false"), "boolean"
        else:
            return []
        pad = " " if start == end == self.where.character and self._needs_space() else ""
        return [
            Suggestion(
                value,
                "enum" if what == "enum" else "boolean",
                self._edit(start, end, pad + value),
                f"{doc.name}" + (" · default" if value == doc.default else ""),
                sort_text=f"{index:03d}",
                topic=topic,
            )
            for index, value in enumerate(values)
        ]

    def _needs_space(self) -> bool:
        text = self.lines.line_text(self.where.line)
        return text[: self.where.character].endswith((":", "-"))

    def _value_span(self) -> tuple[int, int]:
        """Columns of the value being typed on the cursor's line."""
        text = self.lines.line_text(self.where.line)
        character = self.where.character
        span = self.found.key_range
        if span is not None and span.start.line == self.where.line:
            colon = text.find(":", span.end.character)
            start = colon + 1 if colon >= 0 else span.end.character
        else:
            start, _ = _content(text)
        while start < len(text) and text[start] in " \t":
            start += 1
        comment = re.search(r"[ \t]#", text[start:])
        end = start + comment.start() if comment else len(text.rstrip())
        if "{" in text[:start] or "[" in text[:start]:  # inside a flow collection
            closing = re.search(r"[,\]}]", text[start:end])
            end = start + closing.start() if closing else end
            while end > start and text[end - 1] in " \t":
                end -= 1
        if start > character:
            return character, character
        return start, max(end, character)

    def _references(
        self, start: int, end: int, group: str, kind: str, topic: Topic
    ) -> list[Suggestion]:
        """Names of the workspace's objects of a kind, those of the document's namespace
        (or without one) first; then the cluster's in that namespace."""
        _, namespace = self._namespace()
        pad = " " if start == end and self._needs_space() else ""
        seen: dict[str, Suggestion] = {}
        for placed in self.known.objects(kind, group):
            name, where = placed.summary.name, placed.summary.namespace
            if name in seen and seen[name].sort_text[0] == "0":
                continue
            near = where is None or namespace is None or where == namespace
            place = f" in {where}" if where else ""
            seen[name] = Suggestion(
                name,
                "reference",
                self._edit(start, end, pad + name),
                f"{kind}{place} · {PurePath(placed.path).name}",
                sort_text=("0" if near else "1") + name,
                topic=topic,
            )
        listed = self.cluster(kind, namespace) if self.cluster is not None and not group else None
        if listed is not None:
            detail = f"{kind} in {listed.namespace} · cluster: {listed.context}"
            for name in listed.names:
                if name not in seen or seen[name].sort_text[0] != "0":
                    edit = self._edit(start, end, pad + name)
                    seen[name] = Suggestion(
                        name, "reference", edit, detail, sort_text="0" + name, topic=topic
                    )
        return list(seen.values())

    def _namespace(self) -> tuple[Node | None, str | None]:
        root, _, _ = _document(self.parsed, self.found.document)
        namespace = scalar_text(get(root, "metadata", "namespace")) if root is not None else None
        return root, namespace

    def _port_choices(
        self, kind: str | None, names: tuple[str, ...], path: tuple[PathPart, ...]
    ) -> list[tuple[str, str]] | None:
        """(value, detail) for a Service's `targetPort` (the named container ports of the pods
        it selects) and an Ingress backend's `service.port.name`/`number` (the chosen
        Service's ports); None elsewhere."""
        if kind == "Service" and names == ("spec", "ports", "targetPort"):
            return self._target_ports()
        if kind == "Ingress" and names[-3:] in (
            ("service", "port", "name"),
            ("service", "port", "number"),
        ):
            return self._service_ports(path[:-2], by_name=names[-1] == "name")
        return None

    def _target_ports(self) -> list[tuple[str, str]]:
        root, namespace = self._namespace()
        selector = string_map(get(root, "spec", "selector")) if root is not None else None
        wanted = {(k, v) for k, (v, _) in (selector or {}).items()}
        out: dict[str, str] = {}
        for group, kind in POD_KINDS:
            for placed in self.known.objects(kind, group):
                s = placed.summary
                if not _same_namespace(s.namespace, namespace):
                    continue
                if not wanted <= set(s.pod_labels or ()):  # no selector: every pod's ports
                    continue
                for name, number in s.ports:
                    out.setdefault(name, f"containerPort {number} · {kind}/{s.name}")
        return list(out.items())

    def _service_ports(
        self, service_path: tuple[PathPart, ...], by_name: bool
    ) -> list[tuple[str, str]]:
        root, namespace = self._namespace()
        service = _node_at(root, service_path) if root is not None else None
        chosen = scalar_text(get(service, "name"))
        out: dict[str, str] = {}
        for placed in self.known.objects("Service"):
            s = placed.summary
            if (chosen and s.name != chosen) or not _same_namespace(s.namespace, namespace):
                continue
            for name, number in s.ports:
                value = name if by_name else str(number)
                if value:
                    shown = f"port {number}" + (f" ({name})" if name and not by_name else "")
                    out.setdefault(value, f"{shown} · Service/{s.name}")
        return list(out.items())

    def _choices(
        self, start: int, end: int, choices: list[tuple[str, str]], topic: Topic
    ) -> list[Suggestion]:
        pad = " " if start == end and self._needs_space() else ""
        return [
            Suggestion(
                value,
                "reference",
                self._edit(start, end, pad + value),
                detail,
                sort_text=f"{index:04d}",
                topic=topic,
            )
            for index, (value, detail) in enumerate(choices)
        ]

    def _kinds(self, start: int, end: int, api_version: str | None) -> list[Suggestion]:
        pairs = _kinds_served(self.k8s_version, self.known.crds())
        served = set(pairs)
        k8s = schemas_for(self.k8s_version)
        current = self._top_level("apiVersion")
        pad = " " if start == end and self._needs_space() else ""
        out = []
        for group_version, kind in pairs:
            extra: tuple[Edit, ...] = ()
            if current is None:
                extra = (self._edit(0, 0, f"apiVersion: {group_version}\n"),)
            elif (current[0], kind) not in served and current[0] != group_version:
                line, (a, b) = current[1], current[2]
                extra = (self._edit(a, b, " " + group_version, line=line),)
            preferred = group_version == api_version or (
                (api_version, kind) not in served
                and group_version == k8s.preferred_api_version(kind)
            )
            out.append(
                Suggestion(
                    kind,
                    "kind",
                    self._edit(start, end, pad + kind),
                    group_version,
                    sort_text=kind + ("\x00" if preferred else "\x01") + group_version,
                    additional_edits=extra,
                    topic=Topic(group_version, kind, ("kind",)),
                )
            )
        return out

    def _api_versions(self, start: int, end: int, kind: str | None) -> list[Suggestion]:
        pairs = _kinds_served(self.k8s_version, self.known.crds())
        serving = [a for a, k in pairs if k == kind] if kind else []
        choices = serving or sorted({a for a, _ in pairs})
        pad = " " if start == end and self._needs_space() else ""
        return [
            Suggestion(
                group_version,
                "apiVersion",
                self._edit(start, end, pad + group_version),
                f"serves {kind}" if serving else "",
                sort_text=f"{index:04d}",
                topic=Topic(group_version, kind, ("apiVersion",)) if serving and kind else None,
            )
            for index, group_version in enumerate(choices)
        ]

    def _top_level(self, key: str) -> tuple[str, int, tuple[int, int]] | None:
        """(value, line, value columns) of a top-level key of the cursor's document."""
        _, first, last = _document(self.parsed, self.found.document)
        pattern = re.compile(rf"^{key}:[ \t]*([^\s#]*)")
        for n in range(first, last):
            if n == self.where.line:
                continue
            match = pattern.match(self.lines.line_text(n))
            if match:
                return match.group(1).strip("'\""), n, (len(key) + 1, match.end(1))
        return None


def _same_namespace(one: str | None, other: str | None) -> bool:
    """Objects without a namespace go wherever they are applied."""
    return one is None or other is None or one == other


def _collection(type_name: str) -> bool:
    return type_name.startswith(("[]", "map[")) or type_name[:1].isupper() or type_name == "object"


def _escape(text: str) -> str:
    return re.sub(r"([$}\\])", r"\\\1", text)


def _placeholder(index: int, field: FieldDoc | None = None) -> str:
    if field is not None and field.enum:
        choices = ",".join(_escape(v).replace(",", "\\,").replace("|", "\\|") for v in field.enum)
        return f"${{{index}|{choices}|}}"
    if field is not None and field.type == "boolean":
        return f"${{{index}|true,false|}}"
    return f"${index}"


def _snippet(field: FieldDoc) -> str:
    """`name: $0`, or the object (or list item) with its required keys as placeholders."""
    name = _escape(field.name)
    if not _collection(field.type):
        return f"{name}: {_placeholder(1, field)}"
    children = field.required_children
    if field.type.startswith("[]"):
        if not children:
            return f"{name}:\n  - $0"
        body = [f"{_escape(c)}: ${n}" for n, (c, _) in enumerate(children, 1)]
        return f"{name}:\n  - " + "\n    ".join(body)
    if not children:
        return f"{name}:\n  $0"
    return f"{name}:\n" + "\n".join(f"  {_escape(c)}: ${n}" for n, (c, _) in enumerate(children, 1))
