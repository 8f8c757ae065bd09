"""The plan scheduler: starts ready nodes by priority within every limit, and winds down cleanly.

A node is *ready* when all its deps are done. Ready nodes are tried in order of ``priority``
(higher first), then the most work left once they start (``remaining_work``: the longest path
of durations through their dependents and through nodes their claims or pools serialize), then
declaration order; each starts unless something holds it back:

- ``concurrency``: nodes running at once (a node waiting for a retry keeps its slot);
- pools (``toolLimits``, stack namespace and parallelism-group limits): nodes of a pool at once;
- claims: an exclusive claim excludes every overlapping claim (glob overlap, not string
  equality); shared claims coexist;
- the budget: a node starts only if its ``estCost`` fits in what is left (actual costs replace
  estimates as nodes report ``::ktl-cost <n>``). When nothing runs and only the budget holds
  nodes back, the user is asked whether to raise it; no answer skips them;
- ``interactive`` nodes run one at a time (a person answers them).

Relative claims of ``worktree`` nodes live in their own lane and collide with nothing.
A blocked node does not hold back lower-priority nodes that fit. A failed node skips its
dependents (``skipped`` with the reason); with ``failFast`` no new node starts after the first
failure (running ones finish). Retries wait ``retryBackoffS * 2**(attempt-1)``. Cancelling the
run cancels every running node's session and waits for each to end before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ktl_lsp.globs import globs_overlap
from ktl_lsp.orchestration.model import (
    FINAL_STATES,
    Claim,
    Plan,
    PlanNode,
    dependents_of,
    topo_order,
)
from ktl_lsp.orchestration.runners import (
    LaunchContext,
    NodeExit,
    NodeHandle,
    Runners,
    preflight,
)
from ktl_lsp.orchestration.worktree import WorktreeError, lane_for
from ktl_lsp.pty.text import LineSplitter
from ktl_lsp.sessions.bus import Item
from ktl_lsp.sessions.model import Frame, FrameType, iso

COST_LINE = re.compile(r"^\s*::ktl-cost\s+(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
#: A node's reason while the plan waits for a person before it (or its dependents).
WAITING = "waiting for approval"
PAUSE_LINE = re.compile(r"^\s*::ktl-pause(?:\s+(.*?))?\s*$")
INTERACTIVE_POOL = "interactive"
#: What a shell exits with when the program is not found.
COMMAND_NOT_FOUND = 127


def now_ns() -> int:
    return time.time_ns()


@dataclass
class NodeRecord:
    """One node's run: what the command result and the plan session's record show."""

    id: str
    deps: list[str]
    state: str = "pending"
    attempts: int = 0
    session_id: str | None = None
    sessions: list[str] = field(default_factory=list)
    exit_code: int | None = None
    reason: str | None = None
    ready_ns: int | None = None  #: deps satisfied
    started_ns: int | None = None  #: first attempt started
    ended_ns: int | None = None
    trigger_ns: int | None = None  #: the event that let the scheduler start it
    waited_on: list[str] = field(default_factory=list)
    cost: float | None = None
    lane: dict[str, str] | None = None
    resumed_from: str | None = None  #: the earlier run whose result this carries over

    def wait(self, reason: str) -> None:
        if reason not in self.waited_on:
            self.waited_on.append(reason)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "state": self.state, "attempts": self.attempts}
        if self.session_id is not None:
            out["sessionId"] = self.session_id
        if self.exit_code is not None:
            out["exitCode"] = self.exit_code
        if self.reason:
            out["reason"] = self.reason
        return out

    def to_record(self) -> dict[str, Any]:
        """The fuller shape kept in the plan session's record (timeline, diff, resume)."""
        out = self.to_json()
        out["deps"] = list(self.deps)
        if len(self.sessions) > 1:
            out["sessions"] = list(self.sessions)
        for key, ns in (
            ("readyAt", self.ready_ns),
            ("startedAt", self.started_ns),
            ("endedAt", self.ended_ns),
        ):
            if ns is not None:
                out[key] = iso(ns)
        if self.started_ns is not None and self.ended_ns is not None:
            out["durationMs"] = (self.ended_ns - self.started_ns) // 1_000_000
        if self.ready_ns is not None and self.started_ns is not None:
            out["queuedMs"] = max(0, self.started_ns - self.ready_ns) // 1_000_000
        if self.waited_on:
            out["waitedOn"] = list(self.waited_on)
        if self.cost is not None:
            out["cost"] = self.cost
        if self.lane is not None:
            out["worktree"] = dict(self.lane)
        if self.resumed_from is not None:
            out["resumedFrom"] = self.resumed_from
        return out


