"""A ktl stack as a whole: its files, releases, inheritance and the graph of their needs
(missing needs, cycles, duplicate releases), in ktl's wording."""

from __future__ import annotations

import difflib
import itertools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ktl_lsp.checks.findings import Finding, Related
from ktl_lsp.checks.stack_file import declares_root, strings_in
from ktl_lsp.checks.stack_shapes import (
    CODE,
    DISCOVERY_SKIP,
    MAX_STACK_FILES,
    RELEASE_NAMES,
    STACK_NAMES,
)
from ktl_lsp.documents.edits import Fix, replace_with
from ktl_lsp.documents.nodes import MappingNode, Node, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import get, scalar_text
from ktl_lsp.documents.yaml_parse import ParsedText, YamlDocument
from ktl_lsp.graph import find_cycles


class FileSource(Protocol):
    def parsed_of(self, path: Path) -> ParsedText | None: ...


@dataclass
class _Release:
    name: str
    cluster: str | None
    namespace: str
    path: str
    name_range: Range
    needs: list[tuple[str, Range]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.cluster or ''}/{self.namespace}/{self.name}"


@dataclass
class StackAnalysis:
    root: Path
    files: list[Path]
    findings: dict[str, list[Finding]]
    releases: list[tuple[str, str, str]] = field(default_factory=list)
    """(id, name, path) of every release, for CodeLens and plans."""
    nested: list[Path] = field(default_factory=list)
    """The stack.yaml of stacks of their own below the root, left out of this one."""


def discover_stack_files(root: Path) -> list[Path]:
    """Every stack.yaml and release.yaml under the root, as ktl discovers them."""
    found: list[Path] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in DISCOVERY_SKIP)
        for name in sorted(files):
            if name in STACK_NAMES or name in RELEASE_NAMES:
                found.append(Path(directory) / name)
                if len(found) >= MAX_STACK_FILES:
                    return found
    return found


def _first_root(parsed: ParsedText | None) -> tuple[YamlDocument, MappingNode] | None:
    if parsed is None:
        return None
    for document in parsed.documents:
        if isinstance(document.root, MappingNode):
            return document, document.root
    return None


def _layer(defaults: Node | None) -> tuple[str | None, str | None]:
    return scalar_text(get(defaults, "cluster", "name")), scalar_text(get(defaults, "namespace"))


def analyze_stack(
    root: Path, source: FileSource, unsaved: Iterable[Path] = (), separate_nested: bool = True
) -> StackAnalysis:
    """Resolve every release's id and check needs, duplicates and cycles across the stack.

    ``unsaved``: stack and release files open in the editor, which may not be on disk yet.
    ``separate_nested``: a stack.yaml below the root that declares a stack of its own
    (``declares_root``) is checked as its own root, so its directory is left out here and
    noted once at the root; without it every file is collected, as `ktl stack` run from the
    root does."""
    files = discover_stack_files(root)
    on_disk = set(files)
    files += sorted(
        p
        for p in unsaved
        if p not in on_disk
        and p.name in (*STACK_NAMES, *RELEASE_NAMES)
        and p.is_relative_to(root)
        and not DISCOVERY_SKIP.intersection(p.relative_to(root).parts[:-1])
    )
    parses = {path: source.parsed_of(path) for path in files}
    nested: list[Path] = []
    for path in sorted(files, key=lambda p: len(p.parts)) if separate_nested else ():
        if (
            path.name in STACK_NAMES
            and path.parent != root
            and not any(path.is_relative_to(n.parent) for n in nested)
            and declares_root(parses[path])
        ):
            nested.append(path)
    if nested:
        files = [p for p in files if not any(p.is_relative_to(n.parent) for n in nested)]
    docs: dict[Path, tuple[YamlDocument, MappingNode]] = {}
    for path in files:
        found = _first_root(parses[path])
        if found is not None:
            docs[path] = found
    root_doc = docs.get(root / "stack.yaml") or docs.get(root / "stack.yml")
    profile_name = scalar_text(get(root_doc[1], "defaultProfile")) if root_doc else None
    layers: dict[Path, list[tuple[str | None, str | None]]] = {}

    def chain(directory: Path) -> list[tuple[str | None, str | None]]:
        cached = layers.get(directory)
        if cached is not None:
            return cached
        parent = (
            [] if directory == root or directory == directory.parent else chain(directory.parent)
        )
        own: list[tuple[str | None, str | None]] = []
        for name in STACK_NAMES:
            found = docs.get(directory / name)
            if found is not None:
                own.append(_layer(get(found[1], "defaults")))
                if directory == root and profile_name:
                    own.append(_layer(get(found[1], "profiles", profile_name, "defaults")))
        layers[directory] = result = parent + own
        return result

    releases: list[_Release] = []
    for path, (document, node) in docs.items():
        if path.name in STACK_NAMES:
            items = get(node, "releases")
            entries = items.value if isinstance(items, SequenceNode) else []
        else:
            entries = [node]
        for entry in entries:
            release = _resolve(entry, chain(path.parent), path, document)
            if release is not None:
                releases.append(release)
    findings: dict[str, list[Finding]] = {}

    def add(path: str, finding: Finding) -> None:
        findings.setdefault(path, []).append(finding)

    _graph_findings(releases, add)
    root_path = root / "stack.yaml" if root / "stack.yaml" in docs else root / "stack.yml"
    if nested and root_doc is not None:
        add(str(root_path), _nested_note(root, root_doc, nested, parses))
    return StackAnalysis(root, files, findings, [(r.id, r.name, r.path) for r in releases], nested)


