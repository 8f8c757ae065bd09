"""Name references in the workspace and what they point to: go to definition, find references
and the hover on a reference.

- Kubernetes objects: the fields of `completion.REFERENCES` (a ConfigMap or Secret a workload
  reads or mounts, its ServiceAccount, a claim, an Ingress backend's Service), a binding's
  `roleRef` and ServiceAccount `subjects`, each resolved in the referring object's namespace
  (an unset namespace matches any, as the workspace checks count it); a Service's selector and
  the workloads whose pod labels it selects.
- ktl files: a stack's `needs` -> the release (same stack, same cluster), a plan's `deps` -> the
  node, `chart:` and `values:` paths of a stack -> the files.

The references of each document are found once per text (memoised on its parse, kept by the
workspace with its other facts), and `NavigationIndex` gathers them once per workspace change:
a request only looks up dictionaries. Everything here is plain data with positions; anything
it cannot answer is an empty answer, never an exception.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Literal, Protocol

from ktl_lsp.checks.completion import REFERENCES
from ktl_lsp.checks.hover import HoverText
from ktl_lsp.checks.k8s_workspace import POD_TEMPLATE_PATHS, PlacedSummary, summarize
from ktl_lsp.checks.schema_engine import node_range
from ktl_lsp.checks.stack_file import strings_in
from ktl_lsp.checks.stack_shapes import RELEASE_NAMES
from ktl_lsp.documents.file_kinds import FileKind
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import LineIndex, Position, PositionEncoding, Range
from ktl_lsp.documents.yaml_nodes import get, scalar_text
from ktl_lsp.documents.yaml_parse import ParsedText, YamlDocument
from ktl_lsp.documents.yaml_path import PathPart, path_at

RBAC = "rbac.authorization.k8s.io"
#: A document holding none of these words names no other object: it is not walked.
_KEYWORDS = tuple(sorted({names[0] for names in REFERENCES} | {"roleRef", "subjects"}))
#: Maps whose keys are the user's, not fields: never references.
_FREE_FORM = frozenset({"data", "stringData", "binaryData"})
_BINDINGS = frozenset({"RoleBinding", "ClusterRoleBinding"})
#: Keys of a ConfigMap's (Secret's) entries: counted in a hover, values never shown.
_ENTRY_MAPS = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}


@dataclass(frozen=True, slots=True)
class NameRef:
    """A field of a document that names another object; `range` is the name's, chunk-relative."""

    group: str
    kind: str
    name: str
    namespace: str | None
    """Where it resolves: the field's own `namespace` beside it, else the referring object's."""
    range: Range


@dataclass(frozen=True, slots=True)
class PlacedRef:
    """A reference with its file and the line its document starts at."""

    path: str
    line_offset: int
    ref: NameRef

    @property
    def range(self) -> Range:
        return self.ref.range.shifted(self.line_offset)


def document_refs(document: YamlDocument) -> tuple[NameRef, ...]:
    """The name references of one Kubernetes document (memoised on its parse)."""
    memo = document.chunk.memo
    found = memo.get("references")
    if found is None:
        found = memo["references"] = _refs_of(document.root, document.chunk.text)
    assert isinstance(found, tuple)
    return found


def _refs_of(root: Node | None, text: str) -> tuple[NameRef, ...]:
    if not isinstance(root, MappingNode) or not any(word in text for word in _KEYWORDS):
        return ()
    kind = scalar_text(get(root, "kind")) or ""
    if kind == "CustomResourceDefinition":
        return ()  # its schemas name fields, not objects
    namespace = scalar_text(get(root, "metadata", "namespace"))
    out: list[NameRef] = []
    items = get(root, "items") if kind.endswith("List") else None
    objects = items.value if isinstance(items, SequenceNode) else [root]
    for item in objects:
        if not isinstance(item, MappingNode):
            continue
        own = scalar_text(get(item, "metadata", "namespace")) if item is not root else namespace
        item_kind = scalar_text(get(item, "kind")) or ""
        for key, value in item.value:
            name = scalar_text(key)
            if name is None or name in _FREE_FORM or name in ("metadata", "status"):
                continue
            if item_kind in _BINDINGS and name in ("roleRef", "subjects"):
                _rbac(name, value, own, out)
            else:
                _walk(value, (name,), own, out)
    return tuple(out)


