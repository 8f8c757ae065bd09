"""The workspace the server keeps: parsed files by path, findings on demand, cheap re-checks.

`update(path, text)` re-parses only the documents whose text changed (per-document cache) and
says which other files' findings may have changed with it (CRDs, duplicates, stacks), so the
server re-publishes exactly those. `findings_for(path)` computes lazily and reuses per-document
results keyed by document text, Kubernetes version and the CRD set they depend on.

Memory: an editor buffer keeps its parse while it is open; a file read from disk keeps only its
text and the facts cross-file checks need, its parse living in the cache (bounded by the bytes
parses hold) and made again when it was evicted. Closing a buffer drops its parse.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ktl_lsp.checks.crds import CrdRegistry, CrdVersion, crd_versions, is_crd
from ktl_lsp.checks.findings import Finding, from_problem, in_encoding, sort_findings
from ktl_lsp.checks.helm_values import check_values_file
from ktl_lsp.checks.k8s_manifest import check_manifest, list_items, type_info
from ktl_lsp.checks.k8s_schemas import (
    HISTORICAL_GROUPS,
    KubernetesSchemas,
    schemas_for,
    split_api_version,
)
from ktl_lsp.checks.k8s_workspace import (
    PlacedSummary,
    ResourceSummary,
    summarize,
    summarize_all,
    workspace_findings,
)
from ktl_lsp.checks.ktl_config import check_ktl_config
from ktl_lsp.checks.kustomize import (
    Kustomization,
    KustomizeIndex,
    PatchKind,
    is_kustomization,
    read_kustomization,
)
from ktl_lsp.checks.outline import OutlineItem, outline_of
from ktl_lsp.checks.plan_file import check_plan
from ktl_lsp.checks.references import NameRef, NavigationIndex, PlacedRef, document_refs
from ktl_lsp.checks.stack_file import check_stack_file, stack_root_for
from ktl_lsp.checks.stack_graph import StackAnalysis, analyze_stack
from ktl_lsp.documents.file_kinds import FileKind, detect_file_kind, is_checkable_name
from ktl_lsp.documents.file_reading import read_text_file
from ktl_lsp.documents.positions import LineIndex, PositionEncoding
from ktl_lsp.documents.yaml_chunks import document_around
from ktl_lsp.documents.yaml_parse import (
    DocumentCache,
    ParsedText,
    YamlDocument,
    YamlProblem,
    gc_paused,
    parse_text,
    text_problem,
)
from ktl_lsp.helm.chart_text import ChartText, chart_root_of, chart_text
from ktl_lsp.helm.values_refs import template_findings, unused_findings

SKIP_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}
)
MAX_WALK_FILES = 20_000
STACK_KINDS = (FileKind.KTL_STACK, FileKind.KTL_RELEASE)
YAML_KINDS = frozenset(FileKind) - {FileKind.HELM_TEMPLATE}
HELM_KINDS = (FileKind.HELM_TEMPLATE, FileKind.HELM_VALUES)


@dataclass
class _File:
    path: Path
    text: str | None
    problem: YamlProblem | None
    kind: FileKind
    parsed: ParsedText | None
    """Kept for editor buffers only (see `Workspace._parsed`)."""
    in_editor: bool = False
    summaries: list[PlacedSummary] = field(default_factory=list)
    references: list[PlacedRef] = field(default_factory=list)
    crds: list[CrdVersion] = field(default_factory=list)
    file_findings: list[Finding] | None = None
    kustomization: Kustomization | None = None


def walk_files(root: Path) -> Iterator[Path]:
    """Checkable files under a directory, skipping VCS, dependency and virtualenv folders."""
    count = 0
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(directory) / name
            if is_checkable_name(path):
                count += 1
                if count > MAX_WALK_FILES:
                    return
                yield path


class Workspace:
    """Parsed files by absolute path; thread-safe; never raises for bad file content."""

    def __init__(self, k8s_version: str | None = None) -> None:
        self._lock = threading.RLock()
        self._files: dict[Path, _File] = {}
        self._cache = DocumentCache()
        self._doc_findings: dict[tuple[str, str, int, bool], list[Finding]] = {}
        self._k8s: KubernetesSchemas = schemas_for(k8s_version)
        self._crds = CrdRegistry()
        #: CRDs served by the connected cluster; the workspace's own definitions win over them
        #: (they are what is about to be applied).
        self._cluster_crds: list[CrdVersion] = []
        self._index: dict[str, list[Finding]] | None = None
        self._navigation: NavigationIndex | None = None
        self._stacks: dict[Path, StackAnalysis] = {}
        self._kustomizations: dict[Path, Kustomization] = {}
        self._kustomize: KustomizeIndex | None = None

    # -- configuration -------------------------------------------------------------------
    @property
    def k8s_version(self) -> str:
        return self._k8s.version

    def set_k8s_version(self, version: str | None) -> set[Path]:
        """Target another Kubernetes version (raises UnsupportedVersionError); returns affected."""
        schemas = schemas_for(version)
        with self._lock:
            if schemas is self._k8s:
                return set()
            self._k8s = schemas
            return self._paths_of(FileKind.K8S_MANIFEST)

    # -- content -------------------------------------------------------------------------
    def add_directory(self, root: Path) -> set[Path]:
        """Load every checkable file under `root` from disk (skipping files open in the editor)."""
        affected: set[Path] = set()
        for path in walk_files(root.resolve()):
            with self._lock:
                state = self._files.get(path)
                if state is not None and state.in_editor:
                    continue
            affected |= self.load(path)
        return affected

    def load(self, path: Path) -> set[Path]:
        """(Re)read one file from disk; returns the paths whose findings may have changed."""
        path = path.resolve()
        result = read_text_file(path)
        return self._set(path, result.text, result.problem, in_editor=False)

    def update(self, path: Path, text: str) -> set[Path]:
        """An editor buffer's new text; returns the paths whose findings may have changed.

        Checked like a file read from disk: binary or oversized text is one problem, whatever
        the file's name or content suggests (a Helm template, say).
        """
        problem = text_problem(text)
        return self._set(path.resolve(), None if problem else text, problem, in_editor=True)

    def close(self, path: Path) -> set[Path]:
        """The editor closed a buffer: drop its parse, fall back to the file on disk (or forget
        it)."""
        path = path.resolve()
        with self._lock:
            old = self._files.get(path)
        affected = self.load(path) if path.is_file() else self.remove(path)
        if old is not None and old.parsed is not None:
            self._cache.discard(d.chunk.text for d in old.parsed.documents)
            digests = {d.chunk.digest for d in old.parsed.documents}
            with self._lock:
                for key in [k for k in self._doc_findings if k[0] in digests]:
                    del self._doc_findings[key]
        return affected

    def remove(self, path: Path) -> set[Path]:
        path = path.resolve()
        with self._lock:
            state = self._files.pop(path, None)
            if state is None:
                # Not read yet (a folder scan that has not reached it), but a stack analysis may
                # have read it from disk: that analysis is stale now.
                return self._forget_in_stacks(path)
            affected = {path} | self._dependents(state, None)
            self._after_change(state, None)
            return affected

    def _forget_in_stacks(self, path: Path) -> set[Path]:
        stale = [a for a in self._stacks.values() if path in a.files]
        if not stale:
            return set()
        self._stacks.clear()
        for state in self._files.values():
            if state.kind in STACK_KINDS:
                state.file_findings = None
        return {p for a in stale for p in a.files if p != path}

    def paths(self) -> list[Path]:
        with self._lock:
            return sorted(self._files)

    def kind_of(self, path: Path) -> FileKind | None:
        with self._lock:
            state = self._files.get(path.resolve())
            return state.kind if state else None

    def _set(
        self, path: Path, text: str | None, problem: YamlProblem | None, in_editor: bool
    ) -> set[Path]:
        kind = detect_file_kind(path, text)
        with gc_paused():
            return self._set_parsed(path, text, problem, in_editor, kind)

    def _set_parsed(
        self,
        path: Path,
        text: str | None,
        problem: YamlProblem | None,
        in_editor: bool,
        kind: FileKind,
    ) -> set[Path]:
        parsed = None
        if text is not None and kind in YAML_KINDS:
            with self._lock:
                old = self._files.get(path)
            if old is not None and old.parsed is not None and old.kind == kind and old.text == text:
                parsed = old.parsed  # the same buffer again (a folder read restoring it)
            else:
                parsed = parse_text(text, self._cache)
        new = _File(path, text, problem, kind, parsed if in_editor else None, in_editor)
        if parsed is not None and kind == FileKind.K8S_MANIFEST:
            for document in parsed.documents:
                facts = _facts(document)
                for summary in facts.summaries:
                    new.summaries.append(PlacedSummary(str(path), document.start_line, summary))
                new.crds.extend(facts.crds)
                new.references.extend(
                    PlacedRef(str(path), document.start_line, r) for r in facts.references
                )
        elif parsed is not None and is_kustomization(path):
            new.kustomization = read_kustomization(path, parsed)
        with self._lock:
            old = self._files.get(path)
            self._files[path] = new
            affected = {path} | self._dependents(old, new)
            self._after_change(old, new)
            return affected

    def _dependents(self, old: _File | None, new: _File | None) -> set[Path]:
        """Other files whose findings may change when `old` becomes `new`."""
        affected: set[Path] = set()
        old_crds = old.crds if old else []
        new_crds = new.crds if new else []
        old_sums = [p.summary for p in old.summaries] if old else []
        new_sums = [p.summary for p in new.summaries] if new else []
        if old_crds != new_crds or _identity(old_sums) != _identity(new_sums):
            affected |= self._paths_of(FileKind.K8S_MANIFEST)
        old_k = old.kustomization if old else None
        new_k = new.kustomization if new else None
        if old_k != new_k:
            if (old_k and old_k.resources) != (new_k and new_k.resources):
                affected |= self._paths_of(FileKind.K8S_MANIFEST)  # what is applied together
            # Files that become patches, stop being ones, or change kind of patch.
            moved = set(old_k.patches if old_k else ()) ^ set(new_k.patches if new_k else ())
            affected |= {p for p, _ in moved} & self._files.keys()
        for state in (old, new):
            if state is None:
                continue
            if state.kind in STACK_KINDS or state.path.name in ("Chart.yaml",):
                for analysis in self._stacks.values():
                    # under its root: one of its files, a new one, or a stack of its own
                    if state.path.is_relative_to(analysis.root):
                        affected |= set(analysis.files)
            if state.kind == FileKind.KTL_CONFIG:
                # Secret providers: every values file's secret:// references may change.
                affected |= self._paths_of(FileKind.HELM_VALUES)
            if state.path.name == "values.schema.json" or state.kind == FileKind.HELM_VALUES:
                affected |= {
                    p
                    for p, s in self._files.items()
                    if s.kind == FileKind.HELM_VALUES and p.parent == state.path.parent
                }
            if state.kind in HELM_KINDS or state.path.name == "Chart.yaml":
                # Templates read values files and values files are read by templates.
                affected |= self._chart_files(state.path, state.kind != FileKind.HELM_TEMPLATE)
        return affected

    def _chart_files(self, path: Path, templates_too: bool) -> set[Path]:
        """The values files (and templates) the workspace holds of the chart `path` is in."""
        root = chart_root_of(path)
        if root is None:
            return set()
        templates = str(root / "templates") + os.sep
        return {
            p
            for p, s in self._files.items()
            if (s.kind == FileKind.HELM_VALUES and p.parent == root)
            or (templates_too and s.kind == FileKind.HELM_TEMPLATE and str(p).startswith(templates))
        }

    def _after_change(self, old: _File | None, new: _File | None) -> None:
        if (old and old.crds) or (new and new.crds):
            self._crds.set_versions(self._all_crds())
        if new is not None and new.kustomization is not None:
            self._kustomizations[new.path] = new.kustomization
            self._kustomize = None
        elif old is not None and old.kustomization is not None:
            self._kustomizations.pop(old.path, None)
            self._kustomize = None
        self._index = None
        self._navigation = None
        touched = [s for s in (old, new) if s is not None]
        if any(s.kind in STACK_KINDS or s.path.name == "Chart.yaml" for s in touched):
            self._stacks.clear()
        for state in self._files.values():
            if state.kind in STACK_KINDS or state.kind in HELM_KINDS:
                state.file_findings = None

    def _paths_of(self, kind: FileKind) -> set[Path]:
        return {p for p, s in self._files.items() if s.kind == kind}

    # -- FileSource for cross-file checkers ------------------------------------------------
    def text_of(self, path: Path) -> str | None:
        with self._lock:
            state = self._files.get(path)
            if state is not None:
                return state.text
        return read_text_file(path).text

    def held_text(self, path: Path) -> str | None:
        """The text of a file the workspace holds (an editor buffer, a file read), else None."""
        with self._lock:
            state = self._files.get(path)
            return state.text if state is not None else None

    def helm_chart(self, path: Path, text: str | None = None) -> ChartText | None:
        """The scanned chart a template or values file belongs to (`text`: the file's text in
        the editor, when the workspace may not hold it yet)."""
        path = path.resolve()
        root = chart_root_of(path)
        if root is None:
            return None
        inside = str(root) + os.sep
        with self._lock:  # buffers not saved yet: the disk's files are listed anyway
            extra = [p for p, s in self._files.items() if s.in_editor and str(p).startswith(inside)]

        def held(other: Path) -> str | None:
            return text if text is not None and other == path else self.held_text(other)

        return chart_text(root, held, [*extra, path])

    def parsed_of(self, path: Path) -> ParsedText | None:
        with self._lock:
            state = self._files.get(path)
            if state is not None:
                return self._parsed(state)
        text = read_text_file(path).text
        return parse_text(text, self._cache) if text is not None else None

    def _parsed(self, state: _File) -> ParsedText | None:
        """A file's parse: an open buffer's own, or from the cache (made again if evicted)."""
        if state.parsed is not None or state.text is None or state.kind not in YAML_KINDS:
            return state.parsed
        with gc_paused():
            return parse_text(state.text, self._cache)

    def parse_stats(self) -> dict[str, int]:
        """Estimated bytes the parses hold: the cache's, and the open buffers' own.

        Read without the lock, from the event loop, while a check may hold it for long: the
        files are copied in one step, and parses never change once made.
        """
        files = list(self._files.values())
        chunks = {
            id(d.chunk): d.chunk for f in files if f.parsed is not None for d in f.parsed.documents
        }
        return {
            "cacheBytes": self._cache.held_bytes,
            "cacheEntries": len(self._cache),
            "cacheLimitBytes": self._cache.max_bytes,
            "openBytes": sum(c.cost for c in chunks.values()),
            "openFiles": sum(1 for f in files if f.in_editor),
        }

    # -- findings ------------------------------------------------------------------------
    def findings_for(self, path: Path, encoding: PositionEncoding = "utf-16") -> list[Finding]:
        """Every finding for one file, sorted, characters counted in `encoding`."""
        path = path.resolve()
        with self._lock:
            state = self._files.get(path)
            if state is None:
                return []
            with gc_paused():
                parsed = self._parsed(state)
                findings = self._compute(state, parsed)
            if not findings:
                return findings
            if parsed is None:
                if state.text is None or state.problem is not None:
                    return findings
                return in_encoding(findings, LineIndex(state.text), encoding)
            return in_encoding(findings, parsed.lines, encoding, self._line_indexes(findings))

    def _line_indexes(self, findings: list[Finding]) -> dict[str, LineIndex] | None:
        paths = {r.path for f in findings for r in f.related if r.path is not None}
        if not paths:
            return None
        out: dict[str, LineIndex] = {}
        for other in paths:
            state = self._files.get(Path(other))
            if state is not None and state.parsed is not None:
                out[other] = state.parsed.lines
            elif state is not None and state.text is not None:
                out[other] = LineIndex(state.text)
        return out

    def _compute(self, state: _File, parsed: ParsedText | None) -> list[Finding]:
        if state.problem is not None:
            return [from_problem(state.problem)]
        if state.kind == FileKind.HELM_TEMPLATE:
            if state.file_findings is None:
                chart = self.helm_chart(state.path)
                state.file_findings = [] if chart is None else template_findings(state.path, chart)
            return sort_findings(state.file_findings)
        if parsed is None:
            return []
        findings = [from_problem(p) for p in parsed.problems]
        duplicate_severity = (
            "warning" if state.kind in (FileKind.HELM_VALUES, FileKind.OTHER) else None
        )
        for document in parsed.documents:
            for problem in document.chunk.problems:
                finding = from_problem(problem, document.start_line)
                if duplicate_severity and finding.code == "yaml-duplicate-key":
                    finding = Finding(
                        finding.range, "warning", finding.code, finding.message, finding.related
                    )
                findings.append(finding)
        kind = state.kind
        if kind == FileKind.K8S_MANIFEST:
            patch = self._kustomize_index().patches.get(state.path)
            if patch != PatchKind.JSON6902:  # a list of operations, no object
                findings.extend(self._manifest_findings(parsed, patch is not None))
                findings.extend(self._workspace_index().get(str(state.path), []))
        elif kind in STACK_KINDS or kind in (
            FileKind.HELM_VALUES,
            FileKind.KTL_CONFIG,
            FileKind.PLAN,
        ):
            if state.file_findings is None:
                state.file_findings = self._file_level(state, parsed)
            findings.extend(state.file_findings)
        return sort_findings(findings)

    def _kustomize_index(self) -> KustomizeIndex:
        if self._kustomize is None:
            self._kustomize = KustomizeIndex(self._kustomizations.values())
        return self._kustomize

    def _manifest_findings(self, parsed: ParsedText, patch: bool) -> list[Finding]:
        out: list[Finding] = []
        k8s = self._k8s
        for document in parsed.documents:
            root = document.root
            if root is None:
                continue
            facts = _facts(document)
            depends_on_crds = facts.custom or bool(facts.crds)
            key = (
                document.chunk.digest,
                k8s.version,
                self._crds.generation if depends_on_crds else 0,
                patch,
            )
            cached = self._doc_findings.get(key)
            if cached is None:
                cached = check_manifest(root, k8s, self._crds, patch)
                if len(self._doc_findings) > 100_000:
                    self._doc_findings.clear()
                self._doc_findings[key] = cached
            out.extend(f.shifted(document.start_line) for f in cached)
        return out

    def _workspace_index(self) -> dict[str, list[Finding]]:
        if self._index is None:
            namespaced = {
                (split_api_version(v.api_version)[0], v.kind): v.namespaced
                for v in self._all_crds()
            }
            kustomize = self._kustomize_index()
            patches = kustomize.patches
            files = (
                [s for path, s in self._files.items() if path not in patches]
                if patches  # a patch repeats its target's name: no object of its own
                else self._files.values()
            )
            self._index = workspace_findings(
                (p for s in files for p in s.summaries),
                namespaced,
                lambda path: _apply_units(Path(path), kustomize),
            )
        return self._index

    def _all_crds(self) -> list[CrdVersion]:
        """Cluster CRDs, then the workspace's: a later entry for the same kind replaces one."""
        return [*self._cluster_crds, *(v for s in self._files.values() for v in s.crds)]

    def set_cluster_crds(self, versions: Iterable[CrdVersion]) -> set[Path]:
        """Replaces the CRDs learned from a cluster; returns the files to re-check."""
        with self._lock:
            self._cluster_crds = list(versions)
            if not self._crds.set_versions(self._all_crds()):
                return set()
            self._index = None
            return self._paths_of(FileKind.K8S_MANIFEST)

    def _file_level(self, state: _File, parsed: ParsedText) -> list[Finding]:
        kind = state.kind
        if kind == FileKind.HELM_VALUES:
            findings = check_values_file(state.path, parsed, self)
            chart = self.helm_chart(state.path) if state.path.name == "values.yaml" else None
            if chart is not None:
                findings.extend(unused_findings(state.path, chart))
            return findings
        if kind == FileKind.KTL_CONFIG:
            return check_ktl_config(parsed)
        if kind == FileKind.PLAN:
            return check_plan(parsed)
        root, analysis = self._stack_of(state.path)
        findings = check_stack_file(state.path, parsed, kind == FileKind.KTL_STACK, root)
        if analysis is not None:
            findings.extend(analysis.findings.get(str(state.path), []))
        return findings

    def _stack_of(self, path: Path) -> tuple[Path | None, StackAnalysis | None]:
        """The root and analysis of the stack a stack or release file belongs to."""
        with self._lock:  # open in the editor, maybe not saved yet
            stack_files = {p for p, s in self._files.items() if s.kind in STACK_KINDS}
        root = stack_root_for(path, stack_files, self.parsed_of)
        if root is None:
            return None, None
        analysis = self._stacks.get(root)
        if analysis is None:
            analysis = analyze_stack(root, self, stack_files)
            self._stacks[root] = analysis
        return root, analysis

    def stack_releases(self, path: Path) -> list[tuple[str, str, str]]:
        """(id, name, file) of every release of the stack a stack or release file is part of."""
        _, analysis = self._stack_of(path.resolve())
        return list(analysis.releases) if analysis is not None else []

    def parsed_for(self, path: Path, text: str) -> tuple[FileKind, ParsedText | None]:
        """The kind and parse of `text` as the file `path` (the held parse when it is that
        text, else a parse that shares this workspace's per-document cache)."""
        path = path.resolve()
        with self._lock:
            state = self._files.get(path)
            # A file read from disk keeps no parse (only open buffers do): parse it below.
            held = state is not None and (state.parsed is not None or state.kind not in YAML_KINDS)
            if state is not None and held and state.text == text:
                return state.kind, state.parsed
        kind = detect_file_kind(path, text)
        if kind not in YAML_KINDS:
            return kind, None
        with gc_paused():
            return kind, parse_text(text, self._cache)

    def parsed_around(
        self, path: Path, text: str, line: int
    ) -> tuple[FileKind, ParsedText | None, int]:
        """Like `parsed_for`, for one position: when the workspace does not hold this text,
        only the manifest document holding `line` is parsed (an editor's buffer between
        checks), with the line it starts at in the file (else 0)."""
        path = path.resolve()
        with self._lock:
            state = self._files.get(path)
            if state is not None and state.text == text and state.parsed is not None:
                return state.kind, state.parsed, 0
        kind = detect_file_kind(path, text)
        if kind != FileKind.K8S_MANIFEST or text_problem(text) is not None:
            return (*self.parsed_for(path, text), 0)
        around = document_around(text, line)
        if around is None:
            return (*self.parsed_for(path, text), 0)
        first, piece = around
        with gc_paused():
            return kind, parse_text(piece, self._cache), first

    def crd(self, api_version: str, kind: str) -> CrdVersion | None:
        """The CRD version (workspace or cluster) that defines a custom resource."""
        return self._crds.get(api_version, kind)

    def objects(self, kind: str, group: str = "") -> list[PlacedSummary]:
        """The named Kubernetes objects of one kind in the workspace, with their files."""
        return [
            placed
            for placed in self.all_objects()
            if placed.summary.kind == kind and placed.summary.group == group
        ]

    def navigation_index(self) -> NavigationIndex:
        """The workspace's objects and name references, gathered once per change."""
        with self._lock:
            if self._navigation is None:
                files = self._files.values()
                with gc_paused():  # thousands of small lists, no cycles among them
                    self._navigation = NavigationIndex(
                        (p for s in files for p in s.summaries),
                        (r for s in files for r in s.references),
                    )
            return self._navigation

    def files_of(self, *kinds: FileKind) -> list[Path]:
        """The files of some kinds (stacks and plans for workspace symbols), sorted."""
        with self._lock:
            return sorted(p for p, s in self._files.items() if s.kind in kinds)

    def all_objects(self) -> list[PlacedSummary]:
        """Every named Kubernetes object of the workspace, with its file (workspace symbols);
        kustomize patches are none (they repeat the name of the object they change)."""
        with self._lock:
            patches = self._kustomize_index().patches
            files = [s for p, s in self._files.items() if p not in patches]
        return [placed for state in files for placed in state.summaries]

    def crds(self) -> list[CrdVersion]:
        """Every custom resource version known (workspace and cluster)."""
        return self._crds.versions()

    # -- structure for CodeLens ------------------------------------------------------------
    def outline(self, path: Path) -> list[OutlineItem]:
        """Kubernetes documents, stack releases and plan nodes with their ranges."""
        path = path.resolve()
        with self._lock:
            state = self._files.get(path)
            parsed = None if state is None else self._parsed(state)
            if state is None or parsed is None:
                return []
            return outline_of(state.kind, parsed)


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the workspace needs from one document, memoised on its parsed chunk."""

    summaries: tuple[ResourceSummary, ...]
    """The document's object, or its items when it is a list."""
    references: tuple[NameRef, ...]
    crds: tuple[CrdVersion, ...]
    custom: bool
    """apiVersion outside the built-in groups: findings depend on the CRDs known."""


