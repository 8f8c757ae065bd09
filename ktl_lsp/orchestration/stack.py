"""A ktl stack as a plan: each release a node, ``needs`` as deps, ``runner`` limits as pools.

Discovery, ids, needs, duplicates and cycles come from ``checks/stack_graph.py`` and ``checks/stack_file.py`` (the code behind
the editor's diagnostics), so a stack the Problems panel calls broken is refused with the same
words. This module only adds what a run needs on top: each release's chart, values and set after
inheritance, and the command that applies it.

The command comes from a template (``stackCommand``): an argv list, or a shell string. Every
``{placeholder}`` stands for a list of values; an argv item holding one expands to one item per
value and disappears when the value is absent, so ``--values={values}`` becomes one flag per
values file and ``--kube-context={context}`` vanishes when no context is set. In a shell string
the values are quoted and joined with spaces. Placeholders: ``id``, ``name``, ``chart``,
``chartVersion``, ``namespace``, ``cluster``, ``kubeconfig``, ``context``, ``values``, ``set``
(``key=value``), ``tags``, ``dir``, ``root``, ``stack``.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

from ktl_lsp.checks.stack_file import check_stack_file, stack_root_for
from ktl_lsp.checks.stack_graph import analyze_stack, cycle_message
from ktl_lsp.checks.stack_releases import StackFiles, first_mapping, resolve_releases, root_file
from ktl_lsp.checks.stack_shapes import STACK_NAMES
from ktl_lsp.graph import find_cycles
from ktl_lsp.orchestration.infer_deps import InferredNeed
from ktl_lsp.orchestration.model import Plan, PlanError, PlanNode
from ktl_lsp.orchestration.stack_infer import NO_HELM, infer_stack

KTL_TEMPLATE = [
    "ktl",
    "apply",
    "--chart={chart}",
    "--release={name}",
    "--namespace={namespace}",
    "--version={chartVersion}",
    "--values={values}",
    "--set={set}",
    "--kubeconfig={kubeconfig}",
    "--context={context}",
]
HELM_TEMPLATE = [
    "helm",
    "upgrade",
    "--install",
    "{name}",
    "{chart}",
    "--namespace={namespace}",
    "--version={chartVersion}",
    "--values={values}",
    "--set={set}",
    "--kubeconfig={kubeconfig}",
    "--kube-context={context}",
]
_PLACEHOLDER = re.compile(r"\{([A-Za-z]+)\}")


def default_template() -> list[str]:
    """``ktl apply`` when ktl is on PATH, else ``helm upgrade --install``."""
    return list(KTL_TEMPLATE if shutil.which("ktl") else HELM_TEMPLATE)


def stack_plan(
    path: Path,
    template: list[str] | str | None = None,
    profile: str | None = None,
) -> Plan:
    root = stack_root_for(path) or path.parent
    files = StackFiles()
    analysis = analyze_stack(root, files, separate_nested=False)  # what `ktl stack` collects
    problems: list[str] = []
    if not any((root / n).is_file() for n in STACK_NAMES):
        problems.append(f"no stack.yaml found at stack root {root}")
    for file in analysis.files:
        parsed = files.parsed_of(file)
        if parsed is None:
            problems.append(f"{file}: cannot read")
            continue
        for document in parsed.documents[:1]:
            problems.extend(
                f"{file}:{p.range.start.line + document.start_line + 1}: {p.message}"
                for p in document.chunk.problems
                if p.severity == "error"
            )
        for finding in check_stack_file(file, parsed, file.name in STACK_NAMES, root):
            if finding.severity == "error":
                problems.append(_where(file, finding.range.start.line, finding.message))
    for file_name, findings in sorted(analysis.findings.items()):
        for finding in findings:
            if finding.severity == "error":
                problems.append(_where(Path(file_name), finding.range.start.line, finding.message))
    if problems:
        raise PlanError(dict.fromkeys(problems))
    root_data = first_mapping(files, root_file(root))
    profile = profile or root_data.get("defaultProfile")
    runner = _runner(root_data, profile)
    releases = resolve_releases(root, files, analysis.files, root_data, profile)
    by_cluster_name = {(r["cluster"], r["name"]): r["id"] for r in releases}
    cli = _cli(root_data, profile)
    infer = cli.get("inferDeps") is not False
    inference = infer_stack(releases, cli.get("inferConfigRefs") is True) if infer else None
    for release in releases:
        given = inference.fields.get(release["id"], {}) if inference is not None else {}
        for key, value in given.items():
            if not release.get(key):  # the stack file wins, as in ktl
                release[key] = value
    template = template if template is not None else default_template()
    nodes: list[PlanNode] = []
    limits: dict[str, int] = {}
    per_namespace = int((runner.get("limits") or {}).get("maxParallelPerNamespace") or 0)
    group_limit = int((runner.get("limits") or {}).get("parallelismGroupLimit") or 1)
    for release in releases:
        pools: list[str] = []
        if per_namespace > 0:
            pool = f"namespace:{release['cluster']}/{release['namespace']}"
            pools.append(pool)
            limits[pool] = per_namespace
        group = release.get("parallelismGroup")
        if group:
            pool = f"group:{group}"
            pools.append(pool)
            limits[pool] = group_limit
        argv, command = render(template, release, root)
        declared = [by_cluster_name[(release["cluster"], n)] for n in release["needs"]]
        meta: dict[str, Any] = {
            "release": release["name"],
            "namespace": release["namespace"],
            "cluster": release["cluster"],
            "chart": release["chart"],
        }
        inferred: list[str] = []
        if inference is not None:
            found = inference.needs.get(release["id"], [])
            inferred = [by_cluster_name[(release["cluster"], n.name)] for n in found]
            if found:
                meta["inferredNeeds"] = [n.to_json() for n in found]
            if release["id"] in inference.errors:
                meta["inferredNeedsError"] = inference.errors[release["id"]]
        nodes.append(
            PlanNode(
                id=release["id"],
                argv=argv,
                command=command,
                cwd=release["dir"],
                deps=list(dict.fromkeys([*declared, *inferred])),
                priority=int(release.get("wave") or 0) * -1,
                pools=pools,
                meta=meta,
            )
        )
    if inference is not None:
        _refuse_inferred_cycles(nodes, inference.needs)
    notes = [
        f"{what} is not applied by ktl-lsp plans ({why})"
        for what, present, why in (
            (
                "runner.limits.maxParallelKind",
                (runner.get("limits") or {}).get("maxParallelKind"),
                "it needs the rendered charts",
            ),
            ("runner.adaptive", runner.get("adaptive"), "concurrency stays fixed"),
            (
                "runner.progressiveConcurrency",
                runner.get("progressiveConcurrency"),
                "concurrency stays fixed",
            ),
            (
                "hooks",
                root_data.get("hooks") or any(r.get("hooks") for r in releases),
                "run them as nodes",
            ),
        )
        if present
    ]
    if inference is not None and NO_HELM in inference.errors.values():
        notes.append(f"needs are not inferred: {NO_HELM}")
    elif inference is not None:
        notes += [
            f"release {release_id}: needs not inferred ({why})"
            for release_id, why in inference.errors.items()
        ]
    concurrency = int(runner.get("concurrency") or 1)
    return Plan(
        name=str(root_data.get("name") or root.name),
        nodes=nodes,
        source=str(path),
        kind="stack",
        concurrency=max(1, concurrency),
        limits=limits,
        fail_fast=bool(((root_data.get("cli") or {}).get("apply") or {}).get("failFast")),
        info={
            "stackRoot": str(root),
            "profile": profile,
            "notes": notes,
            "inferDeps": infer,
            "inferConfigRefs": infer and cli.get("inferConfigRefs") is True,
        },
    )


def _where(path: Path, line: int, message: str) -> str:
    return f"{path}:{line + 1}: {message}"


def _cli(root_data: dict[str, Any], profile: str | None) -> dict[str, Any]:
    """The root's ``cli`` block with the profile's on top (subdirectory files have none)."""
    cli = dict(root_data.get("cli") or {})
    if profile:
        cli.update(((root_data.get("profiles") or {}).get(profile) or {}).get("cli") or {})
    return cli


def _refuse_inferred_cycles(nodes: list[PlanNode], inferred: dict[str, list[InferredNeed]]) -> None:
    """Declared cycles were refused with the diagnostics; inferred edges may close new ones."""
    by_id = {n.id: n for n in nodes}

    def hint(a: str, b: str) -> str:
        name = by_id[b].meta["release"]
        return next((n.types for n in inferred.get(a, []) if n.name == name), "declared")

    cycles = find_cycles(list(by_id), {n.id: n.deps for n in nodes})
    if cycles:
        raise PlanError(
            cycle_message(c, lambda i: str(by_id[i].meta["release"]), hint) for c in cycles
        )


def _runner(root_data: dict[str, Any], profile: str | None) -> dict[str, Any]:
    runner = dict(root_data.get("runner") or {})
    if profile:
        overlay = ((root_data.get("profiles") or {}).get(profile) or {}).get("runner") or {}
        for key, value in overlay.items():
            if key == "limits" and isinstance(value, dict):
                runner["limits"] = {**(runner.get("limits") or {}), **value}
            else:
                runner[key] = value
    return runner


def _values(release: dict[str, Any], root: Path, key: str) -> list[str]:
    if key == "set":
        return [f"{k}={_scalar(v)}" for k, v in (release.get("set") or {}).items()]
    if key in ("values", "tags"):
        return [str(v) for v in release.get(key) or []]
    if key == "root":
        return [str(root)]
    if key == "stack":
        return [str(root)]
    value = release.get(key)
    if value is None or value == "":
        return []
    return [_scalar(value)]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


KNOWN = frozenset(
    [
        "id",
        "name",
        "chart",
        "chartVersion",
        "namespace",
        "cluster",
        "kubeconfig",
        "context",
        "values",
        "set",
        "tags",
        "dir",
        "root",
        "stack",
    ]
)


def render(
    template: list[str] | str, release: dict[str, Any], root: Path
) -> tuple[list[str] | None, str | None]:
    """(argv, None) for an argv template, (None, command) for a shell string."""
    unknown = sorted(
        {
            m
            for item in ([template] if isinstance(template, str) else template)
            for m in _PLACEHOLDER.findall(item)
        }
        - KNOWN
    )
    if unknown:
        raise PlanError(
            [
                f"stackCommand: unknown placeholder {{{unknown[0]}}} (known: {', '.join(sorted(KNOWN))})"
            ]
        )
    if isinstance(template, str):

        def shell(m: re.Match[str]) -> str:
            return " ".join(shlex.quote(v) for v in _values(release, root, m.group(1)))

        return None, _PLACEHOLDER.sub(shell, template)
    argv: list[str] = []
    for item in template:
        names = _PLACEHOLDER.findall(item)
        if not names:
            argv.append(item)
            continue
        many = [n for n in names if len(_values(release, root, n)) != 1]
        if len(many) > 1:
            raise PlanError([f"stackCommand: {item!r} holds more than one list placeholder"])
        if any(not _values(release, root, n) for n in names):
            continue  # an absent value drops the whole item (its flag with it)
        expand = many[0] if many else names[0]
        for value in _values(release, root, expand):

            def one(m: re.Match[str], value: str = value, expand: str = expand) -> str:
                if m.group(1) == expand:
                    return value
                return _values(release, root, m.group(1))[0]

            argv.append(_PLACEHOLDER.sub(one, item))
    return argv, None
