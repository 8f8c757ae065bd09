"""Scheduler figures on a generated 200-node DAG with random durations.

1. Makespan vs the lower bound for the given concurrency, max(critical path, total work / c):
   no schedule can beat it. Nodes are real processes (``sleep d`` in a PTY, recorded sessions)
   or, with ``--runner task``, task sessions that sleep in the loop (no process: the
   scheduler alone). The bound is computed from the nominal durations and, for the PTY runner,
   also from each node's measured session duration (a process costs a few ms to start and
   reap, which no scheduler can remove).
2. Overhead per node: from the moment its last blocker ended (the session end that let it
   start: its last dep, or the node whose slot it took) to its spawn (the PTY process
   started; for tasks, the session created). Median and p95.
3. ``--claims``: the plan where two nodes' exclusive claims overlap (a chain no ``deps`` show),
   against the best schedule found by trying every order in simulated time.

By default nodes carry no priorities (the scheduler breaks ties by the work left below each
node, durations equal); ``--priorities`` sets each node's priority to its bottom level in ms (what a
plan author who knows durations would write), which is the classic critical-path heuristic.

    .venv/bin/python bench/bench_scheduler.py [--nodes 200] [--concurrency 8] [--runner pty|task]
    .venv/bin/python bench/bench_scheduler.py --claims [--seconds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ktl_lsp.sessions.manager as manager_module
from ktl_lsp.globs import globs_overlap
from ktl_lsp.orchestration.model import Claim, Plan, PlanNode
from ktl_lsp.orchestration.runners import (
    LaunchContext,
    LocalRunner,
    NodeHandle,
    Runners,
    SessionHandle,
)
from ktl_lsp.orchestration.scheduler import Scheduler
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, TaskOutcome

SPAWNED: dict[str, int] = {}


def patch_spawn() -> None:
    """Record when each PTY process has started (bench only)."""
    original = manager_module.spawn

    async def timed(spec: Any, sink: Any) -> Any:
        pty = await original(spec, sink)
        SPAWNED[sink.session.id] = time.time_ns()
        return pty

    manager_module.spawn = timed  # type: ignore[assignment]


def generate(n: int, seed: int, lo: float, hi: float) -> tuple[list[PlanNode], dict[str, float]]:
    rng = random.Random(seed)
    nodes: list[PlanNode] = []
    durations: dict[str, float] = {}
    for i in range(n):
        node_id = f"n{i:03d}"
        window = list(range(max(0, i - 30), i))
        k = min(len(window), rng.choice([0, 1, 1, 2, 2, 3]))
        deps = [f"n{j:03d}" for j in sorted(rng.sample(window, k))]
        d = round(rng.uniform(lo, hi), 3)
        durations[node_id] = d
        nodes.append(PlanNode(node_id, argv=["sleep", f"{d}"], deps=deps))
    return nodes, durations


def bottom_levels(nodes: list[PlanNode], durations: dict[str, float]) -> dict[str, float]:
    dependents: dict[str, list[str]] = {}
    for node in nodes:
        for dep in node.deps:
            dependents.setdefault(dep, []).append(node.id)
    out: dict[str, float] = {}
    for node in reversed(nodes):  # generated in topological order
        out[node.id] = durations[node.id] + max(
            (out[d] for d in dependents.get(node.id, [])), default=0
        )
    return out


def bound(nodes: list[PlanNode], durations: dict[str, float], c: int) -> tuple[float, float, float]:
    cp = max(bottom_levels(nodes, durations).values())
    work = sum(durations.values())
    return max(cp, work / c), cp, work


class TaskRunner:
    """Nodes as task sessions that sleep: the scheduler and session bookkeeping, no process."""

    def __init__(self, manager: SessionManager, durations: dict[str, float]) -> None:
        self.manager = manager
        self.durations = durations

    def preflight(self, node: PlanNode, cwd: str | None) -> str | None:
        return None

    def start(self, node: PlanNode, ctx: LaunchContext) -> NodeHandle:
        d = self.durations[node.id]

        async def work(live: LiveSession) -> TaskOutcome:
            await asyncio.sleep(d)
            return TaskOutcome()

        spec = RunSpec(argv=[], command=f"sleep {d}", kind="bench", parent_id=ctx.parent_id)
        live = self.manager.start_task(spec, work)
        SPAWNED[live.id] = live.session.created_ns
        return SessionHandle(self.manager, live)


async def run(args: argparse.Namespace) -> None:
    nodes, durations = generate(args.nodes, args.seed, args.min, args.max)
    if args.priorities:
        levels = bottom_levels(nodes, durations)
        for node in nodes:
            node.priority = int(levels[node.id] * 1000)
    plan = Plan("bench", nodes, concurrency=args.concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        manager = SessionManager.open(Path(tmp) / "s.db") if args.store else SessionManager(None)
        if args.runner == "pty":
            patch_spawn()
            runners = Runners(LocalRunner(manager))
        else:
            runners = Runners(TaskRunner(manager, durations))
        scheduler = Scheduler(plan, runners, concurrency=args.concurrency)
        t0 = time.time_ns()
        records = await scheduler.run()
        wall = (time.time_ns() - t0) / 1e9
        sessions = {r.id: await manager.get(r.session_id or "") for r in records.values()}
        manager.close()
    assert all(r.state == "done" for r in records.values()), [
        r for r in records.values() if r.state != "done"
    ][:3]
    start = min(s.created_ns for s in sessions.values())
    end = max(s.ended_ns or 0 for s in sessions.values())
    makespan = (end - start) / 1e9
    nominal, cp, work = bound(nodes, durations, args.concurrency)
    measured = {k: ((s.ended_ns or 0) - s.created_ns) / 1e9 for k, s in sessions.items()}
    actual_bound, actual_cp, actual_work = bound(nodes, measured, args.concurrency)
    overhead, decided, spawning = [], [], []
    for record in records.values():
        session = sessions[record.id]
        spawned = SPAWNED.get(session.id)
        if record.trigger_ns is not None and spawned is not None and record.trigger_ns > t0:
            overhead.append((spawned - record.trigger_ns) / 1e6)
            decided.append((session.created_ns - record.trigger_ns) / 1e6)
            spawning.append((spawned - session.created_ns) / 1e6)
    overhead.sort()
    print(
        f"nodes {args.nodes}, concurrency {args.concurrency}, runner {args.runner}, "
        f"durations {args.min}-{args.max}s, seed {args.seed}, priorities {args.priorities}"
    )
    print(f"  total work {work:.2f}s, critical path {cp:.2f}s -> bound {nominal:.2f}s (nominal)")
    if args.runner == "pty":
        print(
            f"  measured node durations: work {actual_work:.2f}s, critical path {actual_cp:.2f}s "
            f"-> bound {actual_bound:.2f}s"
        )
    print(
        f"  makespan {makespan:.2f}s (wall {wall:.2f}s): {100 * (makespan / nominal - 1):+.1f}% vs "
        f"nominal bound"
        + (
            f", {100 * (makespan / actual_bound - 1):+.1f}% vs measured bound"
            if args.runner == "pty"
            else ""
        )
    )
    print(
        f"  overhead (blocker ended -> spawn) over {len(overhead)} nodes: median "
        f"{statistics.median(overhead):.2f} ms, p95 {overhead[int(len(overhead) * 0.95)]:.2f} ms, "
        f"max {overhead[-1]:.2f} ms"
    )
    print(
        f"    of which blocker ended -> session created (scheduler): median "
        f"{statistics.median(decided):.2f} ms; session created -> process running (spawn): "
        f"median {statistics.median(spawning):.2f} ms"
    )


def claimed_plan(seconds: float) -> tuple[list[PlanNode], dict[str, float]]:
    """The plan of the performance issue: five nodes, two claiming overlapping paths
    exclusively (declared last), a sixth needing all five."""
    claims = {"a": "src/**", "b": "src/core/**"}
    work = [
        PlanNode(n, argv=["sleep", f"{seconds}"], claims=[Claim(claims[n])] if n in claims else [])
        for n in ("f1", "f2", "f3", "a", "b")
    ]
    nodes = [*work, PlanNode("s", argv=["sleep", f"{seconds}"], deps=[n.id for n in work])]
    return nodes, {n.id: seconds for n in nodes}


def best_makespan(nodes: list[PlanNode], durations: dict[str, float], c: int) -> float:
    """The shortest schedule of a small plan: every order of starting ready nodes tried, in
    simulated time, under the scheduler's own rules (deps, concurrency, exclusive claims)."""
    by_id = {n.id: n for n in nodes}

    def conflict(x: PlanNode, y: PlanNode) -> bool:
        return any(
            "exclusive" in (a.mode, b.mode) and globs_overlap(a.path, b.path)
            for a in x.claims
            for b in y.claims
        )

    def simulate(order: tuple[str, ...]) -> float:
        time_now, running, done, end = 0.0, {}, set(), 0.0
        pending = list(order)
        while pending or running:
            for nid in list(pending):
                node = by_id[nid]
                if len(running) >= c or not set(node.deps) <= done:
                    continue
                if any(conflict(node, by_id[r]) for r in running):
                    continue
                running[nid] = time_now + durations[nid]
                pending.remove(nid)
            nid = min(running, key=running.__getitem__)
            time_now = running.pop(nid)
            done.add(nid)
            end = max(end, time_now)
        return end

    return min(simulate(order) for order in itertools.permutations(by_id))


