"""Check what a chart renders with the Kubernetes checkers, and report it at the template lines.

Each rendered document goes through `check_manifest` (schemas at the target version, CRDs)
and the documents of one render through the cross-document checks (selectors, duplicates).
A finding is placed (`mapping.place`) at the template line that wrote the offending key,
else at the `include`/`toYaml`/`tpl` action that emitted it (naming the helper or the values
path, with the helper's or the values file's line as related information), else at the
template's first line with the rendered line in the message. Findings say which render
produced them, and the same finding from several renders is reported once.

Work is cached per (template text, rendered text, helpers and values, version, CRDs): after an
edit of one template only that template's documents are parsed, checked and placed again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ktl_lsp.checks.crds import CrdRegistry, CrdVersion, crd_versions, is_crd
from ktl_lsp.checks.findings import Finding, Related, sort_findings
from ktl_lsp.checks.k8s_manifest import check_manifest, type_info
from ktl_lsp.checks.k8s_schemas import KubernetesSchemas, schemas_for, split_api_version
from ktl_lsp.checks.k8s_workspace import PlacedSummary, summarize, workspace_findings
from ktl_lsp.documents.edits import Edit, Fix
from ktl_lsp.documents.file_reading import read_text_file
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_parse import (
    DocumentCache,
    ParsedText,
    YamlDocument,
    gc_paused,
    parse_text,
)
from ktl_lsp.helm.mapping import (
    Emitter,
    KeyPath,
    Placed,
    Template,
    documents_for,
    locate,
    place,
    place_line,
    read_template,
    shape_of,
)
from ktl_lsp.helm.model import Rendered

SCHEMA_CODE = "helm-template-schema"
"""Schema findings (`k8s-schema`, `k8s-unknown-kind`) placed in a template take this rule id;
the other rules keep theirs (a selector, a duplicate, a YAML problem mean the same there)."""
_SCHEMA_CODES = frozenset({"k8s-schema", "k8s-unknown-kind"})
SCOPE = "in the chart's render"
"""How the cross-document findings name where they looked."""
MAX_EXCERPT = 80
ReadText = Callable[[Path], str | None]


_Values = tuple[Path, str, ParsedText]
"""A values file: its path, its name as messages show it, its parse."""


@dataclass(frozen=True, slots=True)
class _Context:
    """What placement reads besides the template: the helpers and the render's values."""

    defines: dict[str, tuple[Path, int, Template]]
    values: tuple[_Values, ...]
    """The render's files, last applied first (the file whose value wins)."""
    subcharts: dict[str, _Values]
    """The values.yaml of each vendored subchart, by its directory ("charts/a")."""
    digest: str

    def sources(self, key: str) -> list[tuple[_Values, KeyPath]]:
        """The values a template reads, each with the path its `.Values` has there: a
        subchart's template (`charts/a/templates/x.yaml`) reads the parent's `a:` section
        first, then its own values.yaml."""
        parts = key.split("/")
        chain: list[str] = []
        while len(parts) > 2 and parts[0] == "charts":
            chain.append(parts[1])
            parts = parts[2:]
        out: list[tuple[_Values, KeyPath]] = [(v, tuple(chain)) for v in self.values]
        for depth in range(1, len(chain) + 1):
            own = self.subcharts.get("charts/" + "/charts/".join(chain[:depth]))
            if own is not None:
                out.append((own, tuple(chain[depth:])))
        return out


@dataclass
class _Checked:
    """One template's rendered text, checked and placed (findings without their render)."""

    path: Path
    key: str
    template: Template
    parsed: ParsedText
    findings: list[Finding]
    summaries: list[tuple[int, PlacedSummary]]
    """(document index, summary keyed by `_doc_id`) for the cross-document checks."""
    context: _Context

    def place(self, document: int, rng: Range, finding: Finding) -> Finding:
        return _place(self, self.parsed.documents[document], rng, finding)