@dataclass
class BudgetAsk:
    budget: float
    spent: float
    needed: float  #: the smallest estimate among the nodes held back
    nodes: list[str]

    @property
    def remaining(self) -> float:
        return self.budget - self.spent


class PlanHooks:
    """What the scheduler tells the outside world; the defaults do nothing and never raise."""

    def changed(self, record: NodeRecord) -> None:
        """A node changed state (or started another attempt)."""

    async def ask_budget(self, ask: BudgetAsk) -> float | None:
        """A new budget, or None to skip the nodes that do not fit."""
        return None

    def interactive(self, record: NodeRecord) -> None:
        """An interactive node started: someone must answer it (``record.session_id``)."""

    async def approve(self, record: NodeRecord, question: str) -> str | None:
        """Asks a person whether to go on; None is yes, else why not. Nobody to ask is a no."""
        return "nobody to approve it"


@dataclass
class _Running:
    record: NodeRecord
    node: PlanNode
    task: asyncio.Task[None]
    handle: NodeHandle | None = None
    pause: str | None = None  #: the reason of a ``::ktl-pause`` line it printed
    reported_cost: float | None = None


def _shared_claims(node: PlanNode) -> list[Claim]:
    """Claims that can collide with other nodes: a worktree node's relative paths are in its
    own lane, so only its absolute ones (a socket, a cache outside the repository) count."""
    if not node.worktree:
        return node.claims
    return [c for c in node.claims if c.path.startswith(("/", "~"))]


def _warned(warnings: list[str]) -> str | None:
    """The pause reason of a node that reported Warning-severity findings."""
    if not warnings:
        return None
    more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
    return f"warning {warnings[0]}{more}"


@functools.lru_cache(maxsize=65536)
def _overlap(a: str, b: str) -> bool:
    return globs_overlap(a, b)


