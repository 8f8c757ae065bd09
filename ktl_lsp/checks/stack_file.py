"""ktl `stack.yaml` / `release.yaml`, one file at a time: shape, values, paths, hooks, runners.

Messages use ktl's own wording so what the editor says matches what `ktl stack plan` would print.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from ktl_lsp.checks.findings import Finding
from ktl_lsp.checks.schema_engine import node_range
from ktl_lsp.checks.shape import (
    GO_DURATION,
    ShapeWalk,
)
from ktl_lsp.checks.stack_shapes import CODE, RELEASE_FILE, ROOT_STACK, STACK_NAMES, SUB_NOTE
from ktl_lsp.documents.file_reading import read_text_file
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.yaml_nodes import get, get_pair, mapping_pairs, scalar_text, scalar_value
from ktl_lsp.documents.yaml_parse import ParsedText, parse_text

Reader = Callable[[Path], ParsedText | None]


def _read(path: Path) -> ParsedText | None:
    text = read_text_file(path).text
    return parse_text(text) if text is not None else None


def declares_root(parsed: ParsedText | None) -> bool:
    """A stack.yaml with its own `kind: Stack` and `name`: a stack of its own wherever it is
    (ktl is run with it as the root), not a layer of a stack above it."""
    if parsed is None or not parsed.documents:
        return False
    root = parsed.documents[0].root
    return scalar_text(get(root, "kind")) == "Stack" and bool(scalar_text(get(root, "name")))


def stack_root_for(
    path: Path, unsaved: Collection[Path] = (), read: Reader | None = None
) -> Path | None:
    """ktl's stack root for a stack or release file: the nearest ancestor directory whose
    stack.yaml declares a stack of its own (`declares_root`), else the topmost one holding a
    stack.yaml.

    A stack.yaml counts when it is on disk, is ``path`` itself, or is among ``unsaved`` (the
    stack files open in the editor): a new stack not saved yet is still a stack. ``read``
    gives a stack.yaml's parse (the editor's buffer); files are read from disk without it,
    and only when more than one directory holds a stack.yaml."""
    found: list[Path] = []
    for directory in [path.parent, *path.parent.parents]:
        for name in STACK_NAMES:
            candidate = directory / name
            if candidate == path or candidate in unsaved or candidate.is_file():
                found.append(candidate)
                break
        if (directory / ".git").exists():
            break
    if len(found) > 1:
        for candidate in found[:-1]:
            if declares_root((read or _read)(candidate)):
                return candidate.parent
    return found[-1].parent if found else None


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
                walk.add(key, SUB_NOTE.format(key=name), "warning")
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
    for values in strings_in(get(defaults, "values")):
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


def strings_in(node: Node | None) -> Iterator[ScalarNode]:
    if isinstance(node, SequenceNode):
        for item in node.value:
            if isinstance(item, ScalarNode):
                yield item


def _check_paths(walk: ShapeWalk, release: Node, base: Path) -> None:
    chart = get(release, "chart")
    if isinstance(chart, ScalarNode) and "://" not in str(chart.value) and chart.value:
        _check_path(walk, chart, base, "chart")
    for values in strings_in(get(release, "values")):
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
    elif hook_type == "kubectl" and not list(strings_in(get(hook, "kubectl", "args"))):
        walk.add(type_node or hook, f"{where}: kubectl hook requires kubectl.args")
    elif hook_type == "script" and not list(strings_in(get(hook, "script", "command"))):
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
