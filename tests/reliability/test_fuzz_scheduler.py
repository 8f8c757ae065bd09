"""Fuzzing the plan scheduler: random DAGs, claims, pools, budgets, retries and failures.

A fake runner (the scheduler's ``Runners`` hook; no process) checks every rule at the moment a
node starts, with oracles independent of the scheduler's own code where possible (claims are
checked with concrete witness paths, not with ``globs_overlap``):

- a node starts only after all its deps ended ``done``;
- never more than ``concurrency`` nodes run; never more than a pool's limit in that pool;
  interactive nodes one at a time;
- two running nodes never hold claims that both match a common path unless both are shared;
- spent + reserved estimated cost never exceeds the budget;
- with ``failFast`` nothing starts after the first failure.

And at the end (the run must finish: no deadlock, bounded by a timeout): every node is in a
final state, ``done`` only with all deps done, ``skipped`` ones never started, attempts within
``retries + 1``, and a cancelled run leaves nothing running.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ktl_lsp.orchestration.model import FINAL_STATES, Claim, Plan, PlanNode
from ktl_lsp.orchestration.runners import LaunchContext, NodeExit, Runners
from ktl_lsp.orchestration.scheduler import BudgetAsk, PlanHooks, Scheduler
from tests.reliability.conftest import count

CLAIM_GLOBS = [
    "src", "src/**", "src/*.py", "src/a.py", "src/[ab].py", "src/app/*.bin", "docs",
    "docs/*.md", "out/**/x", "*.py", "/tmp/ktl.sock", "**", "?oc?/*",
]  # fmt: skip
WITNESSES = [
    "src/a.py", "src/b.py", "src/c.md", "src/app/z.bin", "src/app/deep/q.py", "docs/r.md",
    "docs/sub/r.md", "out/x", "out/y/x", "top.py", "/tmp/ktl.sock", "docs", "src",
]  # fmt: skip


def _glob_regex(glob: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        elif glob[i] == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            out, i = out + "[" + glob[i + 1 : end] + "]", end + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out)


def claims_path(glob: str, path: str) -> bool:
    """The glob covers ``path`` (itself or a directory above it)."""
    rx = _glob_regex(glob)
    parts = path.split("/")
    return any(rx.fullmatch("/".join(parts[:k])) for k in range(1, len(parts) + 1))


def witness_overlap(a: str, b: str) -> bool:
    return any(claims_path(a, w) and claims_path(b, w) for w in WITNESSES)


@dataclass
class Attempt:
    ticks: int
    ok: bool


@dataclass
class Checker:
    plan: Plan
    concurrency: int
    budget: float | None
    running: dict[str, PlanNode] = field(default_factory=dict)
    ended_ok: set[str] = field(default_factory=set)
    ended_cost: float = 0.0
    started: dict[str, int] = field(default_factory=dict)
    failed_seen: bool = False
    attempt_live: set[str] = field(default_factory=set)  #: an attempt (a process) is running
    #: Nodes the scheduler had already decided to start when the first failure happened.
    decided: set[str] = field(default_factory=set)
    scheduler: Scheduler | None = None
    violations: list[str] = field(default_factory=list)

    def on_start(self, node: PlanNode) -> None:
        bad = self.violations.append
        for dep in node.deps:
            if dep not in self.ended_ok:
                bad(f"{node.id} started before dep {dep} was done")
        if node.id not in self.running and len(self.running) >= self.concurrency:
            bad(f"{node.id} started with {len(self.running)} running (limit {self.concurrency})")
        pools = [*node.pools, *(["interactive"] if node.interactive else [])]
        limits = {**self.plan.limits, "interactive": 1}
        for pool in pools:
            if pool in limits:
                used = sum(
                    1
                    for other in self.running.values()
                    if other.id != node.id
                    and pool in [*other.pools, *(["interactive"] if other.interactive else [])]
                )
                if used >= limits[pool]:
                    bad(f"{node.id} started with {used} in pool {pool} (limit {limits[pool]})")
        for other in self.running.values():
            if other.id == node.id:
                continue
            for c in node.claims:
                for h in other.claims:
                    exclusive = "exclusive" in (c.mode, h.mode)
                    if exclusive and witness_overlap(c.path, h.path):
                        bad(f"{node.id} claim {c} overlaps running {other.id} claim {h}")
        if self.budget is not None and node.est_cost > 0 and node.id not in self.running:
            reserved = sum(n.est_cost for n in self.running.values())
            if self.ended_cost + reserved + node.est_cost > self.budget + 1e-9:
                bad(f"{node.id} started over budget")
        if self.plan.fail_fast and self.failed_seen and node.id not in self.decided:
            bad(f"{node.id} started after a failure with failFast")
        self.running[node.id] = node
        self.attempt_live.add(node.id)
        self.started[node.id] = self.started.get(node.id, 0) + 1

    def on_end(self, node: PlanNode, ok: bool, final_attempt: bool) -> None:
        self.attempt_live.discard(node.id)
        if not final_attempt:
            return
        self.running.pop(node.id, None)
        self.ended_cost += node.est_cost
        if ok:
            self.ended_ok.add(node.id)
        elif not self.failed_seen:
            self.failed_seen = True
            assert self.scheduler is not None
            self.decided = {i for i, r in self.scheduler.records.items() if r.state == "running"}


class FakeHandle:
    def __init__(
        self, checker: Checker, node: PlanNode, attempt: Attempt, final: bool, sid: str
    ) -> None:
        self.checker, self.node, self.attempt, self.final = checker, node, attempt, final
        self._sid = sid
        self._cancelled = False
        self._session = SimpleNamespace(ended_ns=None)

    @property
    def session_id(self) -> str:
        return self._sid

    @property
    def session(self) -> Any:
        return self._session

    async def wait(self) -> NodeExit:
        # ticks >= 1: a real session never ends without giving the loop a turn.
        for _ in range(self.attempt.ticks):
            if self._cancelled:
                break
            await asyncio.sleep(0)
        if self._cancelled:
            self.checker.on_end(self.node, False, True)
            return NodeExit("cancelled", 130, "cancelled")
        # A failed attempt that will be retried keeps the node's slot: not an end.
        last = self.attempt.ok or self.final
        self.checker.on_end(self.node, self.attempt.ok, last)
        return NodeExit("done", 0) if self.attempt.ok else NodeExit("failed", 1, "exit 1")

    def cancel(self) -> None:
        self._cancelled = True


class FakeRunner:
    def __init__(self, checker: Checker, script: dict[str, list[Attempt]]) -> None:
        self.checker = checker
        self.script = script
        self.n = 0

    def preflight(self, node: PlanNode, cwd: str | None) -> None:
        return None

    def start(self, node: PlanNode, ctx: LaunchContext) -> FakeHandle:
        self.checker.on_start(node)
        attempts = self.script[node.id]
        attempt = attempts[min(ctx.attempt, len(attempts)) - 1]
        final = ctx.attempt > node.retries
        self.n += 1
        return FakeHandle(self.checker, node, attempt, final, f"s{self.n}")


class Decline(PlanHooks):
    def __init__(self) -> None:
        self.asked: list[BudgetAsk] = []

    async def ask_budget(self, ask: BudgetAsk) -> float | None:
        self.asked.append(ask)
        return None


@st.composite
def plans(draw: st.DrawFn) -> tuple[Plan, dict[str, list[Attempt]], int | None]:
    n = draw(st.integers(1, 14))
    tools = ["a", "b", "c"]
    nodes: list[PlanNode] = []
    script: dict[str, list[Attempt]] = {}
    for i in range(n):
        deps = sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
        claims = [
            Claim(
                draw(st.sampled_from(CLAIM_GLOBS)), draw(st.sampled_from(["exclusive", "shared"]))
            )
            for _ in range(draw(st.integers(0, 2)))
        ]
        tool = draw(st.one_of(st.none(), st.sampled_from(tools)))
        retries = draw(st.integers(0, 2))
        nodes.append(
            PlanNode(
                id=f"n{i}",
                argv=["true"],
                deps=[f"n{d}" for d in deps],
                tool=tool,
                pools=[f"tool:{tool}"] if tool else [],
                claims=claims,
                est_cost=draw(st.sampled_from([0.0, 0.0, 1.0, 2.5])),
                priority=draw(st.integers(-2, 2)),
                retries=retries,
                retry_backoff_s=0.0,
                interactive=draw(st.booleans()) and draw(st.booleans()),
            )
        )
        script[f"n{i}"] = [
            Attempt(draw(st.integers(1, 6)), draw(st.booleans()) or draw(st.booleans()))
            for _ in range(retries + 1)
        ]
    plan = Plan(
        name="fuzz",
        nodes=nodes,
        concurrency=draw(st.integers(1, 5)),
        budget=draw(st.one_of(st.none(), st.sampled_from([2.0, 4.0, 10.0]))),
        limits={f"tool:{t}": draw(st.integers(1, 2)) for t in tools if draw(st.booleans())},
        fail_fast=draw(st.booleans()),
    )
    cancel_after = draw(st.one_of(st.none(), st.none(), st.integers(1, 30)))
    return plan, script, cancel_after


async def drive(plan: Plan, script: dict[str, list[Attempt]], cancel_after: int | None) -> None:
    checker = Checker(plan, plan.concurrency, plan.budget)
    runner = FakeRunner(checker, script)
    scheduler = Scheduler(plan, Runners(runner), hooks=Decline())  # type: ignore[arg-type]
    checker.scheduler = scheduler
    task = asyncio.ensure_future(scheduler.run())
    cancelled = False
    if cancel_after is not None:
        for _ in range(cancel_after):
            await asyncio.sleep(0)
        if not task.done():
            task.cancel()
            cancelled = True
    try:
        await asyncio.wait_for(task, 10)  # a deadlock fails here
    except asyncio.CancelledError:
        assert cancelled
    assert not checker.violations, checker.violations
    records = scheduler.records
    by_id = plan.by_id()
    for node_id, record in records.items():
        node = by_id[node_id]
        assert record.state in FINAL_STATES, (node_id, record.state)
        assert record.attempts <= node.retries + 1
        assert record.attempts == checker.started.get(node_id, 0)
        if record.state == "done":
            assert all(records[d].state == "done" for d in node.deps)
            assert script[node_id][record.attempts - 1].ok
        if record.state == "skipped":
            assert record.attempts == 0 and record.reason
        if record.state == "failed":
            assert not cancelled or record.attempts > 0
        if any(records[d].state in ("failed", "skipped", "cancelled") for d in node.deps):
            assert record.state in ("skipped", "cancelled"), (node_id, record.state)
    assert not scheduler.running
    if cancelled:
        assert not checker.attempt_live, "a cancelled run left attempts running"


@settings(max_examples=250, deadline=None)
@given(plans())
def test_no_rule_is_ever_violated_and_every_run_ends(
    case: tuple[Plan, dict[str, list[Attempt]], int | None],
) -> None:
    count("plan scheduler")
    asyncio.run(drive(*case))


def test_witness_oracle_agrees_with_known_pairs() -> None:
    assert witness_overlap("src/**", "src/app/*.bin")
    assert witness_overlap("src", "src/a.py")
    assert not witness_overlap("src/*.py", "docs/*.md")
    assert witness_overlap("**", "/tmp/ktl.sock")
    assert not witness_overlap("src/[ab].py", "*.py")
