"""ktl `stack.yaml` / `release.yaml`: per-file shape and values, and the whole stack's graph.

Messages use ktl's own wording (ktl-compat.md section 3) so what the editor says matches what
`ktl stack plan` would print; unknown keys, which ktl silently ignores, become warnings.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ktl_lsp.checks.findings import Finding, Related
from ktl_lsp.checks.schema_engine import node_range
from ktl_lsp.checks.shape import (
    ANY,
    BOOL,
    DURATION,
    GO_DURATION,
    INT,
    NUMBER,
    SCALAR,
    STRING,
    STRINGS,
    Shape,
    ShapeWalk,
    list_of,
    map_of,
    obj,
)
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import get, get_pair, mapping_pairs, scalar_text, scalar_value
from ktl_lsp.documents.yaml_parse import ParsedText, YamlDocument

CODE = "stack-schema"
STACK_NAMES = ("stack.yaml", "stack.yml")
RELEASE_NAMES = ("release.yaml", "release.yml")
DISCOVERY_SKIP = frozenset({".git", "bin", "dist"})
MAX_STACK_FILES = 5_000


class FileSource(Protocol):
    def parsed_of(self, path: Path) -> ParsedText | None: ...


CLUSTER = obj(name=STRING, kubeconfig=STRING, context=STRING)
APPLY = obj(atomic=BOOL, wait=BOOL, createNamespace=BOOL, timeout=DURATION)
DELETE = obj(timeout=DURATION)
VERIFY = obj(
    enabled=BOOL,
    failOnWarnings=BOOL,
    warnOnly=BOOL,
    eventsWindow=DURATION,
    timeout=DURATION,
    denyReasons=STRINGS,
    allowReasons=STRINGS,
    requireConditions=list_of(
        obj(group=STRING, kind=STRING, type=STRING, status=STRING, allowMissing=BOOL)
    ),
)
HOOK = obj(
    name=STRING,
    type=STRING,
    runOnce=BOOL,
    when=STRING,
    timeout=DURATION,
    retry=INT,
    kubeconfig=STRING,
    context=STRING,
    namespace=STRING,
    kubectl=obj(args=STRINGS),
    script=obj(command=STRINGS, env=map_of(SCALAR), workDir=STRING),
    http=obj(method=STRING, url=STRING, headers=map_of(SCALAR), body=ANY),
)
HOOKS = obj(
    preApply=list_of(HOOK),
    postApply=list_of(HOOK),
    preDelete=list_of(HOOK),
    postDelete=list_of(HOOK),
)
LOCK = obj(enabled=BOOL, takeover=BOOL, ttl=DURATION, owner=STRING)
CLI = obj(
    output=Shape("string", enum=("table", "json")),
    inferDeps=BOOL,
    inferConfigRefs=BOOL,
    selector=obj(
        clusters=STRINGS,
        tags=STRINGS,
        fromPaths=STRINGS,
        releases=STRINGS,
        gitRange=STRING,
        gitIncludeDeps=BOOL,
        gitIncludeDependents=BOOL,
        includeDeps=BOOL,
        includeDependents=BOOL,
        allowMissingDeps=BOOL,
    ),
    apply=obj(dryRun=BOOL, diff=BOOL, failFast=BOOL, retry=INT, lock=LOCK),
    delete=obj(confirmThreshold=INT, failFast=BOOL, retry=INT, lock=LOCK),
    resume=obj(allowDrift=BOOL, rerunFailed=BOOL),
)
RUNNER = obj(
    concurrency=INT,
    progressiveConcurrency=BOOL,
    kubeQPS=NUMBER,
    kubeBurst=INT,
    limits=obj(maxParallelPerNamespace=INT, maxParallelKind=map_of(INT), parallelismGroupLimit=INT),
    adaptive=obj(
        mode=STRING,
        min=INT,
        window=INT,
        rampAfterSuccesses=INT,
        rampMaxFailureRate=NUMBER,
        cooldownSevere=INT,
    ),
)
_DEFAULT_FIELDS: dict[str, Shape] = {
    "cluster": CLUSTER,
    "namespace": STRING,
    "values": STRINGS,
    "set": map_of(SCALAR),
    "tags": STRINGS,
    "apply": APPLY,
    "delete": DELETE,
    "verify": VERIFY,
}
DEFAULTS = Shape(
    "object",
    _DEFAULT_FIELDS,
    notes={
        "runner": "defaults.runner is ignored by ktl; put runner at the top level or under "
        "profiles.<name>"
    },
)
_RELEASE_FIELDS: dict[str, Shape] = {
    "name": STRING,
    "chart": STRING,
    "chartVersion": STRING,
    "wave": INT,
    "critical": BOOL,
    "parallelismGroup": STRING,
    "cluster": CLUSTER,
    "namespace": STRING,
    "values": STRINGS,
    "set": map_of(SCALAR),
    "tags": STRINGS,
    "needs": STRINGS,
    "apply": APPLY,
    "delete": DELETE,
    "hooks": HOOKS,
}
_DEPS_NOTE = "ktl has no {key} key: dependencies are declared with needs (a list of release names)"
_RELEASE_NOTES = {k: _DEPS_NOTE.format(key=k) for k in ("deps", "dependsOn", "depends_on")}
INLINE_RELEASE = Shape("object", {**_RELEASE_FIELDS, "verify": VERIFY}, notes=_RELEASE_NOTES)
RELEASE_FILE = Shape(
    "object",
    {"apiVersion": STRING, "kind": STRING, **_RELEASE_FIELDS},
    notes={
        **_RELEASE_NOTES,
        "verify": "verify is ignored in release.yaml; ktl reads it only from inline releases",
    },
)
PROFILE = obj(defaults=DEFAULTS, runner=RUNNER, cli=CLI, hooks=HOOKS)
ROOT_STACK = obj(
    apiVersion=STRING,
    kind=STRING,
    name=STRING,
    defaultProfile=STRING,
    profiles=map_of(PROFILE),
    defaults=DEFAULTS,
    runner=RUNNER,
    cli=CLI,
    hooks=HOOKS,
    releases=list_of(INLINE_RELEASE),
)
_SUB_NOTE = "{key} is ignored in a subdirectory stack.yaml; only the root stack.yaml's counts"


def stack_root_for(path: Path, unsaved: Collection[Path] = ()) -> Path | None:
    """The topmost ancestor directory holding a stack.yaml (ktl's stack root).

    A stack.yaml counts when it is on disk, is ``path`` itself, or is among ``unsaved`` (the
    stack files open in the editor): a new stack not saved yet is still a stack."""
    root: Path | None = None
    for directory in [path.parent, *path.parent.parents]:
        for name in STACK_NAMES:
            candidate = directory / name
            if candidate == path or candidate in unsaved or candidate.is_file():
                root = directory
                break
        if (directory / ".git").exists():
            break
    return root


# -- per-file checks ------------------------------------------------------------------------


def check_stack_file(
    path: Path, parsed: ParsedText, is_stack: bool, root_dir: Path | None
) -> list[Finding]:
    """Shape, ktl's value rules, and chart/values paths of one file (absolute ranges).

    ``root_dir``: the stack root (``stack_root_for``), found once by the caller."""
    findings: list[Finding] = []
    is_root = is_stack and root_dir == path.parent
    for document in parsed.documents[:1]:
        root = document.root
        if root is None:
            continue
        walk = ShapeWalk(CODE, "ktl")
        if not isinstance(root, MappingNode):
            walk.add(root, "expected a mapping at the top level")
        elif is_stack:
            _check_stack_doc(walk, root, path, is_root)
        else:
            _check_release_doc(walk, root, path)
        findings.extend(f.shifted(document.start_line) for f in walk.findings)
    return findings


def _check_header(walk: ShapeWalk, root: Node, path: Path, kind: str) -> None:
    api = get(root, "apiVersion")
    if api is not None and scalar_text(api) not in (None, "ktl.dev/v1"):
        walk.add(api, f'{path.name}: apiVersion must be ktl.dev/v1 (got "{scalar_text(api)}")')
    kind_node = get(root, "kind")
    if kind_node is not None and scalar_text(kind_node) not in (None, kind):
        walk.add(kind_node, f'{path.name}: kind must be {kind} (got "{scalar_text(kind_node)}")')


def _check_stack_doc(walk: ShapeWalk, root: MappingNode, path: Path, is_root: bool) -> None:
    if is_root:
        walk.walk(root, ROOT_STACK, "")
        _check_header(walk, root, path, "Stack")
    else:
        for key, value in mapping_pairs(root):
            name = key.value if isinstance(key, ScalarNode) else None
            if name in ("defaults", "releases"):
                walk.walk(value, ROOT_STACK.fields[str(name)], str(name))
            elif isinstance(name, str):
                walk.add(key, _SUB_NOTE.format(key=name), "warning")
    releases = get(root, "releases")
    if isinstance(releases, SequenceNode):
        for index, item in enumerate(releases.value):
            if not isinstance(item, MappingNode):
                continue
            prefix = f"releases[{index}]"
            for required in ("name", "chart"):
                if scalar_text(get(item, required)) in (None, ""):
                    walk.add(_anchor(item), f"{path.name}: {prefix}.{required} is required")
            _check_hooks(walk, get(item, "hooks"), _hooks_label(item), False)
            _check_paths(walk, item, path.parent)
            _check_verify(walk, get(item, "verify"), f"{prefix}.verify")
    defaults = get(root, "defaults")
    for values in _strings(get(defaults, "values")):
        _check_path(walk, values, path.parent, "values file")
    _check_verify(walk, get(defaults, "verify"), "defaults.verify")
    if is_root:
        _check_runner(walk, get(root, "runner"), "runner")
        _check_hooks(walk, get(root, "hooks"), "hooks", True)
        profiles = get(root, "profiles")
        for key, value in mapping_pairs(profiles) if isinstance(profiles, MappingNode) else []:
            label = f"profiles.{key.value}"
            _check_runner(walk, get(value, "runner"), f"{label}.runner")
            _check_hooks(walk, get(value, "hooks"), f"{label}.hooks", True)
            _check_verify(walk, get(value, "defaults", "verify"), f"{label}.defaults.verify")
        default_profile = get(root, "defaultProfile")
        wanted = scalar_text(default_profile)
        if default_profile is not None and wanted:
            known = [str(k.value) for k, _ in mapping_pairs(profiles)] if profiles else []
            if wanted not in known:
                walk.add(
                    default_profile,
                    f'defaultProfile "{wanted}" names no profile; ktl silently ignores it'
                    + (f" (profiles: {', '.join(known)})" if known else ""),
                    "warning",
                )


def _check_release_doc(walk: ShapeWalk, root: MappingNode, path: Path) -> None:
    walk.walk(root, RELEASE_FILE, "")
    _check_header(walk, root, path, "Release")
    for required in ("name", "chart"):
        if scalar_text(get(root, required)) in (None, ""):
            walk.add(_anchor(root), f"{path.name}: {required} is required")
    _check_hooks(walk, get(root, "hooks"), _hooks_label(root), False)
    _check_paths(walk, root, path.parent)


def _hooks_label(release: Node) -> str:
    name = scalar_text(get(release, "name"))
    return f"release {name} hooks" if name else "hooks"


def _anchor(node: MappingNode) -> Node:
    return node.value[0][0] if node.value else node


def _strings(node: Node | None) -> Iterator[ScalarNode]:
    if isinstance(node, SequenceNode):
        for item in node.value:
            if isinstance(item, ScalarNode):
                yield item


def _check_paths(walk: ShapeWalk, release: Node, base: Path) -> None:
    chart = get(release, "chart")
    if isinstance(chart, ScalarNode) and "://" not in str(chart.value) and chart.value:
        _check_path(walk, chart, base, "chart")
    for values in _strings(get(release, "values")):
        _check_path(walk, values, base, "values file")


def _check_path(walk: ShapeWalk, node: ScalarNode, base: Path, what: str) -> None:
    text = str(node.value)
    if not text or "://" in text or "{{" in text:
        return
    resolved = (base / os.path.expanduser(text)).resolve()
    if not resolved.exists():
        walk.findings.append(
            Finding(
                node_range(node),
                "error",
                "stack-missing-path",
                f'{what} "{text}" does not exist (resolved to {resolved})',
            )
        )


def _number(node: Node | None) -> float | None:
    value = scalar_value(node) if isinstance(node, ScalarNode) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _check_runner(walk: ShapeWalk, runner: Node | None, label: str) -> None:
    if not isinstance(runner, MappingNode):
        return

    def rule(
        node: Node | None, name: str, low: float, expect: str, high: float | None = None
    ) -> None:
        value = _number(node)
        if node is None or value is None:
            return
        if value < low or (high is not None and value > high):
            walk.add(node, f"{name} must be {expect} (got {node.value})")

    concurrency_node = get(runner, "concurrency")
    concurrency = _number(concurrency_node)
    rule(concurrency_node, f"{label}.concurrency", 1, ">= 1")
    limits = get(runner, "limits")
    value = get(limits, "maxParallelPerNamespace")
    rule(value, f"{label}.limits.maxParallelPerNamespace", 0, ">= 0")
    value = get(limits, "parallelismGroupLimit")
    rule(value, f"{label}.limits.parallelismGroupLimit", 1, ">= 1")
    kinds = get(limits, "maxParallelKind")
    for key, limit in mapping_pairs(kinds) if isinstance(kinds, MappingNode) else []:
        rule(limit, f"{label}.limits.maxParallelKind.{key.value}", 1, ">= 1")
    adaptive = get(runner, "adaptive")
    if isinstance(adaptive, MappingNode):
        mode = get(adaptive, "mode")
        mode_text = scalar_text(mode)
        if mode is not None and mode_text not in (None, "balanced", "conservative", "aggressive"):
            walk.add(
                mode,
                f'{label}.adaptive.mode must be balanced|conservative|aggressive (got "{mode_text}")',
            )
        a = f"{label}.adaptive"
        node: Node | None = get(adaptive, "min")
        minimum = _number(node)
        rule(node, f"{a}.min", 1, ">= 1")
        if (
            node is not None
            and minimum is not None
            and concurrency is not None
            and minimum > concurrency
        ):
            walk.add(
                node,
                f"{a}.min must be <= {label}.concurrency ({int(concurrency)}) (got {node.value})",
            )
        node = get(adaptive, "window")
        rule(node, f"{a}.window", 4, ">= 4")
        node = get(adaptive, "rampAfterSuccesses")
        rule(node, f"{a}.rampAfterSuccesses", 1, ">= 1")
        node = get(adaptive, "rampMaxFailureRate")
        rule(node, f"{a}.rampMaxFailureRate", 0, "between 0 and 1", 1)
        node = get(adaptive, "cooldownSevere")
        rule(node, f"{a}.cooldownSevere", 0, ">= 0")


HOOK_TYPES = ("kubectl", "script", "http")


def _check_hooks(walk: ShapeWalk, hooks: Node | None, label: str, allow_run_once: bool) -> None:
    if not isinstance(hooks, MappingNode):
        return
    for phase_key, items in mapping_pairs(hooks):
        if not isinstance(items, SequenceNode):
            continue
        where = f"{label}.{phase_key.value}"
        for hook in items.value:
            if isinstance(hook, MappingNode):
                _check_hook(walk, hook, where, allow_run_once)


def _check_hook(walk: ShapeWalk, hook: MappingNode, where: str, allow_run_once: bool) -> None:
    type_node = get(hook, "type")
    hook_type = scalar_text(type_node)
    if not hook_type:
        walk.add(
            type_node or _anchor(hook), f"{where}: hook type is required (kubectl|script|http)"
        )
    elif hook_type not in HOOK_TYPES:
        assert type_node is not None
        walk.add(
            type_node, f'{where}: unknown hook type "{hook_type}" (expected kubectl|script|http)'
        )
    elif hook_type == "kubectl" and not list(_strings(get(hook, "kubectl", "args"))):
        walk.add(type_node or hook, f"{where}: kubectl hook requires kubectl.args")
    elif hook_type == "script" and not list(_strings(get(hook, "script", "command"))):
        walk.add(type_node or hook, f"{where}: script hook requires script.command")
    elif hook_type == "http" and not scalar_text(get(hook, "http", "url")):
        walk.add(type_node or hook, f"{where}: http hook requires http.url")
    retry = get(hook, "retry")
    retry_value = _number(retry)
    if retry is not None and retry_value is not None and retry_value < 1:
        walk.add(retry, f"{where}: retry must be >= 1 (got {retry.value})")
    timeout = get(hook, "timeout")
    timeout_text = scalar_text(timeout)
    if (
        timeout is not None
        and timeout_text
        and GO_DURATION.match(timeout_text)
        and (timeout_text.startswith("-") or not any(c in "123456789" for c in timeout_text))
    ):
        walk.add(timeout, f"{where}: timeout must be > 0 (got {timeout_text})")
    when = get(hook, "when")
    when_text = scalar_text(when)
    if when is not None and when_text not in (None, "success", "failure", "always"):
        walk.add(when, f'{where}: when must be success|failure|always (got "{when_text}")')
    run_once = get_pair(hook, "runOnce")
    if run_once is not None and not allow_run_once and scalar_value(run_once[1]) is True:
        walk.add(
            run_once[0],
            f"{where}: runOnce is not allowed here (only the root stack.yaml hooks can use runOnce)",
        )


def _check_verify(walk: ShapeWalk, verify: Node | None, label: str) -> None:
    conditions = get(verify, "requireConditions")
    if not isinstance(conditions, SequenceNode):
        return
    for index, item in enumerate(conditions.value):
        if isinstance(item, MappingNode) and (
            not scalar_text(get(item, "group")) or not scalar_text(get(item, "kind"))
        ):
            walk.add(
                _anchor(item),
                f"{label}.requireConditions[{index}]: ktl skips conditions with an empty group or "
                "kind, so core kinds cannot be targeted",
                "warning",
            )


# -- whole-stack analysis ----------------------------------------------------------------


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


def analyze_stack(root: Path, source: FileSource, unsaved: Iterable[Path] = ()) -> StackAnalysis:
    """Resolve every release's id and check needs, duplicates and cycles across the stack.

    ``unsaved``: stack and release files open in the editor, which may not be on disk yet."""
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
    docs: dict[Path, tuple[YamlDocument, MappingNode]] = {}
    for path in files:
        found = _first_root(source.parsed_of(path))
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
    return StackAnalysis(root, files, findings, [(r.id, r.name, r.path) for r in releases])


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
    for need in _strings(get(entry, "needs")):
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
                    ),
                )
                continue
            edges.setdefault(release.id, []).append((target.id, rng, release.path))
    for cycle in find_cycles(list(by_id), {k: [t for t, _, _ in v] for k, v in edges.items()}):
        ring = [*cycle, cycle[0]]
        path_text = " ".join(f"{i}({by_id[i].name})" for i in ring)
        cycle_edges: list[tuple[str, str, Range, str]] = []
        for a, b in itertools.pairwise(ring):
            for to, rng, file in edges.get(a, []):
                if to == b:
                    cycle_edges.append((a, b, rng, file))
                    break
        edge_text = " ".join(f"{a} -> {b} (declared)" for a, b, _, _ in cycle_edges)
        message = f"dependency cycle detected: [{path_text}] edges=[{edge_text}]"
        for a, b, rng, file in cycle_edges:
            related = tuple(
                Related(r, f"{x} needs {by_id[y].name}", f)
                for x, y, r, f in cycle_edges
                if (x, y) != (a, b)
            )
            add(file, Finding(rng, "error", "stack-cycle", message, related))


class _Adder(Protocol):
    def __call__(self, path: str, finding: Finding, /) -> None: ...


def find_cycles(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """One simple cycle per strongly connected component that has one (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                if len(component) > 1 or node in targets:
                    components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    cycles: list[list[str]] = []
    for component in components:
        members = set(component)
        start = min(component)
        path = [start]
        seen = {start}
        current = start
        while True:
            nxt = next((t for t in edges.get(current, []) if t in members), None)
            if nxt is None:
                break
            if nxt == start:
                cycles.append(path)
                break
            if nxt in seen:
                cycles.append(path[path.index(nxt) :])
                break
            path.append(nxt)
            seen.add(nxt)
            current = nxt
    return cycles
