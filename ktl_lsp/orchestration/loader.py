"""Reading plans: plan files (``*.plan.yaml``, ``*.plan.json``, ``ktl-plan.yaml``) and ktl stacks.

A plan file is checked by the same code the editor's diagnostics use (the shipped JSON Schema,
then ids, deps and cycles); any error refuses the run with the diagnostic's own message and
position, so the editor and the run never disagree about what is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ktl_lsp.checks.findings import Finding
from ktl_lsp.checks.plan_file import check_plan
from ktl_lsp.checks.stack_shapes import STACK_NAMES
from ktl_lsp.documents.yaml_parse import parse_text
from ktl_lsp.orchestration.model import Claim, Plan, PlanError, PlanNode, VerifyStep, check_graph

PLAN_SUFFIXES = (".plan.yaml", ".plan.yml", ".plan.json")
PLAN_NAMES = ("ktl-plan.yaml", "ktl-plan.yml")
#: Default pause between a failed attempt and the next one.
DEFAULT_BACKOFF_S = 1.0
#: Nodes running at once when a plan file does not say.
DEFAULT_CONCURRENCY = max(1, os.cpu_count() or 1)


def is_plan_file(path: Path) -> bool:
    return path.name in PLAN_NAMES or path.name.endswith(PLAN_SUFFIXES)


def is_stack_file(path: Path) -> bool:
    return path.name in STACK_NAMES


def describe(path: Path, finding: Finding) -> str:
    start = finding.range.start
    return f"{path}:{start.line + 1}:{start.character + 1}: {finding.message}"


def load(
    path: Path,
    stack_command: list[str] | str | None = None,
    profile: str | None = None,
) -> Plan:
    """The plan in ``path`` (a plan file or a ktl stack.yaml); ``PlanError`` when it cannot run."""
    path = path.expanduser().resolve()
    if is_stack_file(path):
        from ktl_lsp.orchestration.stack import stack_plan

        return stack_plan(path, stack_command, profile)
    if not is_plan_file(path):
        raise PlanError(
            [
                f"{path}: not a plan file or a ktl stack "
                "(expected *.plan.yaml, *.plan.json, ktl-plan.yaml or stack.yaml)"
            ]
        )
    return load_plan_text(path, _read(path))


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise PlanError([f"{path}: no such file"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([f"{path}: cannot read: {exc}"]) from exc


def load_plan_text(path: Path, text: str) -> Plan:
    parsed = parse_text(text)
    problems = [f"{path}:{p.range.start.line + 1}: {p.message}" for p in parsed.problems]
    for document in parsed.documents[:1]:
        problems.extend(
            f"{path}:{p.range.start.line + document.start_line + 1}: {p.message}"
            for p in document.chunk.problems
            if p.severity == "error"
        )
    problems.extend(describe(path, f) for f in check_plan(parsed) if f.severity == "error")
    if not parsed.documents or parsed.documents[0].root is None:
        problems.append(f"{path}: the plan is empty")
    if problems:
        raise PlanError(problems)
    try:
        data = next(iter(yaml.safe_load_all(text)), None)
    except yaml.YAMLError as exc:  # pragma: no cover - parse_text found it first
        raise PlanError([f"{path}: {exc}"]) from exc
    if not isinstance(data, dict):
        raise PlanError([f"{path}: expected a mapping at the top level"])
    plan = plan_from_data(data, path)
    check_graph(plan)
    return plan


def plan_from_data(data: dict[str, Any], path: Path) -> Plan:
    """A schema-valid plan document as a ``Plan`` (relative ``cwd`` against the file's folder)."""
    base = path.parent
    name = str(data.get("name") or _default_name(path))
    tool_limits = {f"tool:{k}": int(v) for k, v in (data.get("toolLimits") or {}).items()}
    nodes: list[PlanNode] = []
    for item in data.get("nodes") or []:
        run = item.get("run")
        cwd = item.get("cwd")
        node = PlanNode(
            id=str(item["id"]),
            argv=[str(a) for a in run] if isinstance(run, list) else None,
            command=run if isinstance(run, str) else None,
            cwd=str((base / os.path.expanduser(cwd)).resolve()) if cwd else str(base),
            env={str(k): _env_text(v) for k, v in (item.get("env") or {}).items()},
            deps=[str(d) for d in item.get("deps") or []],
            tool=item.get("tool"),
            claims=[
                Claim(str(c["path"]), c.get("mode", "exclusive")) for c in item.get("claims") or []
            ],
            est_cost=float(item.get("estCost") or 0),
            est_duration_s=(
                float(item["estDurationS"]) if item.get("estDurationS") is not None else None
            ),
            priority=int(item.get("priority") or 0),
            retries=int(item.get("retries") or 0),
            retry_backoff_s=float(item.get("retryBackoffS", DEFAULT_BACKOFF_S)),
            timeout_s=float(item["timeoutS"]) if item.get("timeoutS") is not None else None,
            worktree=bool(item.get("worktree")),
            interactive=bool(item.get("interactive")),
            approve=bool(item.get("approve")),
            runner=str(item.get("runner") or "local"),
            extra={k: item[k] for k in ("image", "resources", "namespace") if k in item},
            verify=_verify_step(item.get("verify")),
        )
        if node.verify is not None:
            node.runner = "verify"
        if node.tool:
            node.pools.append(f"tool:{node.tool}")
        nodes.append(node)
    budget = data.get("budget")
    return Plan(
        name=name,
        nodes=nodes,
        source=str(path),
        concurrency=int(data.get("concurrency") or DEFAULT_CONCURRENCY),
        budget=float(budget) if budget is not None else None,
        limits=tool_limits,
        fail_fast=bool(data.get("failFast")),
        pause_on=[str(x) for x in data.get("pauseOn") or []],
    )


def _verify_step(data: Any) -> VerifyStep | None:
    if not isinstance(data, dict):
        return None
    return VerifyStep(
        resources=[str(r) for r in data.get("resources") or []],
        namespace=data.get("namespace"),
        context=data.get("context"),
        timeout_s=float(data.get("timeoutS", 120.0)),
        events_window_s=float(data.get("eventsWindowS", 900.0)),
        deny_reasons=[str(r) for r in data.get("denyReasons") or []],
        allow_reasons=[str(r) for r in data.get("allowReasons") or []],
    )


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _default_name(path: Path) -> str:
    name = path.name
    for suffix in PLAN_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.parent.name or "plan"