def _nested_note(
    root: Path,
    root_doc: tuple[YamlDocument, MappingNode],
    nested: list[Path],
    parses: dict[Path, ParsedText | None],
) -> Finding:
    """One note at the root: the stacks below it are checked as their own, but `ktl stack`
    run from here still collects their files."""
    document, node = root_doc
    anchor = get(node, "name") or get(node, "kind") or (node.value[0][0] if node.value else node)
    shown = ", ".join(str(p.parent.relative_to(root)) + "/" for p in nested[:5])
    more = f" and {len(nested) - 5} more" if len(nested) > 5 else ""
    related = []
    for path in nested[:5]:
        found = _first_root(parses[path])
        if found is not None:
            name = get(found[1], "name")
            target = found[0].range_of(name) if name is not None else Range.of(0, 0, 0, 0)

            related.append(Related(target, "a stack of its own", str(path)))
    return Finding(
        document.range_of(anchor),
        "information",
        "stack-nested-root",
        f"{shown}{more}: stack(s) of their own (kind: Stack with a name), checked as their own "
        "roots; `ktl stack` run from this directory would also collect their releases",
        tuple(related),
    )


def _resolve(
    entry: Node, layers: list[tuple[str | None, str | None]], path: Path, document: YamlDocument
) -> _Release | None:
    if not isinstance(entry, MappingNode):
        return None
    name_node = get(entry, "name")
    name = scalar_text(name_node)
    if not name or name_node is None:
        return None
    cluster = namespace = None
    for layer_cluster, layer_namespace in [*layers, _layer(entry)]:
        cluster = layer_cluster or cluster
        namespace = layer_namespace or namespace
    release = _Release(
        name, cluster, namespace or "default", str(path), document.range_of(name_node)
    )
    for need in strings_in(get(entry, "needs")):
        release.needs.append((str(need.value), document.range_of(need)))
    return release


def _graph_findings(releases: list[_Release], add: _Adder) -> None:
    by_id: dict[str, _Release] = {}
    by_cluster_name: dict[tuple[str | None, str], _Release] = {}
    for release in releases:
        if release.cluster is None:
            add(
                release.path,
                Finding(
                    release.name_range,
                    "error",
                    CODE,
                    "cluster.name is required for every release (missing on at least one release)",
                ),
            )
        first = by_id.get(release.id)
        if first is not None:
            add(
                release.path,
                Finding(
                    release.name_range,
                    "error",
                    "stack-duplicate-release",
                    f"duplicate release id {release.id}",
                    (Related(first.name_range, "first defined here", first.path),),
                ),
            )
            continue
        by_id[release.id] = release
        same_name = by_cluster_name.get((release.cluster, release.name))
        if same_name is not None:
            add(
                release.path,
                Finding(
                    release.name_range,
                    "error",
                    "stack-duplicate-release",
                    f'duplicate release name "{release.name}" in cluster "{release.cluster or ""}" '
                    f"({same_name.id} vs {release.id})",
                    (Related(same_name.name_range, "first defined here", same_name.path),),
                ),
            )
            continue
        by_cluster_name[(release.cluster, release.name)] = release
    edges: dict[str, list[tuple[str, Range, str]]] = {}
    for release in by_id.values():
        for need, rng in release.needs:
            target = by_cluster_name.get((release.cluster, need))
            if target is None:
                add(
                    release.path,
                    Finding(
                        rng,
                        "error",
                        "stack-missing-need",
                        f'release {release.id} needs missing dependency "{need}"',
                        fixes=_closest_release(need, rng, release, by_cluster_name),
                    ),
                )
                continue
            edges.setdefault(release.id, []).append((target.id, rng, release.path))
    for cycle in find_cycles(list(by_id), {k: [t for t, _, _ in v] for k, v in edges.items()}):
        cycle_edges: list[tuple[str, str, Range, str]] = []
        for a, b in itertools.pairwise([*cycle, cycle[0]]):
            for to, rng, file in edges.get(a, []):
                if to == b:
                    cycle_edges.append((a, b, rng, file))
                    break
        message = cycle_message(cycle, lambda i: by_id[i].name, lambda a, b: "declared")
        for a, b, rng, file in cycle_edges:
            related = tuple(
                Related(r, f"{x} needs {by_id[y].name}", f)
                for x, y, r, f in cycle_edges
                if (x, y) != (a, b)
            )
            add(file, Finding(rng, "error", "stack-cycle", message, related))


def cycle_message(
    cycle: list[str], name_of: Callable[[str], str], hint_of: Callable[[str, str], str]
) -> str:
    """ktl's words for a cycle of release ids, each needing the next: the ring of
    ``id(name)``, then each edge by release names with why it exists (``declared``, or the
    inferred reason types joined by ``+``)."""
    ring = [*cycle, cycle[0]]
    path_text = " ".join(f"{i}({name_of(i)})" for i in ring)
    edge_text = " ".join(
        f"{name_of(a)} -> {name_of(b)} ({hint_of(a, b)})" for a, b in itertools.pairwise(ring)
    )
    return f"dependency cycle detected: [{path_text}] edges=[{edge_text}]"


def _closest_release(
    need: str,
    rng: Range,
    release: _Release,
    by_cluster_name: dict[tuple[str | None, str], _Release],
) -> tuple[Fix, ...]:
    """The release of the same cluster whose name is closest to a need that names none."""
    names = [n for c, n in by_cluster_name if c == release.cluster and n != release.name]
    close = difflib.get_close_matches(need, names, n=1, cutoff=0.6)
    if not close:
        return ()
    return (replace_with(rng, close[0], f'Change "{need}" to the release "{close[0]}"'),)


class _Adder(Protocol):
    def __call__(self, path: str, finding: Finding, /) -> None: ...
