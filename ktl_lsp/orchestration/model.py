"""Plans: a DAG of commands, each node a child session of the plan's session.

A ``Plan`` is plain data, built from a plan file (``loader``) or a ktl stack (``stack``); the
scheduler never sees YAML. Graph checks use the same wording as the editor's diagnostics
(``checks/plan_file.py``), so a refused run says what the Problems panel says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ktl_lsp.errors import UserError
from ktl_lsp.graph import find_cycles

ClaimMode = Literal["exclusive", "shared"]
NodeState = Literal["pending", "running", "done", "failed", "skipped", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"done", "failed", "skipped", "cancelled"})
#: Node states that ``resume`` runs again.
RERUN_STATES: frozenset[str] = frozenset({"failed", "skipped", "cancelled", "pending", "running"})


class PlanError(UserError):
    """A plan that cannot run: every problem, one per line, in the diagnostics' wording."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Claim:
    path: str  #: a path glob (a directory claims everything below it)
    mode: ClaimMode = "exclusive"


@dataclass
class VerifyStep:
    """A node's ``verify:``: which objects, and the gate's settings (``k8s/verify.py``)."""

    resources: list[str]  #: Kind/name
    namespace: str | None = None
    context: str | None = None
    timeout_s: float = 120.0
    events_window_s: float = 900.0
    deny_reasons: list[str] = field(default_factory=list)
    allow_reasons: list[str] = field(default_factory=list)


@dataclass
class PlanNode:
    id: str
    argv: list[str] | None = None  #: run directly
    command: str | None = None  #: run through the user's shell
    cwd: str | None = None  #: absolute, resolved against the plan file's directory
    env: dict[str, str] = field(default_factory=dict)
    deps: list[str] = field(default_factory=list)
    tool: str | None = None
    claims: list[Claim] = field(default_factory=list)
    est_cost: float = 0.0
    #: Expected run time (``estDurationS``), for the scheduler's order; else earlier runs'.
    est_duration_s: float | None = None
    priority: int = 0
    retries: int = 0
    retry_backoff_s: float = 1.0
    timeout_s: float | None = None
    worktree: bool = False
    interactive: bool = False
    #: Wait for a person's yes before starting (the plan shows it as paused meanwhile).
    approve: bool = False
    runner: str = "local"
    #: Concurrency pools this node counts against (``tool:<t>``, ``namespace:<ns>``, ...).
    pools: list[str] = field(default_factory=list)
    #: ktl's verify gate instead of a command (``verify:`` of the plan file; runner "verify").
    verify: VerifyStep | None = None
    #: Runner-specific fields (``image``, ``resources`` for runner: kubernetes).
    extra: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        if self.verify is not None:
            return "ktl verify " + " ".join(self.verify.resources)
        if self.command is not None:
            return self.command
        return " ".join(self.argv or [])


@dataclass
class Plan:
    name: str
    nodes: list[PlanNode]
    source: str | None = None  #: the file it came from
    kind: Literal["plan", "stack"] = "plan"
    concurrency: int = 1
    budget: float | None = None
    #: pool -> maximum nodes of that pool running at once
    limits: dict[str, int] = field(default_factory=dict)
    fail_fast: bool = False
    #: What pauses the plan after a node, before its dependents start: "warning" (a line
    #: ``::ktl-pause <reason>`` in the node's output, a verify node's Warning finding).
    pause_on: list[str] = field(default_factory=list)
    #: Facts kept in the plan session's record (stack root, profile, ...).
    info: dict[str, Any] = field(default_factory=dict)

    def by_id(self) -> dict[str, PlanNode]:
        return {n.id: n for n in self.nodes}


def graph_problems(plan: Plan) -> list[str]:
    """Duplicate ids, unknown deps and cycles, worded as ``plan_file`` words them."""
    problems: list[str] = []
    seen: set[str] = set()
    for node in plan.nodes:
        if node.id in seen:
            problems.append(f'duplicate node id "{node.id}"')
        seen.add(node.id)
    edges: dict[str, list[str]] = {}
    for node in plan.nodes:
        for dep in node.deps:
            if dep not in seen:
                problems.append(f'node "{node.id}" depends on unknown node "{dep}"')
            else:
                edges.setdefault(node.id, []).append(dep)
    for cycle in find_cycles(list(dict.fromkeys(n.id for n in plan.nodes)), edges):
        problems.append("dependency cycle: " + " -> ".join([*cycle, cycle[0]]))
    return problems


def check_graph(plan: Plan) -> None:
    problems = graph_problems(plan)
    if problems:
        raise PlanError(problems)


def resolve_names(plan: Plan, wanted: Iterable[str]) -> list[str]:
    """Node ids for the names a user gave: an id, or (stacks) a release name if unambiguous."""
    ids = plan.by_id()
    out: list[str] = []
    problems: list[str] = []
    for name in wanted:
        if name in ids:
            out.append(name)
            continue
        matches = [n.id for n in plan.nodes if n.id.rsplit("/", 1)[-1] == name]
        if len(matches) == 1:
            out.append(matches[0])
        elif matches:
            problems.append(f'ambiguous node name "{name}" (matches {matches})')
        else:
            problems.append(f'unknown node "{name}"')
    if problems:
        raise PlanError(problems)
    return out


def select(plan: Plan, wanted: Iterable[str], with_deps: bool = True) -> Plan:
    """The plan restricted to ``wanted`` (plus everything they depend on when ``with_deps``).

    Without deps, edges to unselected nodes are dropped: the user asked for just these.
    """
    ids = plan.by_id()
    keep: set[str] = set()
    stack = resolve_names(plan, wanted)
    while stack:
        node_id = stack.pop()
        if node_id in keep:
            continue
        keep.add(node_id)
        if with_deps:
            stack.extend(d for d in ids[node_id].deps if d in ids)
    nodes: list[PlanNode] = []
    for node in plan.nodes:
        if node.id in keep:
            copy = PlanNode(**{**node.__dict__, "deps": [d for d in node.deps if d in keep]})
            nodes.append(copy)
    return Plan(**{**plan.__dict__, "nodes": nodes})


def dependents_of(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for node in plan.nodes:
        for dep in dict.fromkeys(node.deps):
            out.setdefault(dep, []).append(node.id)
    return out


def topo_order(plan: Plan) -> list[str]:
    """Kahn's order, ties in declaration order (the plan must be acyclic)."""
    remaining = {n.id: len(set(n.deps)) for n in plan.nodes}
    dependents: dict[str, list[str]] = {}
    for node in plan.nodes:
        for dep in set(node.deps):
            dependents.setdefault(dep, []).append(node.id)
    index = {n.id: i for i, n in enumerate(plan.nodes)}
    ready = sorted((i for i, c in remaining.items() if c == 0), key=index.__getitem__)
    order: list[str] = []
    while ready:
        current = ready.pop(0)
        order.append(current)
        for nxt in dependents.get(current, []):
            remaining[nxt] -= 1
            if remaining[nxt] == 0:
                ready.append(nxt)
        ready.sort(key=index.__getitem__)
    return order


def waves(plan: Plan) -> list[list[str]]:
    """Nodes grouped by depth: everything in wave k depends only on earlier waves."""
    depth: dict[str, int] = {}
    nodes = plan.by_id()
    for node_id in topo_order(plan):
        depth[node_id] = 1 + max((depth[d] for d in nodes[node_id].deps), default=-1)
    out: list[list[str]] = []
    for node_id, d in depth.items():
        while len(out) <= d:
            out.append([])
        out[d].append(node_id)
    return out
