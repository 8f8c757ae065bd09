"""What each release of a stack was inferred to need, for the editor (CodeLens, navigation).

The plan is the one ``stack_plan`` builds, so the editor shows the needs a run would use. Planning
renders every chart; ``StackNeeds`` keeps the last plan of each stack until a stack file or a
file of one of its charts changes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ktl_lsp.checks.stack_graph import discover_stack_files
from ktl_lsp.orchestration.infer_deps import Reason
from ktl_lsp.orchestration.model import Plan, PlanError
from ktl_lsp.orchestration.stack import stack_plan


def inferred_needs_of(plan: Plan, release: str) -> list[tuple[str, str]]:
    """(needed release, why) for each reason a stack release (a name or an id) needs another,
    in the order ``inferredNeeds`` lists them."""
    out: list[tuple[str, str]] = []
    for node in plan.nodes:
        if release not in (node.id, node.meta.get("release")):
            continue
        for need in node.meta.get("inferredNeeds") or []:
            for reason in need["reasons"]:
                out.append(
                    (need["name"], Reason(reason["type"], reason["evidence"]).text(need["name"]))
                )
    return out


Fingerprint = tuple[tuple[str, int, int], ...]


def _fingerprint(files: list[Path], charts: list[Path]) -> Fingerprint:
    seen: list[tuple[str, int, int]] = []
    paths = list(files)
    for chart in charts:
        if chart.is_dir():
            for directory, _, names in os.walk(chart):
                paths += [Path(directory) / n for n in names]
        else:
            paths.append(chart)
    for path in sorted(paths):
        try:
            stat = path.stat()
        except OSError:
            seen.append((str(path), -1, -1))
            continue
        seen.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(seen)


class StackNeeds:
    """The last plan of each stack root, kept while its inputs on disk are unchanged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[Path, tuple[Fingerprint, list[Path], Plan | None]] = {}

    def plan(self, stack: Path) -> Plan | None:
        """The stack's plan with its inferred needs; None when the stack cannot be planned
        (the diagnostics say why). Blocking: call it from a worker thread."""
        root = stack.parent
        with self._lock:
            cached = self._plans.get(root)
        files = discover_stack_files(root)
        if cached is not None:
            fingerprint, charts, plan = cached
            if _fingerprint(files, charts) == fingerprint:
                return plan
        try:
            plan = stack_plan(stack, ["true"])
        except PlanError:
            plan = None
        charts = sorted(
            {Path(str(n.meta["chart"])) for n in plan.nodes if "://" not in str(n.meta["chart"])}
            if plan
            else set()
        )
        with self._lock:
            self._plans[root] = (_fingerprint(files, charts), charts, plan)
        return plan