class RenderedChecker:
    """Caches of parses, templates and placed findings shared by calls (thread-safe)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._lock = threading.Lock()
        self._parses = DocumentCache(64 * 1024 * 1024)
        self._templates: OrderedDict[str, Template] = OrderedDict()
        self._checked: OrderedDict[tuple[object, ...], _Checked] = OrderedDict()
        self._registries: OrderedDict[tuple[object, ...], tuple[int, CrdRegistry]] = OrderedDict()
        self._serial = 0
        self._files: OrderedDict[Path, tuple[tuple[int, int], str | None]] = OrderedDict()
        self._max = max_entries
        self.misses = 0
        """Templates checked and placed afresh (their text, render or context changed)."""

    def _read_disk(self, path: Path) -> str | None:
        """A file's text, read again only when its size or modification time changed (a check
        runs after every edit and reads every template of the chart)."""
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            known = self._files.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        text = read_text_file(path).text
        with self._lock:
            self._files[path] = (stamp, text)
            while len(self._files) > self._max:
                self._files.popitem(last=False)
        return text

    def template(self, text: str) -> Template:
        with self._lock:
            found = self._templates.get(text)
            if found is not None:
                self._templates.move_to_end(text)
                return found
        found = read_template(text)
        with self._lock:
            self._templates[text] = found
            while len(self._templates) > self._max:
                self._templates.popitem(last=False)
        return found

    def check(
        self,
        chart_dir: Path,
        renders: Sequence[Rendered],
        k8s_version: str,
        crds: Sequence[CrdVersion] = (),
        read: ReadText | None = None,
    ) -> dict[Path, list[Finding]]:
        read = read or self._read_disk
        chart_dir = chart_dir.resolve()
        k8s = schemas_for(k8s_version)
        defines = self._defines(chart_dir, renders, read)
        labelled: dict[Path, dict[tuple[object, ...], tuple[Finding, _Group]]] = {}
        with gc_paused():
            for render in renders:
                context = self._context(chart_dir, render, defines, read)
                texts = _by_template(render.manifests)
                parsed = {key: parse_text(text, self._parses) for key, text in texts.items()}
                render_crds = [v for p in parsed.values() for v in _crds_of(p)]
                serial, registry = self._registry([*crds, *render_crds])
                checked: dict[str, _Checked] = {}
                for key, text in texts.items():
                    path = chart_dir / key
                    template_text = read(path)
                    if template_text is None:
                        continue
                    cache_key = (key, template_text, text, k8s.version, serial, context.digest)
                    with self._lock:
                        hit = self._checked.get(cache_key)
                        if hit is not None:
                            self._checked.move_to_end(cache_key)
                    if hit is None:
                        self.misses += 1
                        hit = self._check_one(
                            path, key, template_text, parsed[key], context, k8s, registry
                        )
                        with self._lock:
                            self._checked[cache_key] = hit
                            while len(self._checked) > self._max:
                                self._checked.popitem(last=False)
                    checked[key] = hit
                findings = [(c.path, f) for c in checked.values() for f in c.findings]
                findings.extend(_across(checked, render_crds, crds))
                for path, finding in findings:
                    _add(labelled.setdefault(path, {}), finding, render.request.label)
        return {
            path: sort_findings([_labelled(f, m, len(renders)) for f, m in found.values()])
            for path, found in labelled.items()
        }

    def _check_one(
        self,
        path: Path,
        key: str,
        template_text: str,
        parsed: ParsedText,
        context: _Context,
        k8s: KubernetesSchemas,
        crds: CrdRegistry,
    ) -> _Checked:
        template = self.template(template_text)
        checked = _Checked(path, key, template, parsed, [], [], context)
        for document in parsed.documents:
            raw = [
                Finding(
                    p.range, p.severity, p.code, p.message, tuple(Related(*r) for r in p.related)
                )
                for p in document.chunk.problems
            ]
            root = document.root
            if root is not None:
                raw.extend(check_manifest(root, k8s, crds))
                summary = summarize(root)
                if summary is not None:
                    ident = _doc_id(key, document.index)
                    checked.summaries.append((document.index, PlacedSummary(ident, 0, summary)))
            for finding in raw:
                checked.findings.append(_place(checked, document, finding.range, finding))
        return checked

    def _registry(self, versions: list[CrdVersion]) -> tuple[int, CrdRegistry]:
        """A registry per set of CRDs (renders of one chart may differ in the CRDs they hold),
        with a serial number that is never reused (cache keys name it)."""
        key = tuple((v.api_version, v.kind, v.served, v.namespaced, id(v.schema)) for v in versions)
        with self._lock:
            found = self._registries.get(key)
            if found is not None:
                self._registries.move_to_end(key)
                return found
            registry = CrdRegistry()
            registry.set_versions(versions)
            self._serial += 1
            found = self._registries[key] = (self._serial, registry)
            while len(self._registries) > 8:
                self._registries.popitem(last=False)
            return found

    def _defines(
        self, chart_dir: Path, renders: Sequence[Rendered], read: ReadText
    ) -> dict[str, tuple[Path, int, Template]]:
        """Named templates of the chart and its vendored subcharts (Helm shares one namespace)."""
        files = sorted(
            {
                *chart_dir.glob("templates/**/*.tpl"),
                *chart_dir.glob("charts/*/templates/**/*.tpl"),
                *(chart_dir / k for r in renders for k in r.manifests if k.endswith(".tpl")),
            }
        )
        out: dict[str, tuple[Path, int, Template]] = {}
        for path in files:
            text = read(path)
            if text is None:
                continue
            template = self.template(text)
            for name, (line, _) in template.defines.items():
                out.setdefault(name, (path, line, template))
        return out

    def _context(
        self,
        chart_dir: Path,
        render: Rendered,
        defines: dict[str, tuple[Path, int, Template]],
        read: ReadText,
    ) -> _Context:
        files = [chart_dir / "values.yaml", *(chart_dir / p for p in render.request.values_files)]
        subcharts = sorted(
            {
                *chart_dir.glob("charts/*/values.yaml"),
                *chart_dir.glob("charts/*/charts/*/values.yaml"),
            }
        )
        values: list[_Values] = []
        own: dict[str, _Values] = {}
        digest = hashlib.blake2b(digest_size=16)
        helpers = {str(path): t for path, _, t in defines.values()}
        for name in sorted(helpers):
            digest.update(f"{name}\0".encode())
            digest.update("\n".join(helpers[name].lines).encode("utf-8", "surrogatepass"))
        for path in [*files, *subcharts]:
            text = read(path)
            if text is None:
                continue
            digest.update(f"{path}\0".encode())
            digest.update(text.encode("utf-8", "surrogatepass"))
            name = (
                path.relative_to(chart_dir).as_posix()
                if path.is_relative_to(chart_dir)
                else str(path)
            )
            entry = (path, name, parse_text(text, self._parses))
            if path in subcharts:
                own[path.parent.relative_to(chart_dir).as_posix()] = entry
            else:
                values.append(entry)
        for key, value in render.request.set_values:
            digest.update(f"{key}={value}\0".encode())
        values.reverse()
        return _Context(defines, tuple(values), own, digest.hexdigest())


def _type(root: Node) -> tuple[str | None, str | None]:
    info = type_info(root)
    return info.api_version, info.kind


def _crds_of(parsed: ParsedText) -> list[CrdVersion]:
    """The CRDs a rendered text defines, read once per document text (the same objects each
    time: the registry's key names them)."""
    out: list[CrdVersion] = []
    for document in parsed.documents:
        memo = document.chunk.memo
        found = memo.get("helm-crds")
        if found is None:
            root = document.root
            found = memo["helm-crds"] = (
                crd_versions(root) if root is not None and is_crd(*_type(root)) else []
            )
        out.extend(found)
    return out


def _doc_id(key: str, index: int) -> str:
    return f"{key}\0{index}"


def _by_template(manifests: dict[str, str]) -> dict[str, str]:
    """Rendered texts by template, skipping NOTES.txt and partials; a text holding several
    templates' documents (`helm template` output) is split by its `# Source:` comments."""
    out: dict[str, list[str]] = {}
    for key, text in manifests.items():
        name = key.rsplit("/", 1)[-1]
        if name == "NOTES.txt" or name.startswith("_") or not text.strip():
            continue
        current = key
        for piece in _documents(text):
            source = _source_of(piece)
            if source is not None:
                current = source
            out.setdefault(current, []).append(piece)
    return {key: "".join(pieces) for key, pieces in out.items()}


def _documents(text: str) -> list[str]:
    if "# Source: " not in text:
        return [text]
    pieces: list[str] = []
    start = 0
    for line_start in _line_offsets(text):
        if text.startswith("---", line_start) and line_start > start:
            pieces.append(text[start:line_start])
            start = line_start
    pieces.append(text[start:])
    return pieces


def _line_offsets(text: str) -> Iterable[int]:
    yield 0
    i = text.find("\n")
    while i >= 0:
        yield i + 1
        i = text.find("\n", i + 1)


def _source_of(piece: str) -> str | None:
    for line in piece.splitlines()[:3]:
        if line.startswith("# Source: "):
            source = line[len("# Source: ") :].strip()
            return source.split("/", 1)[1] if "/" in source else source
    return None


# -- placement ------------------------------------------------------------------------------------


def _place(checked: _Checked, document: YamlDocument, rng: Range, finding: Finding) -> Finding:
    """`finding` (at `rng`, relative to its rendered document) moved into the template."""
    template = checked.template
    code = SCHEMA_CODE if finding.code in _SCHEMA_CODES else finding.code
    chunk_lines = document.chunk.text.split("\n")
    root = document.root
    placed: Placed | None = None
    if root is None:  # rendered text that does not parse: the one literal line that wrote it
        at = rng.start.line
        placed = place_line(template.main, chunk_lines[at] if at < len(chunk_lines) else "")
    else:
        located = locate(root, rng)
        documents = documents_for(template.main, document.index, _type(root)[1])

        def confirm(emitter: Emitter, rest: KeyPath) -> bool:
            return _confirms(checked, emitter, rest)

        placed = place(template.main, located, chunk_lines, documents, confirm)
        if placed is not None and placed.key_line is not None and finding.related:
            # A duplicate key whose first occurrence matches the same literal line: one of
            # the two came from an action.
            first = locate(root, finding.related[0].range)
            again = place(template.main, first, chunk_lines, documents, confirm)
            if again is not None and again.line == placed.line:
                placed = place(template.main, located, chunk_lines, documents, confirm, False)
    related = _related(checked, document, finding.related)
    if placed is None:
        line = template.first_line
        text = template.lines[line] if line < len(template.lines) else ""
        start = len(text) - len(text.lstrip())
        excerpt = chunk_lines[rng.start.line].strip() if rng.start.line < len(chunk_lines) else ""
        if len(excerpt) > MAX_EXCERPT:
            excerpt = excerpt[: MAX_EXCERPT - 3] + "..."
        message = f"{finding.message} (rendered: {excerpt})" if excerpt else finding.message
        return Finding(
            Range.of(line, start, line, len(text)),
            finding.severity,
            code,
            message,
            related,
            finding.source,
        )
    target = Range.of(placed.line, placed.span[0], placed.line, placed.span[1])
    message = finding.message
    if placed.emitter is not None:
        message, extra = _emitted(checked, placed.emitter, placed.remainder, message)
        related = (*related, *extra)
    fixes = _fixes(finding, rng, chunk_lines, template.lines, target) if placed.key_line else ()
    return Finding(target, finding.severity, code, message, related, finding.source, fixes)


def _emitted(
    checked: _Checked, emitter: Emitter, remainder: KeyPath, message: str
) -> tuple[str, tuple[Related, ...]]:
    """The message naming the action that wrote the node, and where its source sits."""
    what = emitter.describe()
    if emitter.kind in ("include", "template"):
        define = checked.context.defines.get(emitter.subject)
        related: tuple[Related, ...] = ()
        if define is not None:
            path, line, helper = define
            related = (
                Related(
                    Range.of(line, 0, line, len(helper.lines[line])),
                    f'define "{emitter.subject}"',
                    str(path),
                ),
            )
            _, body = helper.defines[emitter.subject]
            for entry in body.keys.get(shape_of(remainder), ()):
                span = entry.key_span or entry.value_span or (0, 0)
                related = (
                    Related(
                        Range.of(entry.line, span[0], entry.line, span[1]),
                        f'written here by define "{emitter.subject}"',
                        str(path),
                    ),
                )
                break
        return f"{message} (written by {what})", related
    if emitter.values_path is not None:
        found = _in_values(checked, emitter.values_path, remainder)
        if found is None:
            shown = _shown((*emitter.values_path, *remainder))
            return f"{message} (written by {what}: {shown})", ()
        path, name, node, full = found
        shown = _shown(full)
        rng = Range.of(
            node.start_mark.line, node.start_mark.column, node.end_mark.line, node.end_mark.column
        )
        return (
            f"{message} (written by {what}: {shown} in {name})",
            (Related(rng, f"{shown} is set here", str(path)),),
        )
    return f"{message} (written by {what})", ()


def _confirms(checked: _Checked, emitter: Emitter, remainder: KeyPath) -> bool:
    """Whether the emitter's source holds the node's path (to choose between emitters)."""
    if emitter.kind in ("include", "template"):
        define = checked.context.defines.get(emitter.subject)
        if define is None:
            return False
        _, body = define[2].defines[emitter.subject]
        return shape_of(remainder) in body.keys
    if emitter.values_path is not None:
        return _in_values(checked, emitter.values_path, remainder) is not None
    return False


def _shown(path: KeyPath) -> str:
    return ".Values" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _in_values(
    checked: _Checked, values_path: KeyPath, remainder: KeyPath
) -> tuple[Path, str, Node, KeyPath] | None:
    """(file, its name, key node, path as the template sees it) of `values_path` + `remainder`
    in the values file that sets it. Items a template writes after its own literal ones render
    at other indexes than in the values: the one item holding the rest of the path is taken."""
    for (path, name, parsed), prefix in checked.context.sources(checked.key):
        base = (*prefix, *values_path)
        found = _values_node(parsed, (*base, *remainder))
        if found is not None:
            return path, name, found[0], (*values_path, *remainder)
        if not remainder or not isinstance(remainder[0], int):
            continue
        items = _values_node(parsed, base)
        if items is None or not isinstance(items[1], SequenceNode):
            continue
        rest = remainder[1:]
        hits = [
            (index, hit)
            for index in range(len(items[1].value))
            if (hit := _values_node(parsed, (*base, index, *rest))) is not None
        ]
        if len(hits) == 1:
            index, hit = hits[0]
            return path, name, hit[0], (*values_path, index, *rest)
    return None


def _values_node(parsed: ParsedText, path: KeyPath) -> tuple[Node, Node] | None:
    """(key or item node, value node) at `path` in a values file."""
    if not parsed.documents or parsed.documents[0].root is None:
        return None
    node: Node = parsed.documents[0].root
    found: Node = node
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, SequenceNode) or part >= len(node.value):
                return None
            node = found = node.value[part]
            continue
        if not isinstance(node, MappingNode):
            return None
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == part:
                found, node = key, value
                break
        else:
            return None
    return found, node