def _walk(node: Node, names: tuple[str, ...], namespace: str | None, out: list[NameRef]) -> None:
    if isinstance(node, SequenceNode):
        for item in node.value:
            _walk(item, names, namespace, out)
        return
    if not isinstance(node, MappingNode):
        return
    for key, value in node.value:
        name = scalar_text(key)
        if name is None or name == "metadata":
            continue
        if isinstance(value, ScalarNode):
            target = REFERENCES.get((names[-1], name)) or REFERENCES.get((name,))
            if target is not None:
                beside = scalar_text(get(node, "namespace"))
                _add(out, *target, value, beside or namespace)
        else:
            _walk(value, (*names, name), namespace, out)


def _rbac(field: str, node: Node, namespace: str | None, out: list[NameRef]) -> None:
    """A binding's `roleRef` (a Role or ClusterRole) and its ServiceAccount `subjects`."""
    if field == "roleRef":
        kind = scalar_text(get(node, "kind"))
        name = get(node, "name")
        if kind in ("Role", "ClusterRole") and isinstance(name, ScalarNode):
            _add(out, RBAC, kind, name, namespace)
        return
    for subject in node.value if isinstance(node, SequenceNode) else []:
        name = get(subject, "name")
        if scalar_text(get(subject, "kind")) == "ServiceAccount" and isinstance(name, ScalarNode):
            _add(
                out, "", "ServiceAccount", name, scalar_text(get(subject, "namespace")) or namespace
            )


def _add(
    out: list[NameRef], group: str, kind: str, node: ScalarNode, namespace: str | None
) -> None:
    name = scalar_text(node)
    if name and "{{" not in name:
        out.append(NameRef(group, kind, name, namespace, node_range(node)))


# -- the workspace's index ---------------------------------------------------------------------


def _closeness(wanted: str | None, have: str | None) -> int | None:
    """0: the same namespace (unset and `default` alike); 1: one side unset (`kubectl -n`
    decides); None: different namespaces."""
    if wanted == have or {wanted, have} <= {None, "default"}:
        return 0
    if wanted is None or have is None:
        return 1
    return None


def _same(a: PlacedSummary, b: PlacedSummary) -> bool:
    x, y = a.summary, b.summary
    return (a.path, x.group, x.kind, x.name, x.namespace) == (
        b.path,
        y.group,
        y.kind,
        y.name,
        y.namespace,
    )


class NavigationIndex:
    """The workspace's objects and references, gathered once per workspace change."""

    def __init__(self, objects: Iterable[PlacedSummary], refs: Iterable[PlacedRef]) -> None:
        self._objects: dict[tuple[str, str, str], list[PlacedSummary]] = defaultdict(list)
        self._refs: dict[tuple[str, str, str], list[PlacedRef]] = defaultdict(list)
        self.workloads: list[PlacedSummary] = []
        self.services: list[PlacedSummary] = []
        for placed in objects:
            s = placed.summary
            self._objects[(s.group, s.kind, s.name)].append(placed)
            if s.pod_labels is not None:
                self.workloads.append(placed)
            if s.selector is not None:
                self.services.append(placed)
        for placed_ref in refs:
            ref = placed_ref.ref
            self._refs[(ref.group, ref.kind, ref.name)].append(placed_ref)

    def resolve(self, ref: NameRef) -> list[PlacedSummary]:
        """The objects a reference names: those of the nearest namespace."""
        best: list[PlacedSummary] = []
        tier = 2
        for placed in self._objects.get((ref.group, ref.kind, ref.name), []):
            s = placed.summary
            close = 0 if s.cluster_scoped else _closeness(ref.namespace, s.namespace)
            if close is None or close > tier:
                continue
            if close < tier:
                best, tier = [], close
            best.append(placed)
        return best

    def referrers(self, target: PlacedSummary) -> list[PlacedRef]:
        """The references that resolve to `target`."""
        s = target.summary
        return [
            r
            for r in self._refs.get((s.group, s.kind, s.name), [])
            if any(_same(found, target) for found in self.resolve(r.ref))
        ]

    def selected_by(self, service: PlacedSummary) -> list[PlacedSummary]:
        """The workloads whose pod labels a Service's selector matches."""
        s = service.summary
        wanted = set(s.selector or ())
        return [
            w
            for w in self.workloads
            if wanted
            and wanted <= set(w.summary.pod_labels or ())
            and _closeness(s.namespace, w.summary.namespace) is not None
        ]

    def selecting(self, workload: PlacedSummary) -> list[PlacedSummary]:
        """The Services whose selector matches a workload's pod labels."""
        labels = set(workload.summary.pod_labels or ())
        return [
            svc
            for svc in self.services
            if set(svc.summary.selector or ()) <= labels
            and _closeness(svc.summary.namespace, workload.summary.namespace) is not None
        ]


