"""Orchestration: plans and ktl stacks run as DAGs of child sessions (docs/plans.md).

- ``model``: the plan as data, graph checks, selection.
- ``loader`` / ``stack``: plan files and ktl stacks into plans.
- ``scheduler``: concurrency, pools, claims, budget, retries, fail-fast, cancel.
- ``runners``: where a node runs (a local PTY, or a Kubernetes Job: ``k8s_job``).
- ``worktree``: ``git worktree`` lanes for nodes with ``worktree: true``.
- ``run``: a plan run as a parent session with its record, and resume.
"""

from ktl_lsp.orchestration.loader import is_plan_file, is_stack_file, load
from ktl_lsp.orchestration.model import Plan, PlanError, PlanNode
from ktl_lsp.orchestration.run import PlanOptions, PlanRun
from ktl_lsp.orchestration.runners import LocalRunner, Runners, local_runners
from ktl_lsp.orchestration.scheduler import NodeRecord, PlanHooks, Scheduler

__all__ = [
    "LocalRunner",
    "NodeRecord",
    "Plan",
    "PlanError",
    "PlanHooks",
    "PlanNode",
    "PlanOptions",
    "PlanRun",
    "Runners",
    "Scheduler",
    "is_plan_file",
    "is_stack_file",
    "load",
    "local_runners",
]