def _related(
    checked: _Checked, document: YamlDocument, related: tuple[Related, ...]
) -> tuple[Related, ...]:
    """The checker's related places (rendered, same document) moved into the template."""
    out: list[Related] = []
    root = document.root
    for item in related:
        if item.path is not None or root is None:
            continue
        located = locate(root, item.range)
        documents = documents_for(checked.template.main, document.index, _type(root)[1])
        placed = place(checked.template.main, located, document.chunk.text.split("\n"), documents)
        if placed is not None:
            out.append(
                Related(
                    Range.of(placed.line, placed.span[0], placed.line, placed.span[1]),
                    item.message,
                )
            )
    return tuple(out)


def _fixes(
    finding: Finding,
    rng: Range,
    rendered: Sequence[str],
    template: Sequence[str],
    target: Range,
) -> tuple[Fix, ...]:
    """The checker's fixes that edit exactly the node, when the template holds the same text
    there (a misspelt literal key): the same edit in the template."""
    if rng.start.line != rng.end.line or target.start.line >= len(template):
        return ()
    node_text = rendered[rng.start.line][rng.start.character : rng.end.character]
    there = template[target.start.line][target.start.character : target.end.character]
    if not node_text or node_text != there:
        return ()
    out: list[Fix] = []
    for fix in finding.fixes:
        if all(e.range == rng for e in fix.edits):
            out.append(replace(fix, edits=tuple(Edit(target, e.new_text) for e in fix.edits)))
    return tuple(out)