class Source(Protocol):
    """What navigation reads from the workspace (`Workspace` is one)."""

    def navigation_index(self) -> NavigationIndex: ...

    def parsed_around(
        self, path: Path, text: str, line: int
    ) -> tuple[FileKind, ParsedText | None, int]: ...

    def parsed_of(self, path: Path) -> ParsedText | None: ...

    def text_of(self, path: Path) -> str | None: ...

    def stack_releases(self, path: Path) -> list[tuple[str, str, str]]: ...


# -- ktl files ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KtlItem:
    """A stack release or a plan node where it is named (file range, code points)."""

    kind: Literal["release", "node"]
    name: str
    path: str
    range: Range
    entry: MappingNode
    document: YamlDocument


def _first_document(parsed: ParsedText | None) -> YamlDocument | None:
    for document in parsed.documents if parsed is not None else []:
        if isinstance(document.root, MappingNode):
            return document
    return None


def ktl_items(kind: FileKind | None, parsed: ParsedText | None, path: str) -> list[KtlItem]:
    """The named releases of a stack or release file, the nodes of a plan, in file order
    (release entries as the stack analysis counts them: named mappings)."""
    document = _first_document(parsed)
    if document is None or kind not in (FileKind.KTL_STACK, FileKind.KTL_RELEASE, FileKind.PLAN):
        return []
    root = document.root
    assert isinstance(root, MappingNode)
    if kind == FileKind.KTL_RELEASE:
        entries: list[Node] = [root]
    else:
        listed = get(root, "nodes" if kind == FileKind.PLAN else "releases")
        entries = listed.value if isinstance(listed, SequenceNode) else []
    key, what = ("id", "node") if kind == FileKind.PLAN else ("name", "release")
    out: list[KtlItem] = []
    for entry in entries:
        node = get(entry, key)
        name = scalar_text(node)
        if isinstance(entry, MappingNode) and name and node is not None:
            item_kind: Literal["release", "node"] = "node" if what == "node" else "release"
            out.append(KtlItem(item_kind, name, path, document.range_of(node), entry, document))
    return out


class Files(Protocol):
    """The workspace's files by kind (`Workspace` is one)."""

    def files_of(self, *kinds: FileKind) -> list[Path]: ...

    def kind_of(self, path: Path) -> FileKind | None: ...

    def parsed_of(self, path: Path) -> ParsedText | None: ...


def workspace_items(source: Files) -> list[KtlItem]:
    """Every release of the workspace's stack and release files, every node of its plans."""
    out: list[KtlItem] = []
    for path in source.files_of(FileKind.KTL_STACK, FileKind.KTL_RELEASE, FileKind.PLAN):
        out.extend(ktl_items(source.kind_of(path), source.parsed_of(path), str(path)))
    return out


@dataclass(frozen=True, slots=True)
class _Release:
    """A release of the stack with the id the stack analysis gave it."""

    item: KtlItem
    cluster: str
    namespace: str