def remaining_work(
    plan: Plan, durations: dict[str, float] | None = None, limits: dict[str, int] | None = None
) -> dict[str, float]:
    """For each node, how long the plan needs at least once it starts: its own duration, then
    the longest of its dependents' remaining work (the weighted critical path), the work that
    its exclusive claims keep from running beside it (one after another, with what depends on
    it), and the rest of each limited pool's work spread over the pool's limit.

    The classic critical-path priority, with conflicts counted as the chains they are: a node
    whose overlapping claim serializes another starts before free nodes of the same depth.
    Durations: ``estDurationS``, else ``durations`` (earlier runs), else their median (1 s).
    """
    durations = durations or {}
    known = [n.est_duration_s for n in plan.nodes if n.est_duration_s is not None]
    known += [durations[n.id] for n in plan.nodes if n.id in durations]
    default = sorted(known)[len(known) // 2] if known else 1.0
    weight = {
        n.id: n.est_duration_s if n.est_duration_s is not None else durations.get(n.id, default)
        for n in plan.nodes
    }
    dependents = dependents_of(plan)
    order = list(reversed(topo_order(plan)))
    bottom: dict[str, float] = {}
    for node_id in order:
        longest = max((bottom[d] for d in dependents.get(node_id, [])), default=0.0)
        bottom[node_id] = weight[node_id] + longest

    def below(node_id: str) -> float:
        return bottom[node_id] - weight[node_id]

    serial: dict[str, float] = {}
    claimed = [n for n in plan.nodes if _shared_claims(n)]
    for node in claimed:
        others = [
            m.id
            for m in claimed
            if m is not node
            and any(
                "exclusive" in (a.mode, b.mode) and _overlap(a.path, b.path)
                for a in _shared_claims(node)
                for b in _shared_claims(m)
            )
        ]
        if others:
            serial[node.id] = sum(weight[m] for m in others) + max(below(m) for m in others)
    limits = {**plan.limits, **(limits or {})}
    members: dict[str, list[str]] = {}
    for node in plan.nodes:
        for pool in Scheduler._pools(node):
            if limits.get(pool):
                members.setdefault(pool, []).append(node.id)
    nodes = plan.by_id()
    rank: dict[str, float] = {}
    for node_id in order:
        pooled = max(
            (
                sum(weight[m] for m in members[p] if m != node_id) / limits[p]
                for p in Scheduler._pools(nodes[node_id])
                if p in members
            ),
            default=0.0,
        )
        after = max((rank[d] for d in dependents.get(node_id, [])), default=0.0)
        rank[node_id] = weight[node_id] + max(after, serial.get(node_id, 0.0), pooled)
    return rank


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        runners: Runners,
        *,
        parent_id: str | None = None,
        concurrency: int | None = None,
        carried: dict[str, NodeRecord] | None = None,
        hooks: PlanHooks | None = None,
        listen: Callable[[Callable[[Item], None]], Callable[[], None]] | None = None,
        durations: dict[str, float] | None = None,
    ) -> None:
        self.plan = plan
        self.runners = runners
        self.parent_id = parent_id
        self.concurrency = max(1, concurrency or plan.concurrency)
        self.hooks = hooks or PlanHooks()
        self.nodes = plan.by_id()
        self.records: dict[str, NodeRecord] = {}
        for node in plan.nodes:
            kept = (carried or {}).get(node.id)
            self.records[node.id] = kept or NodeRecord(node.id, list(node.deps))
        self.budget = plan.budget
        self.spent = sum(r.cost or 0.0 for r in self.records.values() if r.state == "done")
        self.limits = {**plan.limits, INTERACTIVE_POOL: 1}
        #: What each node leaves to do once started: the longest first (`remaining_work`).
        self._rank = remaining_work(plan, durations, self.limits)
        self._index = {n.id: i for i, n in enumerate(plan.nodes)}
        self._running: dict[str, _Running] = {}
        self._wake = asyncio.Event()
        self._event_ns: int | None = None
        self._stopping: str | None = None  #: why no new node starts (failFast)
        self._listen = listen
        self._splitters: dict[str, tuple[str, LineSplitter]] = {}
        self.started_ns = now_ns()

    # public -------------------------------------------------------------------------------
    @property
    def running(self) -> list[str]:
        return [r for r in self._running if self.records[r].state == "running"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for record in self.records.values():
            out[record.state] = out.get(record.state, 0) + 1
        return out

    def cancel_node(self, node_id: str) -> None:
        """Cancels one node: its running session, or the node itself before it starts."""
        running = self._running.get(node_id)
        record = self.records[node_id]
        if running is not None:
            running.task.cancel()
        elif record.state == "pending":
            self._final(record, "cancelled", "cancelled before it started")
            self._poke(now_ns())

    async def run(self) -> dict[str, NodeRecord]:
        unlisten = self._listen(self._on_item) if self._listen is not None else None
        try:
            trigger = self.started_ns
            while True:
                self._propagate()
                self._pass(trigger)
                if not self._running:
                    pending = [r for r in self.records.values() if r.state == "pending"]
                    if not pending:
                        break
                    await self._stuck(pending)
                    trigger = now_ns()
                    continue
                await self._wake.wait()
                self._wake.clear()
                trigger = self._event_ns or now_ns()
                self._event_ns = None
        except asyncio.CancelledError:
            await self._cancel_all("plan cancelled")
            raise
        finally:
            if unlisten is not None:
                unlisten()
        return self.records

    # scheduling ---------------------------------------------------------------------------
    def _propagate(self) -> None:
        for node in self.plan.nodes:
            record = self.records[node.id]
            if record.state != "pending":
                continue
            for dep in node.deps:
                dep_state = self.records[dep].state
                if dep_state in ("failed", "skipped", "cancelled"):
                    verb = {"failed": "failed", "skipped": "was skipped"}.get(
                        dep_state, "was cancelled"
                    )
                    self._final(record, "skipped", f'dependency "{dep}" {verb}')
                    break

    def _ready(self) -> list[NodeRecord]:
        out: list[NodeRecord] = []
        for record in self.records.values():
            if record.state != "pending":
                continue
            if all(self.records[d].state == "done" for d in record.deps):
                if record.ready_ns is None:
                    record.ready_ns = max(
                        (self.records[d].ended_ns or self.started_ns for d in record.deps),
                        default=self.started_ns,
                    )
                    record.ready_ns = max(record.ready_ns, self.started_ns)
                out.append(record)
        out.sort(
            key=lambda r: (
                -self.nodes[r.id].priority,
                -self._rank.get(r.id, 0.0),
                self._index[r.id],
            )
        )
        return out

    def _pass(self, trigger: int) -> None:
        if self._stopping is not None:
            for record in self.records.values():
                if record.state == "pending":
                    self._final(record, "skipped", self._stopping)
            return
        for record in self._ready():
            if len(self._running) >= self.concurrency:
                record.wait("concurrency")
                continue
            blocker = self._blocker(self.nodes[record.id])
            if blocker is not None:
                record.wait(blocker)
                continue
            self._start(record, trigger)

    def _blocker(self, node: PlanNode) -> str | None:
        for pool in self._pools(node):
            limit = self.limits.get(pool)
            if limit is not None:
                used = sum(1 for r in self._running.values() if pool in self._pools(r.node))
                if used >= limit:
                    return pool
        for claim in _shared_claims(node):
            for other in self._running.values():
                for held in _shared_claims(other.node):
                    if "exclusive" in (claim.mode, held.mode) and _overlap(claim.path, held.path):
                        return f"claim:{other.node.id}"
        if (
            self.budget is not None
            and node.est_cost > 0
            and self.spent + self._reserved() + node.est_cost > self.budget + 1e-9
        ):
            return "budget"
        return None

    @staticmethod
    def _pools(node: PlanNode) -> list[str]:
        return [*node.pools, INTERACTIVE_POOL] if node.interactive else node.pools

    def _reserved(self) -> float:
        return sum(
            r.reported_cost if r.reported_cost is not None else r.node.est_cost
            for r in self._running.values()
        )

    async def _stuck(self, pending: list[NodeRecord]) -> None:
        """Nothing runs, yet nodes wait: only the budget can do that. Ask, or skip them."""
        ready = self._ready()
        held = [r for r in ready if self._blocker(self.nodes[r.id]) == "budget"]
        if held and self.budget is not None:
            needed = min(self.nodes[r.id].est_cost for r in held)
            ask = BudgetAsk(self.budget, self.spent, needed, [r.id for r in held])
            try:
                raised = await self.hooks.ask_budget(ask)
            except asyncio.CancelledError:
                raise
            except Exception:
                raised = None
            if raised is not None and raised > self.budget:
                self.budget = raised
                return
            for record in held:
                cost = self.nodes[record.id].est_cost
                self._final(
                    record,
                    "skipped",
                    f"over budget: needs {cost:g}, {max(0.0, ask.remaining):g} of "
                    f"{self.budget:g} left",
                )
            return
        for record in ready or pending:  # pragma: no cover - a guard, not a path
            self._final(record, "skipped", "could not start: " + ", ".join(record.waited_on))

    def _start(self, record: NodeRecord, trigger: int) -> None:
        node = self.nodes[record.id]
        record.state = "running"
        record.trigger_ns = trigger
        record.exit_code = None
        record.reason = None
        running = _Running(
            record, node, asyncio.get_running_loop().create_task(self._drive(record))
        )
        self._running[record.id] = running
        running.task.set_name(f"plan-node-{record.id}")

    # one node -----------------------------------------------------------------------------
    async def _drive(self, record: NodeRecord) -> None:
        node = self.nodes[record.id]
        runner = self.runners.get(node.runner)
        running = self._running[record.id]
        try:
            cwd = node.cwd
            if node.worktree:
                try:
                    lane = await lane_for(self.plan.name, node.id, cwd or ".")
                except WorktreeError as exc:
                    self._end(record, "failed", str(exc))
                    return
                record.lane = {"branch": lane.branch, "path": lane.path}
                cwd = lane.cwd
            problem = await preflight(runner, node, cwd)
            if problem is not None:
                self._end(record, "failed", problem)
                return
            if node.approve:
                refused = await self._ask(record, f"Start {node.id} of plan {self.plan.name}?")
                if refused is not None:
                    self._end(record, "skipped", refused)
                    return
            attempt = 0
            while True:
                attempt += 1
                record.attempts += 1
                handle = runner.start(node, self._context(node, record, cwd))
                running.handle = handle
                self._splitters[handle.session_id] = (node.id, LineSplitter())
                record.session_id = handle.session_id
                record.sessions.append(handle.session_id)
                record.reason = None
                if record.started_ns is None:
                    record.started_ns = now_ns()
                self.hooks.changed(record)
                if node.interactive:
                    self.hooks.interactive(record)
                result = await handle.wait()
                running.handle = None
                self._add_cost(running, handle.session_id)
                if result.state == "done":
                    pause = running.pause or _warned(result.warnings)
                    if pause is not None and "warning" in self.plan.pause_on:
                        refused = await self._ask(
                            record,
                            f"{node.id} of plan {self.plan.name} paused: {pause}. Continue?",
                        )
                        if refused is not None and self._stopping is None:
                            self._stopping = (
                                f"not started: plan stopped after {node.id} ({refused})"
                            )
                    self._end(record, "done", None, result, handle)
                    return
                missing = node.command is not None and result.exit_code == COMMAND_NOT_FOUND
                if missing:
                    result.error = f"exit {COMMAND_NOT_FOUND} (command not found)"
                if (
                    result.state == "cancelled"
                    or attempt > node.retries
                    or self._stopping
                    or missing  # retrying cannot make a missing program appear
                ):
                    state = "cancelled" if result.state == "cancelled" else "failed"
                    self._end(record, state, result.error, result, handle)
                    return
                record.exit_code = result.exit_code
                backoff = node.retry_backoff_s * 2 ** (attempt - 1)
                record.reason = f"attempt {attempt} failed: {result.error}; retry in {backoff:g}s"
                self.hooks.changed(record)
                await asyncio.sleep(backoff)
        except asyncio.CancelledError:
            current = running.handle
            if current is not None:
                current.cancel()
                result = await current.wait()
                self._add_cost(running, current.session_id)
                self._end(record, "cancelled", "cancelled", result, current)
            else:
                self._end(record, "cancelled", "cancelled")
        except Exception as exc:  # a runner bug must not hang the plan
            self._end(record, "failed", f"could not run: {exc}")

    async def _ask(self, record: NodeRecord, question: str) -> str | None:
        """Holds the node (its slot too) until a person answers; None is yes."""
        record.reason = WAITING
        record.wait("approval")
        self.hooks.changed(record)
        try:
            return await self.hooks.approve(record, question)
        finally:
            record.reason = None

    def _context(self, node: PlanNode, record: NodeRecord, cwd: str | None) -> LaunchContext:
        env = {
            "KTL_PLAN": self.plan.name,
            "KTL_PLAN_NODE": node.id,
            "KTL_PLAN_ATTEMPT": str(record.attempts),
        }
        if self.parent_id:
            env["KTL_PLAN_SESSION"] = self.parent_id
        title = f"{self.plan.name}/{node.id}"
        if record.attempts > 1:
            title += f" (attempt {record.attempts})"
        meta: dict[str, object] = {"plan": self.plan.name, "node": node.id, **node.meta}
        if node.meta.get("release"):
            meta["release"] = node.meta["release"]
        return LaunchContext(
            plan_name=self.plan.name,
            parent_id=self.parent_id,
            attempt=record.attempts,
            cwd=cwd,
            env=env,
            title=title,
            tags={"plan": self.plan.name, "node": node.id},
            meta=meta,
        )

    def _end(
        self,
        record: NodeRecord,
        state: str,
        reason: str | None,
        result: NodeExit | None = None,
        handle: NodeHandle | None = None,
    ) -> None:
        ended_run = self._running.pop(record.id, None)
        if ended_run is not None and (
            ended_run.reported_cost is not None or ended_run.node.est_cost
        ):
            spent = ended_run.reported_cost
            record.cost = spent if spent is not None else ended_run.node.est_cost
            self.spent += record.cost
        if result is not None:
            record.exit_code = result.exit_code
        ended = handle.session.ended_ns if handle is not None else None
        self._final(record, state, reason if state != "done" else None, ended)
        if state == "failed" and self.plan.fail_fast and self._stopping is None:
            self._stopping = f'not started: failFast after "{record.id}" failed'
        self._poke(record.ended_ns or now_ns())

    def _final(
        self, record: NodeRecord, state: str, reason: str | None, ended: int | None = None
    ) -> None:
        record.state = state
        record.reason = reason
        record.ended_ns = ended or now_ns()
        self.hooks.changed(record)

    def _poke(self, ns: int) -> None:
        if self._event_ns is None or ns < self._event_ns:
            self._event_ns = ns
        self._wake.set()

    async def _cancel_all(self, reason: str) -> None:
        for running in list(self._running.values()):
            running.task.cancel()
        tasks = [r.task for r in self._running.values()]
        if tasks:
            # Each node task cancels its session and waits for the process group to end.
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        for record in self.records.values():
            if record.state not in FINAL_STATES:
                self._final(record, "cancelled", reason)

    # costs --------------------------------------------------------------------------------
    def _on_item(self, item: Item) -> None:
        """Bus listener: ``::ktl-cost <n>`` lines in any running node's output."""
        if not isinstance(item, Frame) or item.type is not FrameType.OUTPUT:
            return
        entry = self._splitters.get(item.session_id)
        if entry is None:
            return
        node_id, splitter = entry
        found = self._running.get(node_id)
        if found is not None:
            for line in splitter.feed(item.text()):
                self._cost_line(found, line)

    def _add_cost(self, running: _Running, session_id: str) -> None:
        entry = self._splitters.pop(session_id, None)
        if entry is not None:
            self._cost_line(running, entry[1].current())

    @staticmethod
    def _cost_line(running: _Running, line: str) -> None:
        m = COST_LINE.match(line)
        if m:
            running.reported_cost = (running.reported_cost or 0.0) + float(m.group(1))
            return
        p = PAUSE_LINE.match(line)
        if p:
            running.pause = p.group(1) or "the node asked to pause"