def _across(
    checked: dict[str, _Checked], render_crds: list[CrdVersion], crds: Sequence[CrdVersion]
) -> list[tuple[Path, Finding]]:
    """Selectors and duplicates among one render's documents, placed in their templates."""
    by_id: dict[str, tuple[_Checked, int]] = {}
    summaries: list[PlacedSummary] = []
    for result in checked.values():
        for index, summary in result.summaries:
            by_id[summary.path] = (result, index)
            summaries.append(summary)
    namespaced = {
        (split_api_version(v.api_version)[0], v.kind): v.namespaced for v in [*crds, *render_crds]
    }
    out: list[tuple[Path, Finding]] = []
    for ident, found in workspace_findings(summaries, namespaced, scope=SCOPE).items():
        result, index = by_id[ident]
        for finding in found:
            related: list[Related] = []
            for item in finding.related:
                other = by_id.get(item.path or ident)
                if other is None:
                    continue
                moved = other[0].place(other[1], item.range, Finding(item.range, "hint", "", ""))
                same = other[0].path == result.path
                related.append(
                    Related(moved.range, item.message, None if same else str(other[0].path))
                )
            plain = replace(finding, related=())
            placed = result.place(index, finding.range, plain)
            out.append((result.path, replace(placed, related=(*placed.related, *related))))
    return out