def _stack(source: Source, path: Path) -> list[_Release]:
    """Every release of the stack `path` belongs to, with its id's cluster and namespace."""
    by_file: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for release in source.stack_releases(path):
        by_file[release[2]].append(release)
    out: list[_Release] = []
    for file, listed in by_file.items():
        name = PurePath(file).name
        kind = FileKind.KTL_RELEASE if name in RELEASE_NAMES else FileKind.KTL_STACK
        items = ktl_items(kind, source.parsed_of(Path(file)), file)
        for (release_id, release_name, _), item in zip(listed, items, strict=False):
            if item.name != release_name:
                break  # the file changed since the analysis: its ids no longer line up
            cluster, namespace = [*release_id.split("/"), "", ""][:2]
            out.append(_Release(item, cluster, namespace))
    return out


def _cluster_of(releases: list[_Release], item: KtlItem | None) -> str | None:
    """The cluster of the release an entry is (None when the analysis does not know it)."""
    for release in releases:
        if item is not None and (release.item.path, release.item.range) == (item.path, item.range):
            return release.cluster
    return None


# -- what the cursor is on ---------------------------------------------------------------------

SubjectKind = Literal["ref", "selector", "object", "need", "release", "dep", "node", "file"]


@dataclass(frozen=True, slots=True)
class _Subject:
    kind: SubjectKind
    range: Range
    """In the file, code points of the current text."""
    name: str = ""
    ref: NameRef | None = None
    placed: PlacedSummary | None = None
    entry: KtlItem | None = None
    """The release or node the cursor is in."""
    target: Path | None = None


@dataclass(frozen=True, slots=True)
class Location:
    path: str
    range: Range
    """In the client's encoding."""