async def claims(args: argparse.Namespace) -> None:
    nodes, durations = claimed_plan(args.seconds)
    plan = Plan("claims", nodes, concurrency=3)
    with tempfile.TemporaryDirectory() as tmp:
        manager = SessionManager.open(Path(tmp) / "s.db")
        runners = Runners(TaskRunner(manager, durations))
        records = await Scheduler(plan, runners, concurrency=3).run()
        sessions = [await manager.get(r.session_id or "") for r in records.values()]
        manager.close()
    makespan = (max(s.ended_ns or 0 for s in sessions) - min(s.created_ns for s in sessions)) / 1e9
    best = best_makespan(nodes, durations, 3)
    print(
        f"claims plan (6 nodes of {args.seconds:g}s, concurrency 3, a/b claim src/** and "
        f"src/core/** exclusively): makespan {makespan:.2f}s, best schedule {best:.2f}s: "
        f"{makespan / best:.2f}x (target <= 1.05x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runner", choices=["pty", "task"], default="pty")
    parser.add_argument("--min", type=float, default=0.1)
    parser.add_argument("--max", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--priorities", action="store_true")
    parser.add_argument("--store", action="store_true", help="record into a session store")
    parser.add_argument(
        "--claims", action="store_true", help="the plan whose claims serialize two nodes"
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="node duration, --claims")
    args = parser.parse_args()
    asyncio.run(claims(args) if args.claims else run(args))


if __name__ == "__main__":
    main()
