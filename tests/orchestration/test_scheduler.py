"""The scheduler with real processes: parallelism, claims, pools, retries, failure, cancel, budget.

Timings come from the sessions' own records (createdAt/endedAt); what must run together is
held together by gates (tests/orchestration/conftest.py), not by sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ktl_lsp.orchestration import PlanOptions, PlanRun, load, local_runners
from ktl_lsp.orchestration.model import Claim, Plan, PlanNode
from ktl_lsp.orchestration.scheduler import NodeRecord, remaining_work
from ktl_lsp.sessions.approvals import Question
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import State
from tests.orchestration.conftest import (
    Gates,
    dump,
    intervals,
    kill_quietly,
    max_parallel,
    nodes,
    overlaps,
    pid_alive,
    run_plan,
    write_plan,
)


async def test_four_nodes_at_concurrency_two_run_two_at_a_time(
    manager: SessionManager, tmp_path: Path
) -> None:
    gates = Gates(tmp_path / "gates")
    ids = [f"n{i}" for i in range(4)]
    plan = write_plan(
        tmp_path,
        {"name": "par", "concurrency": 2, "nodes": [{"id": i, "run": gates.run(i)} for i in ids]},
    )
    live = PlanRun(manager, load(plan), local_runners(manager), PlanOptions()).start()
    first = await gates.until_started(2)  # serial would never get here
    gates.release(first)
    gates.release(await gates.until_started(4))
    session = await live.done
    record = session.meta["plan"]
    assert session.state is State.DONE, dump(record)
    spans = await intervals(manager, record)
    assert max_parallel(list(spans.values())) == 2, spans  # unbounded would hold all 4 at once
    assert all(n["state"] == "done" and n["attempts"] == 1 for n in record["nodes"])
    children = [await manager.get(n["sessionId"]) for n in record["nodes"]]
    assert {c.parent_id for c in children} == {session.id}
    assert {c.kind for c in children} == {"pty"}


async def test_exclusive_claims_serialize_and_shared_ones_do_not(
    manager: SessionManager, tmp_path: Path
) -> None:
    gates = Gates(tmp_path / "gates")
    plan = write_plan(
        tmp_path,
        {
            "concurrency": 5,
            "nodes": [
                {"id": "w1", "run": gates.run("w1"), "claims": [{"path": "out/**"}]},
                {"id": "w2", "run": gates.run("w2"), "claims": [{"path": "out/app/*.bin"}]},
                {
                    "id": "r1",
                    "run": gates.run("r1"),
                    "claims": [{"path": "src", "mode": "shared"}],
                },
                {
                    "id": "r2",
                    "run": gates.run("r2"),
                    "claims": [{"path": "src/a.py", "mode": "shared"}],
                },
                {"id": "other", "run": gates.run("other"), "claims": [{"path": "docs/*.md"}]},
            ],
        },
    )
    live = PlanRun(manager, load(plan), local_runners(manager), PlanOptions()).start()
    # everything but one writer holds at once: both readers, "other" and one writer
    together = await gates.until_started(4)
    assert {"r1", "r2", "other"} <= together, together
    gates.release(together)
    gates.release(await gates.until_started(5))
    session = await live.done
    record = session.meta["plan"]
    assert session.state is State.DONE, dump(record)
    spans = await intervals(manager, record)
    assert not overlaps(spans["w1"], spans["w2"]), spans  # out/** and out/app/*.bin overlap
    assert overlaps(spans["r1"], spans["r2"]), spans  # shared claims coexist
    assert overlaps(spans["w1"], spans["other"]) or overlaps(spans["w2"], spans["other"])
    first, second = ("w1", "w2") if "w1" in together else ("w2", "w1")
    assert f"claim:{first}" in nodes(record)[second]["waitedOn"]


async def test_tool_limits(manager: SessionManager, tmp_path: Path) -> None:
    gates = Gates(tmp_path / "gates")
    ai = [f"ai{i}" for i in range(3)]
    plan = write_plan(
        tmp_path,
        {
            "concurrency": 4,
            "toolLimits": {"claude": 1},
            "nodes": [
                *({"id": i, "run": gates.run(i), "tool": "claude"} for i in ai),
                {"id": "build", "run": gates.run("build"), "tool": "make"},
            ],
        },
    )
    live = PlanRun(manager, load(plan), local_runners(manager), PlanOptions()).start()
    for count in (2, 3, 4):  # build and one claude node, then each further claude node alone
        started = await gates.until_started(count)
        if count == 2:
            assert "build" in started, started
        gates.release(started)
    session = await live.done
    record = session.meta["plan"]
    assert session.state is State.DONE, dump(record)
    spans = await intervals(manager, record)
    assert max_parallel([spans[i] for i in ai]) == 1, spans
    assert any(overlaps(spans["build"], spans[i]) for i in ai)
    last = max(ai, key=lambda i: spans[i][0])
    assert "tool:claude" in nodes(record)[last]["waitedOn"]


async def test_retries_with_backoff(manager: SessionManager, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = f'echo x >> {counter}; [ "$(wc -l < {counter})" -ge 3 ]'
    plan = write_plan(
        tmp_path,
        {
            "nodes": [
                {"id": "flaky", "run": script, "retries": 3, "retryBackoffS": 0.05},
                {"id": "never", "run": "exit 4", "retries": 1, "retryBackoffS": 0.05},
            ]
        },
    )
    session, record, _ = await run_plan(manager, plan)
    by_id = nodes(record)
    assert by_id["flaky"]["state"] == "done" and by_id["flaky"]["attempts"] == 3
    assert len(by_id["flaky"]["sessions"]) == 3
    assert by_id["never"]["state"] == "failed" and by_id["never"]["attempts"] == 2
    assert by_id["never"]["exitCode"] == 4
    assert session.state is State.ERROR and session.error == "1 failed of 2 nodes"
    # the second attempt waited for the backoff after the first one ended
    first = await manager.get(by_id["flaky"]["sessions"][0])
    second = await manager.get(by_id["flaky"]["sessions"][1])
    assert first.ended_ns is not None and second.created_ns - first.ended_ns >= 0.04e9


async def test_failed_node_skips_dependents_and_independent_work_continues(
    manager: SessionManager, tmp_path: Path
) -> None:
    plan = write_plan(
        tmp_path,
        {
            "concurrency": 2,
            "nodes": [
                {"id": "build", "run": "exit 2"},
                {"id": "test", "run": "true", "deps": ["build"]},
                {"id": "deploy", "run": "true", "deps": ["test"]},
                {"id": "lint", "run": "sleep 0.2"},
                {"id": "docs", "run": "true", "deps": ["lint"]},
            ],
        },
    )
    session, record, live = await run_plan(manager, plan)
    by_id = nodes(record)
    assert by_id["build"]["state"] == "failed" and by_id["build"]["exitCode"] == 2
    assert by_id["test"] == {
        **by_id["test"],
        "state": "skipped",
        "reason": 'dependency "build" failed',
    }
    assert by_id["deploy"]["reason"] == 'dependency "test" was skipped'
    assert by_id["lint"]["state"] == by_id["docs"]["state"] == "done"
    assert session.error == "1 failed, 2 skipped of 5 nodes"
    assert live.result_extra["nodes"][1] == {
        "id": "test",
        "state": "skipped",
        "attempts": 0,
        "reason": 'dependency "build" failed',
    }


async def test_fail_fast_starts_nothing_after_the_first_failure(
    manager: SessionManager, tmp_path: Path
) -> None:
    plan = write_plan(
        tmp_path,
        {
            "concurrency": 1,
            "failFast": True,
            "nodes": [
                {"id": "a", "run": "exit 1", "priority": 10},
                {"id": "b", "run": "true"},
                {"id": "c", "run": "true"},
            ],
        },
    )
    _, record, _ = await run_plan(manager, plan)
    by_id = nodes(record)
    assert by_id["a"]["state"] == "failed"
    assert by_id["b"]["state"] == by_id["c"]["state"] == "skipped"
    assert by_id["b"]["reason"] == 'not started: failFast after "a" failed'
    assert "sessionId" not in by_id["b"]


async def test_priority_orders_ready_nodes(manager: SessionManager, tmp_path: Path) -> None:
    log = tmp_path / "order"
    plan = write_plan(
        tmp_path,
        {
            "concurrency": 1,
            "nodes": [
                {"id": name, "run": f"echo {name} >> {log}", "priority": prio}
                for name, prio in [("low", -1), ("mid", 0), ("high", 5)]
            ],
        },
    )
    await run_plan(manager, plan)
    assert log.read_text().split() == ["high", "mid", "low"]


def _claimed_plan(**durations: float) -> Plan:
    """Five nodes and a sixth needing them all; a and b claim overlapping paths exclusively."""
    claims = {"a": "src/**", "b": "src/core/**"}
    work = [
        PlanNode(
            n,
            command="true",
            claims=[Claim(claims[n])] if n in claims else [],
            est_duration_s=durations.get(n),
        )
        for n in ("f1", "f2", "f3", "a", "b")
    ]
    return Plan("p", [*work, PlanNode("s", command="true", deps=[n.id for n in work])])


def test_remaining_work_counts_the_chain_that_conflicting_claims_make() -> None:
    rank = remaining_work(_claimed_plan())
    # a cannot run beside b: starting a leaves a, then b, then s (3 s); a free node 2 s.
    assert rank == {"f1": 2.0, "f2": 2.0, "f3": 2.0, "a": 3.0, "b": 3.0, "s": 1.0}
    # Durations: a long free node outranks the claimed pair; a node without one weighs the
    # median of those given.
    ranked = remaining_work(_claimed_plan(f1=1, f2=1, f3=5, a=1, b=1))
    assert (ranked["f3"], ranked["a"], ranked["s"]) == (6.0, 3.0, 1.0)
    assert remaining_work(_claimed_plan(f3=5))["f1"] == 10.0
    # A tool limit of 1 serializes like a claim; of 2, its work is shared over two.
    tools = Plan(
        "t",
        [PlanNode(f"t{i}", command="true", pools=["tool:x"]) for i in range(4)]
        + [PlanNode("free", command="true")],
        limits={"tool:x": 2},
    )
    assert remaining_work(tools) == {"t0": 2.5, "t1": 2.5, "t2": 2.5, "t3": 2.5, "free": 1.0}


async def test_a_node_whose_claim_serializes_another_starts_before_free_ones(
    manager: SessionManager, tmp_path: Path
) -> None:
    log = tmp_path / "order"
    claims = {"a": "src/**", "b": "src/core/**"}
    work = [
        {"id": n, "run": f"echo {n} >> {log}"}
        | ({"claims": [{"path": claims[n]}]} if n in claims else {})
        for n in ("f1", "f2", "f3", "a", "b")
    ]
    plan = write_plan(
        tmp_path,
        {
            "concurrency": 1,
            "nodes": [*work, {"id": "s", "run": f"echo s >> {log}", "deps": [*claims, "f1"]}],
        },
    )
    await run_plan(manager, plan)
    # With three slots a and f1, f2 start together and b follows a: 2 s instead of 3 s.
    assert log.read_text().split() == ["a", "b", "f1", "f2", "f3", "s"]


async def test_the_longest_node_of_the_last_run_starts_first(
    manager: SessionManager, tmp_path: Path
) -> None:
    log = tmp_path / "order"
    plan = write_plan(
        tmp_path,
        {
            "name": "learn",
            "concurrency": 1,
            "nodes": [
                {"id": "quick", "run": f"echo quick >> {log}"},
                {"id": "slow", "run": f"sleep 0.3; echo slow >> {log}"},
            ],
        },
    )
    await run_plan(manager, plan)  # no estDurationS, no history: declaration order
    assert log.read_text().split() == ["quick", "slow"]
    log.unlink()
    await run_plan(manager, plan)  # the first run's durations decide
    assert log.read_text().split() == ["slow", "quick"]
    given = write_plan(
        tmp_path,
        {
            "name": "given",
            "concurrency": 1,
            "nodes": [
                {"id": "quick", "run": f"echo quick >> {log}", "estDurationS": 1},
                {"id": "slow", "run": f"echo slow >> {log}", "estDurationS": 60},
            ],
        },
        name="given.plan.yaml",
    )
    log.unlink()
    await run_plan(manager, given)
    assert log.read_text().split() == ["slow", "quick"]


async def test_cancel_mid_plan_leaves_no_process_behind(
    manager: SessionManager, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    plan = load(
        write_plan(
            tmp_path,
            {
                "concurrency": 3,
                "nodes": [
                    # a child that ignores nothing, and a grandchild in the same process group
                    *(
                        {"id": f"long{i}", "run": f"sleep 30 & echo $! > {pids}/{i}; wait"}
                        for i in range(3)
                    ),
                    {"id": "after", "run": "true", "deps": ["long0"]},
                ],
            },
        )
    )
    live = PlanRun(manager, plan, local_runners(manager), PlanOptions()).start()
    for _ in range(500):
        if len(list(pids.iterdir())) == 3:
            break
        await asyncio.sleep(0.01)
    found = [int(p.read_text()) for p in pids.iterdir()]
    assert len(found) == 3 and all(pid_alive(p) for p in found)
    try:
        manager.cancel(live.id)
        session = await asyncio.wait_for(live.done, 15)
        assert session.state is State.CANCELLED
        for _ in range(300):
            if not any(pid_alive(p) for p in found):
                break
            await asyncio.sleep(0.01)
        assert not any(pid_alive(p) for p in found)
        by_id = {n["id"]: n for n in live.result_extra["nodes"]}
        assert {by_id[f"long{i}"]["state"] for i in range(3)} == {"cancelled"}
        assert by_id["after"] == {
            "id": "after",
            "state": "cancelled",
            "attempts": 0,
            "reason": "plan cancelled",
        }
        for i in range(3):
            child = await manager.get(by_id[f"long{i}"]["sessionId"])
            assert child.state is State.CANCELLED  # every child ended before the plan did
        assert session.meta["plan"]["nodes"][0]["state"] == "cancelled"
    finally:
        for pid in found:
            kill_quietly(pid)


async def test_cancelling_one_node_skips_its_dependents(
    manager: SessionManager, tmp_path: Path
) -> None:
    plan = load(
        write_plan(
            tmp_path,
            {
                "concurrency": 2,
                "nodes": [
                    {"id": "slow", "run": "sleep 30"},
                    {"id": "next", "run": "true", "deps": ["slow"]},
                    {"id": "side", "run": "sleep 0.3"},
                ],
            },
        )
    )
    run = PlanRun(manager, plan, local_runners(manager), PlanOptions())
    live = run.start()
    for _ in range(500):
        if run.scheduler and run.scheduler.records["slow"].session_id:
            break
        await asyncio.sleep(0.01)
    assert run.scheduler is not None
    child = run.scheduler.records["slow"].session_id
    assert child is not None
    manager.cancel(child)
    session = await asyncio.wait_for(live.done, 15)
    by_id = nodes(session.meta["plan"])
    assert by_id["slow"]["state"] == "cancelled"
    assert by_id["next"]["reason"] == 'dependency "slow" was cancelled'
    assert by_id["side"]["state"] == "done"
    assert session.error == "1 skipped, 1 cancelled of 3 nodes"


async def test_timeout_kills_the_process_group(manager: SessionManager, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    plan = write_plan(
        tmp_path,
        {
            "nodes": [
                {"id": "hang", "run": f"sleep 60 & echo $! > {pid_file}; wait", "timeoutS": 0.5}
            ]
        },
    )
    _session, record, _ = await asyncio.wait_for(run_plan(manager, plan), 20)
    pid = int(pid_file.read_text())
    try:
        node = nodes(record)["hang"]
        assert node["state"] == "failed" and node["reason"] == "timed out after 0.5s"
        for _ in range(300):
            if not pid_alive(pid):
                break
            await asyncio.sleep(0.01)
        assert not pid_alive(pid)
    finally:
        kill_quietly(pid)


async def test_missing_executable_fails_clearly_without_retrying(
    manager: SessionManager, tmp_path: Path
) -> None:
    plan = write_plan(
        tmp_path,
        {
            "nodes": [
                {"id": "tool", "run": ["no-such-tool-xyz", "--go"], "retries": 5},
                {"id": "after", "run": "true", "deps": ["tool"]},
                {"id": "shell", "run": "no-such-tool-xyz --go", "retries": 5},
            ]
        },
    )
    _session, record, _ = await asyncio.wait_for(run_plan(manager, plan), 10)
    by_id = nodes(record)
    assert by_id["tool"]["state"] == "failed"
    assert by_id["tool"]["reason"] == "executable not found: no-such-tool-xyz (not on PATH)"
    assert by_id["tool"]["attempts"] == 0
    assert by_id["after"]["state"] == "skipped"
    assert by_id["shell"]["state"] == "failed" and by_id["shell"]["attempts"] == 1
    assert by_id["shell"]["reason"] == "exit 127 (command not found)"


async def test_budget_governor_asks_and_skips_or_raises(
    manager: SessionManager, tmp_path: Path
) -> None:
    data = {
        "concurrency": 4,
        "budget": 5,
        "nodes": [
            {"id": "cheap", "run": "echo ::ktl-cost 1.5", "estCost": 3},
            {"id": "mid", "run": "true", "estCost": 2, "deps": ["cheap"]},
            {"id": "big", "run": "true", "estCost": 4, "deps": ["cheap"]},
        ],
    }
    asked: list[Question] = []

    def person(choice: int) -> Callable[[Question], None]:
        """Answers each budget question with its choice ``choice`` (0 raises, 1 skips)."""

        def answer(q: Question) -> None:
            if q.state == "pending":
                asked.append(q)
                manager.approvals.answer(q.session_id, q.n, q.choices[choice], "test")

        return answer

    stop = manager.approvals.listen(person(1))
    session, record, _ = await run_plan(manager, write_plan(tmp_path, data), ask_people=True)
    stop()
    by_id = nodes(record)
    assert by_id["cheap"]["cost"] == 1.5  # the reported cost replaces the estimate
    assert by_id["mid"]["state"] == "done"  # 1.5 + 2 fits in 5
    assert by_id["big"]["state"] == "skipped"
    assert by_id["big"]["reason"] == "over budget: needs 4, 1.5 of 5 left"
    assert [(q.text, q.choices) for q in asked] == [
        (
            "plan t: big would exceed the budget (1.5 of 5 left, needs 4). Raise the budget?",
            ["Raise to 7.5", "Skip"],
        )
    ]
    assert record["spent"] == 3.5
    assert session.meta["approvals"][0]["answer"] == "Skip"

    stop = manager.approvals.listen(person(0))
    session, record, _ = await run_plan(manager, write_plan(tmp_path, data), ask_people=True)
    stop()
    assert session.state is State.DONE
    assert record["budget"] == 7.5


async def test_interactive_nodes_run_one_at_a_time_and_are_announced(
    manager: SessionManager, tmp_path: Path
) -> None:
    seen: list[NodeRecord] = []
    plan = write_plan(
        tmp_path,
        {
            "concurrency": 3,
            "nodes": [
                {"id": "ask1", "run": "read x; echo got $x", "interactive": True},
                {"id": "ask2", "run": "sleep 0.2", "interactive": True},
            ],
        },
    )
    live = PlanRun(
        manager, load(plan), local_runners(manager), PlanOptions(on_interactive=seen.append)
    ).start()
    for _ in range(500):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert [r.id for r in seen] == ["ask1"]
    assert seen[0].session_id is not None
    manager.input(seen[0].session_id, "yes\r")
    session = await asyncio.wait_for(live.done, 10)
    assert session.state is State.DONE
    spans = await intervals(manager, session.meta["plan"])
    assert not overlaps(spans["ask1"], spans["ask2"])
    assert "got yes" in "\n".join(await manager.output_lines(seen[0].session_id))


async def test_plan_file_edited_while_running_is_reported(
    manager: SessionManager, tmp_path: Path
) -> None:
    path = write_plan(
        tmp_path,
        {"nodes": [{"id": "a", "run": "sleep 0.3"}, {"id": "b", "run": "true", "deps": ["a"]}]},
    )
    live = PlanRun(manager, load(path), local_runners(manager), PlanOptions()).start()
    await asyncio.sleep(0.05)
    path.write_text(path.read_text() + "# edited\n")
    session = await asyncio.wait_for(live.done, 10)
    assert session.state is State.DONE  # the run keeps the version it loaded
    assert live.result_extra["planFileChanged"] is True
    text = "\n".join(await manager.output_lines(session.id))
    assert "changed while the plan runs" in text


async def test_record_has_a_timeline(manager: SessionManager, tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path,
        {
            "concurrency": 1,
            "nodes": [
                {"id": "a", "run": "sleep 0.2"},
                {"id": "b", "run": "true"},
                {"id": "c", "run": "true", "deps": ["a"]},
            ],
        },
    )
    session, _record, _ = await run_plan(manager, plan)
    stored = await manager.get(session.id)  # the record survives in the store
    by_id = nodes(stored.meta["plan"])
    assert by_id["c"]["deps"] == ["a"]
    assert by_id["c"]["readyAt"] == by_id["a"]["endedAt"]
    for node in by_id.values():
        assert {"startedAt", "endedAt", "durationMs", "queuedMs"} <= node.keys()
    assert "concurrency" in by_id["b"]["waitedOn"]
    frames, _ = await manager.frames(session.id)
    events = [f.text() for f in frames if f.type.value == "event"]
    assert any('"node":"c"' in e and '"state":"running"' in e for e in events)
    lines = await manager.output_lines(session.id)
    assert lines[-2] == "[3/3]"


async def test_other_runners_plug_in_as_task_sessions(
    manager: SessionManager, tmp_path: Path
) -> None:
    """The shape a Kubernetes Job runner takes: async preflight, a task session per attempt."""
    from ktl_lsp.orchestration.runners import LaunchContext, NodeHandle, Runners, SessionHandle
    from ktl_lsp.sessions.manager import LiveSession, RunSpec, TaskOutcome

    class FakeJobs:
        async def preflight(self, node: PlanNode, cwd: str | None) -> str | None:
            await asyncio.sleep(0)
            return None if node.extra.get("image") else "runner kubernetes needs an image"

        def start(self, node: PlanNode, ctx: LaunchContext) -> NodeHandle:
            async def work(live: LiveSession) -> TaskOutcome:
                live.write(f"job {node.id} on {node.extra['image']}\r\n")
                return TaskOutcome(exit_code=0)

            spec = RunSpec(argv=[], command=node.display, kind="k8s", parent_id=ctx.parent_id)
            return SessionHandle(manager, manager.start_task(spec, work))

    plan = load(
        write_plan(
            tmp_path,
            {
                "nodes": [
                    {"id": "job", "run": ["make"], "runner": "kubernetes", "image": "alpine"},
                    {"id": "noimage", "run": ["make"], "runner": "kubernetes"},
                    {"id": "local", "run": "true", "deps": ["job"]},
                ]
            },
        )
    )
    runners = local_runners(manager)
    without = PlanRun(manager, plan, runners, PlanOptions()).start()
    record = (await without.done).meta["plan"]
    assert nodes(record)["job"]["reason"] == (
        "runner 'kubernetes' is not available: no Kubernetes client is set up here"
    )
    runners = Runners(runners.get("local"), kubernetes=FakeJobs())
    live = PlanRun(manager, plan, runners, PlanOptions()).start()
    session = await live.done
    by_id = nodes(session.meta["plan"])
    assert by_id["job"]["state"] == "done" and by_id["local"]["state"] == "done"
    assert by_id["noimage"]["reason"] == "runner kubernetes needs an image"
    child = await manager.get(by_id["job"]["sessionId"])
    assert child.kind == "k8s" and child.parent_id == session.id