class _At:
    """One request: the file at the cursor (its current text) and the workspace."""

    def __init__(
        self,
        source: Source,
        path: Path,
        kind: FileKind,
        parsed: ParsedText,
        first: int,
        encoding: PositionEncoding,
    ) -> None:
        self.source, self.path, self.kind, self.parsed = source, path, kind, parsed
        self.first, self.encoding = first, encoding
        self._lines: dict[str, LineIndex] = {}

    def here(self, rng: Range) -> Location:
        """A range of the current text (file lines) for the client."""
        local = self.parsed.lines.range_to_client(rng.shifted(-self.first), self.encoding)
        return Location(str(self.path), local.shifted(self.first))

    def there(self, path: str, rng: Range) -> Location:
        """A range of a file as the workspace holds it, for the client."""
        lines = self._lines.get(path)
        if lines is None:
            text = self.source.text_of(Path(path))
            lines = self._lines[path] = LineIndex(text or "")
        return Location(path, lines.range_to_client(rng, self.encoding))

    def subject(self, position: Position) -> _Subject | None:
        lines = self.parsed.lines
        local = Position(position.line - self.first, position.character)
        if local.line < 0 or local.character < 0 or local.line >= lines.line_count():
            return None
        where = lines.from_client(local, self.encoding)
        if lines.to_client(where, self.encoding) != local:
            return None  # past the end of its line
        found = path_at(self.parsed, where.line, where.character)
        documents = self.parsed.documents
        if found is None or not found.path or not 0 <= found.document < len(documents):
            return None
        document = documents[found.document]
        if document.root is None:
            return None
        if self.kind == FileKind.K8S_MANIFEST:
            return self._manifest(document, found.path, where)
        return self._ktl(document, found.path, found.on)

    def _manifest(
        self, document: YamlDocument, path: tuple[PathPart, ...], where: Position
    ) -> _Subject | None:
        at = Position(where.line - document.start_line, where.character)
        shift = document.start_line + self.first
        for ref in document_refs(document):
            if ref.range.contains(at):
                return _Subject("ref", ref.range.shifted(shift), ref.name, ref=ref)
        summary = summarize(document.root)
        if summary is None:
            return None
        placed = PlacedSummary(str(self.path), shift, summary)
        labels = POD_TEMPLATE_PATHS.get(summary.kind)
        if summary.selector is not None and path[:2] == ("spec", "selector"):
            return _Subject("selector", placed.name_range, summary.name, placed=placed)
        if path[0] in ("apiVersion", "kind", "metadata") or (
            labels is not None and summary.pod_labels and path[: len(labels)] == labels
        ):
            return _Subject("object", placed.name_range, summary.name, placed=placed)
        return None

    def _ktl(self, document: YamlDocument, path: tuple[PathPart, ...], on: str) -> _Subject | None:
        root = document.root
        names: tuple[str, ...]
        if self.kind == FileKind.PLAN:
            entry_path, own_key, list_key, names = path[:2], "id", "deps", ("nodes",)
        elif self.kind == FileKind.KTL_STACK:
            entry_path, own_key, list_key, names = path[:2], "name", "needs", ("releases",)
        elif self.kind == FileKind.KTL_RELEASE:
            entry_path, own_key, list_key, names = (), "name", "needs", ()
        else:
            return None
        if self.kind == FileKind.KTL_STACK and path[:2] == ("defaults", "values"):
            return self._file(document, _node_at(root, path), on)
        if entry_path[:1] != names or (entry_path and not isinstance(entry_path[-1], int)):
            return None
        entry = _node_at(root, entry_path)
        rest = path[len(entry_path) :]
        items = ktl_items(self.kind, self.parsed, str(self.path))
        item = next((i for i in items if i.entry is entry), None)
        if item is None or not rest:
            return None
        node = _node_at(root, path)
        if rest == (own_key,):
            kind: SubjectKind = "node" if self.kind == FileKind.PLAN else "release"
            return _Subject(kind, self._range(document, node), item.name, entry=item)
        if len(rest) == 2 and rest[0] == list_key and isinstance(rest[1], int) and on == "value":
            name = scalar_text(node)
            if name and node is not None:
                kind = "dep" if self.kind == FileKind.PLAN else "need"
                return _Subject(kind, self._range(document, node), name, entry=item)
        if self.kind != FileKind.PLAN and (rest == ("chart",) or rest[:1] == ("values",)):
            if rest[:1] == ("values",) and len(rest) != 2:
                return None
            return self._file(document, node, on)
        return None

    def _range(self, document: YamlDocument, node: Node | None) -> Range:
        rng = document.range_of(node) if node is not None else document.range
        return rng.shifted(self.first)

    def _file(self, document: YamlDocument, node: Node | None, on: str) -> _Subject | None:
        """A `chart:` or `values:` path of a stack, to the file (a chart's Chart.yaml)."""
        text = scalar_text(node)
        if on != "value" or not text or "://" in text or "{{" in text or node is None:
            return None
        try:
            target = (self.path.parent / os.path.expanduser(text)).resolve()
            if target.is_dir():
                target = target / "Chart.yaml"
            if not target.is_file():
                return None
        except OSError:
            return None
        return _Subject("file", self._range(document, node), text, target=target)

    # -- answers -------------------------------------------------------------------------------
    def definition(self, subject: _Subject) -> list[Location]:
        if subject.kind == "ref" and subject.ref is not None:
            found = self.source.navigation_index().resolve(subject.ref)
            return [self.there(p.path, p.name_range) for p in found]
        if subject.kind == "selector" and subject.placed is not None:
            selected = self.source.navigation_index().selected_by(subject.placed)
            return [self.there(p.path, p.name_range) for p in selected]
        if subject.kind == "need":
            return [self._place(r.item) for r in self._releases(subject)]
        if subject.kind == "dep":
            return [self._place(i) for i in self._nodes(subject.name)]
        if subject.kind == "file" and subject.target is not None:
            return [Location(str(subject.target), Range.of(0, 0, 0, 0))]
        return []

    def references(self, subject: _Subject, declaration: bool) -> list[Location]:
        out: list[Location] = []
        if subject.kind in ("ref", "object"):
            index = self.source.navigation_index()
            if subject.placed is not None:
                targets = [subject.placed]
            else:
                assert subject.ref is not None
                targets = index.resolve(subject.ref)
            for target in targets:
                if declaration:
                    out.append(
                        self.here(target.name_range)
                        if target is subject.placed
                        else self.there(target.path, target.name_range)
                    )
                out.extend(self.there(r.path, r.range) for r in index.referrers(target))
                for service in index.selecting(target) if target.summary.pod_labels else []:
                    selector = service.summary.selector_range
                    if selector is not None:
                        out.append(self.there(service.path, selector.shifted(service.line_offset)))
        elif subject.kind in ("need", "release"):
            releases = _stack(self.source, self.path)
            if subject.kind == "need":
                named = [r.item for r in self._releases(subject, releases)]
            else:
                named = [subject.entry] if subject.entry is not None else []
            for item in named:
                if declaration:
                    out.append(self._place(item))
                cluster = _cluster_of(releases, item)
                for other in releases:
                    if cluster is None or other.cluster == cluster:
                        out.extend(self._naming(other.item, "needs", item.name))
        elif subject.kind in ("dep", "node"):
            for item in self._nodes(subject.name):
                if declaration:
                    out.append(self._place(item))
                for node in self._nodes():
                    out.extend(self._naming(node, "deps", item.name))
        return list(dict.fromkeys(out))

    def _place(self, item: KtlItem) -> Location:
        """Where a release or node is named: the current text's range when it is in this file."""
        if any(d is item.document for d in self.parsed.documents):
            return self.here(item.range.shifted(self.first))
        return self.there(item.path, item.range)

    def _naming(self, item: KtlItem, key: str, name: str) -> Iterator[Location]:
        """The entries of an item's `needs` (`deps`) list that name `name`."""
        for entry in strings_in(get(item.entry, key)):
            if entry.value == name:
                rng = item.document.range_of(entry)
                yield self._place(replace(item, range=rng))

    def _nodes(self, name: str | None = None) -> list[KtlItem]:
        items = ktl_items(self.kind, self.parsed, str(self.path))
        return [i for i in items if name is None or i.name == name]

    def _releases(
        self, subject: _Subject, releases: list[_Release] | None = None
    ) -> list[_Release]:
        """The releases a `needs` entry names: same stack, same cluster."""
        if releases is None:
            releases = _stack(self.source, self.path)
        cluster = _cluster_of(releases, subject.entry)
        return [
            r
            for r in releases
            if r.item.name == subject.name and (cluster is None or r.cluster == cluster)
        ]

    # -- hover ---------------------------------------------------------------------------------
    def hover(self, subject: _Subject, roots: list[Path]) -> HoverText | None:
        if subject.kind == "ref" and subject.ref is not None:
            markdown = self._describe_ref(subject.ref, roots)
        elif subject.kind == "need":
            markdown = self._describe_releases(subject, roots)
        elif subject.kind == "dep":
            markdown = self._describe_nodes(subject, roots)
        else:
            return None
        return HoverText(markdown, self.here(subject.range).range)

    def _where(self, path: str, line: int, roots: list[Path]) -> str:
        return f"{relative(path, roots, self.path.parent)}:{line + 1}"

    def _describe_ref(self, ref: NameRef, roots: list[Path]) -> str:
        found = self.source.navigation_index().resolve(ref)
        if not found:
            where = f" in namespace `{ref.namespace}`" if ref.namespace else ""
            return f"**{ref.kind}** `{ref.name}`{where}: not found in the workspace"
        blocks = []
        for placed in found:
            s = placed.summary
            head = f"**{s.kind}** `{s.name}`"
            if s.group:
                head += f" · `{s.group}`"
            if s.namespace:
                head += f" · namespace `{s.namespace}`"
            facts = [
                f"Defined in `{self._where(placed.path, placed.name_range.start.line, roots)}`"
            ]
            keys = self._keys(placed) if s.kind in _ENTRY_MAPS and not s.group else None
            if keys is not None:
                facts.append(f"{keys} key" + ("" if keys == 1 else "s"))
            blocks.append(head + "\n\n" + " · ".join(facts))
        return "\n\n---\n\n".join(blocks)

    def _keys(self, placed: PlacedSummary) -> int | None:
        """How many entries a ConfigMap (Secret) holds; its values are never read out."""
        parsed = self.source.parsed_of(Path(placed.path))
        for document in parsed.documents if parsed is not None else []:
            if document.start_line == placed.line_offset:
                names: set[str] = set()
                for key in _ENTRY_MAPS[placed.summary.kind]:
                    entries = get(document.root, key)
                    if isinstance(entries, MappingNode):
                        names.update(scalar_text(k) or "" for k, _ in entries.value)
                return len(names)
        return None

    def _describe_releases(self, subject: _Subject, roots: list[Path]) -> str:
        found = self._releases(subject)
        if not found:
            return f"**release** `{subject.name}`: not found in the stack"
        blocks = []
        for release in found:
            entry = release.item.entry
            head = f"**release** `{release.item.name}`"
            if release.namespace:
                head += f" · namespace `{release.namespace}`"
            if release.cluster:
                head += f" · cluster `{release.cluster}`"
            chart = scalar_text(get(entry, "chart"))
            facts = [f"chart: `{chart}`" if chart else "no chart"]
            facts.append(_listed("needs", get(entry, "needs")))
            facts.append(
                f"*{self._where(release.item.path, release.item.range.start.line, roots)}*"
            )
            blocks.append(head + "\n\n" + "  \n".join(facts))
        return "\n\n---\n\n".join(blocks)

    def _describe_nodes(self, subject: _Subject, roots: list[Path]) -> str:
        found = self._nodes(subject.name)
        if not found:
            return f"**node** `{subject.name}`: not found in the plan"
        blocks = []
        for item in found:
            head = f"**node** `{item.name}`"
            tool = scalar_text(get(item.entry, "tool"))
            if tool:
                head += f" · tool `{tool}`"
            facts = [f"run: `{_command(get(item.entry, 'run'))}`"]
            facts.append(_listed("deps", get(item.entry, "deps")))
            line = item.range.start.line + self.first
            facts.append(f"*{self._where(item.path, line, roots)}*")
            blocks.append(head + "\n\n" + "  \n".join(facts))
        return "\n\n---\n\n".join(blocks)