def _facts(document: YamlDocument) -> _Facts:
    memo = document.chunk.memo
    facts = memo.get("workspace")
    if facts is None:
        root = document.root
        info = type_info(root)
        group, _ = split_api_version(info.api_version or "")
        crds = (
            tuple(crd_versions(root))
            if root is not None and is_crd(info.api_version, info.kind)
            else ()
        )
        is_list = bool(info.kind) and str(info.kind).endswith("List")
        summaries = summarize_all(root) if is_list else _one(summarize(root))
        custom = bool(info.api_version) and group not in _BUILTIN_GROUPS
        if not custom and is_list:  # a list's items may be custom resources
            custom = any(
                split_api_version(item.api_version or "")[0] not in _BUILTIN_GROUPS
                for item in list_items(root) or ()
            )
        facts = memo["workspace"] = _Facts(summaries, document_refs(document), crds, custom)
    assert isinstance(facts, _Facts)
    return facts


_BUILTIN_GROUPS = schemas_for(None).groups | HISTORICAL_GROUPS


def _one(summary: ResourceSummary | None) -> tuple[ResourceSummary, ...]:
    return () if summary is None else (summary,)


def _apply_units(path: Path, kustomize: KustomizeIndex) -> frozenset[object]:
    """What `path` is applied together with: its kustomizations, and its directory when that
    has none (`kubectl apply -f dir` takes the files directly in it, not its subdirectories;
    a directory with a kustomization is applied with `-k`, which takes only its resources)."""
    units: set[object] = set(kustomize.kustomizations_applying(path))
    if not kustomize.has_kustomization(path.parent):
        units.add(("directory", path.parent))
    return frozenset(units)


def _identity(summaries: list[ResourceSummary]) -> list[tuple[object, ...]]:
    """What the cross-file checks look at, ignoring positions (moving a document is no change)."""
    return [(s.group, s.kind, s.name, s.namespace, s.pod_labels, s.selector) for s in summaries]