# -- renders --------------------------------------------------------------------------------------


_Group = dict[str, list[str]]
"""One place's findings: each distinct message with the renders that produced it."""


def _add(
    found: dict[tuple[object, ...], tuple[Finding, _Group]], finding: Finding, label: str
) -> None:
    """Findings at one place with one rule are one diagnostic: renders (and the items of a
    `range`) that differ only in the rendered value are listed in it, not repeated."""
    key = (finding.range, finding.severity, finding.code)
    entry = found.get(key)
    if entry is None:
        found[key] = (finding, {finding.message: [label]})
        return
    first, messages = entry
    labels = messages.setdefault(finding.message, [])
    if label not in labels:
        labels.append(label)
    if finding.related or finding.fixes:
        related = (*first.related, *(r for r in finding.related if r not in first.related))
        titles = {f.title for f in first.fixes}
        fixes = (*first.fixes, *(f for f in finding.fixes if f.title not in titles))
        found[key] = (replace(first, related=related, fixes=fixes), messages)


MAX_VARIANTS = 3


MAX_LABELS = 3


def _labelled(finding: Finding, messages: _Group, renders: int) -> Finding:
    lines = [
        f"{message} ({_renders(labels, renders)})"
        for message, labels in list(messages.items())[:MAX_VARIANTS]
    ]
    if len(messages) > MAX_VARIANTS:
        lines.append(f"... and {len(messages) - MAX_VARIANTS} more like these")
    return replace(finding, message="\n".join(lines))


def _renders(labels: list[str], renders: int) -> str:
    """The renders a finding came from: all their labels, or how many when they are many."""
    if len(labels) <= MAX_LABELS:
        return "values: " + ", ".join(labels)
    if len(labels) == renders:
        return f"values: all {renders} renders"
    return f"values: {', '.join(labels[:MAX_LABELS])} and {len(labels) - MAX_LABELS} more"


_CHECKER = RenderedChecker()


def check_rendered(
    chart_dir: Path,
    renders: Sequence[Rendered],
    k8s_version: str,
    crds: Sequence[CrdVersion] = (),
    *,
    read: ReadText | None = None,
) -> dict[Path, list[Finding]]:
    """Findings in the rendered manifests of `renders` (of the chart at `chart_dir`), keyed by
    the template's absolute path, with ranges in the template's text (code points).

    `read` gives a file's current text (an editor buffer); by default the file on disk. A
    template whose text cannot be read is skipped, as is a subchart packed as a .tgz.
    """
    return _CHECKER.check(chart_dir, renders, k8s_version, crds, read)