def _listed(label: str, node: Node | None) -> str:
    names = [f"`{n.value}`" for n in strings_in(node)]
    return f"{label}: " + ", ".join(names) if names else f"no {label}"


def _command(node: Node | None) -> str:
    if isinstance(node, SequenceNode):
        return " ".join(scalar_text(n) or "" for n in node.value)
    return scalar_text(node) or ""


def _node_at(root: Node | None, path: tuple[PathPart, ...]) -> Node | None:
    node = root
    for part in path:
        if isinstance(part, int):
            items = node.value if isinstance(node, SequenceNode) else []
            node = items[part] if 0 <= part < len(items) else None
        else:
            node = get(node, part)
        if node is None:
            return None
    return node


def relative(path: str, roots: Iterable[Path], near: Path | None = None) -> str:
    """A path as the person knows it: relative to the workspace folder holding it, else to
    `near` (the file asking)."""
    for root in roots:
        try:
            return PurePath(path).relative_to(root).as_posix()
        except ValueError:
            continue
    if near is not None:
        return PurePath(os.path.relpath(path, near)).as_posix()
    return path


def _at(
    source: Source, path: Path, text: str, position: Position, encoding: PositionEncoding
) -> tuple[_At, _Subject] | None:
    kind, parsed, first = source.parsed_around(path, text, position.line)
    if parsed is None or parsed.problems:
        return None
    at = _At(source, path.resolve(), kind, parsed, first, encoding)
    subject = at.subject(position)
    return (at, subject) if subject is not None else None


def definition_at(
    source: Source, path: Path, text: str, position: Position, encoding: PositionEncoding
) -> list[Location]:
    """Where what the cursor names is defined (client-encoded position and ranges)."""
    found = _at(source, path, text, position, encoding)
    return found[0].definition(found[1]) if found is not None else []


def references_at(
    source: Source,
    path: Path,
    text: str,
    position: Position,
    encoding: PositionEncoding,
    include_declaration: bool,
) -> list[Location]:
    """Every place that names what the cursor is on (an object, a release, a node)."""
    found = _at(source, path, text, position, encoding)
    return found[0].references(found[1], include_declaration) if found is not None else []


def reference_hover(
    source: Source,
    path: Path,
    text: str,
    position: Position,
    encoding: PositionEncoding,
    roots: list[Path],
) -> HoverText | None:
    """On a name reference, the object it names; on a `needs` (`deps`) entry, the release
    (node)."""
    found = _at(source, path, text, position, encoding)
    return found[0].hover(found[1], [r.resolve() for r in roots]) if found is not None else None
