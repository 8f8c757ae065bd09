"""Plans that wait for a person: ``approve: true`` nodes and ``pauseOn: [warning]`` with a
node's ``::ktl-pause`` line, answered through the session manager's approvals (as the editor
and the gateway answer them), with real PTY nodes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ktl_lsp.orchestration import PlanOptions, PlanRun, load, local_runners
from ktl_lsp.sessions.approvals import Question
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import State
from tests.orchestration.conftest import nodes, write_plan


async def question(manager: SessionManager, timeout: float = 10) -> Question:
    """The next question asked."""
    for _ in range(int(timeout / 0.01)):
        pending = manager.approvals.pending()
        if pending:
            return pending[0]
        await asyncio.sleep(0.01)
    raise AssertionError("nothing was asked")


async def test_approve_node_waits_and_a_no_skips_it_and_its_dependents(
    manager: SessionManager, tmp_path: Path
) -> None:
    data = {
        "name": "ship",
        "concurrency": 2,
        "nodes": [
            {"id": "build", "run": "echo built"},
            {"id": "deploy", "run": "echo deployed", "deps": ["build"], "approve": True},
            {"id": "smoke", "run": "echo smoke", "deps": ["deploy"]},
        ],
    }
    plan = load(write_plan(tmp_path, data))
    live = PlanRun(manager, plan, local_runners(manager), PlanOptions(ask_people=True)).start()
    q = await question(manager)
    assert (q.session_id, q.text, q.choices) == (
        live.id,
        "plan ship: Start deploy of plan ship?",
        ["Approve", "Deny"],
    )
    # while it waits: the plan says so (meta.waiting, the progress line), nothing started
    assert live.session.meta["waiting"] == [{"n": 1, "question": q.text}]
    out = "\n".join(await manager.output_lines(live.id))
    assert "⏸ deploy: waiting for approval" in out
    assert "paused: deploy waiting for approval" in out
    manager.approvals.answer(live.id, q.n, "Deny", "alice")
    session = await live.done
    by_id = nodes(session.meta["plan"])
    assert by_id["build"]["state"] == "done"
    assert by_id["deploy"]["state"] == "skipped"
    assert by_id["deploy"]["reason"] == "not approved: alice chose Deny"
    assert by_id["smoke"]["reason"] == 'dependency "deploy" was skipped'
    assert "sessionId" not in by_id["deploy"]  # it never ran
    assert "waiting" not in session.meta
    assert session.meta["approvals"][0]["answer"] == "Deny"


async def test_approved_node_runs(manager: SessionManager, tmp_path: Path) -> None:
    data = {"name": "ok", "nodes": [{"id": "go", "run": "echo went", "approve": True}]}
    plan = load(write_plan(tmp_path, data))
    live = PlanRun(manager, plan, local_runners(manager), PlanOptions(ask_people=True)).start()
    q = await question(manager)
    manager.approvals.answer(live.id, q.n, "Approve", "bob")
    session = await live.done
    assert session.state is State.DONE
    assert nodes(session.meta["plan"])["go"]["state"] == "done"
    assert "go: approved by bob" in "\n".join(await manager.output_lines(live.id))


async def test_nobody_to_ask_is_a_no(manager: SessionManager, tmp_path: Path) -> None:
    data = {"name": "ci", "nodes": [{"id": "go", "run": "true", "approve": True}]}
    plan = load(write_plan(tmp_path, data))
    live = PlanRun(manager, plan, local_runners(manager), PlanOptions()).start()
    session = await live.done
    assert nodes(session.meta["plan"])["go"]["reason"].startswith("nobody to approve it")


async def test_a_pause_line_holds_the_dependents_until_continue_or_stop(
    manager: SessionManager, tmp_path: Path
) -> None:
    data = {
        "name": "rollout",
        "pauseOn": ["warning"],
        "nodes": [
            {"id": "canary", "run": "echo '::ktl-pause error rate 2%'"},
            {"id": "rest", "run": "echo rest", "deps": ["canary"]},
            {"id": "after", "run": "echo after", "deps": ["rest"]},
        ],
    }
    plan = load(write_plan(tmp_path, data))
    live = PlanRun(manager, plan, local_runners(manager), PlanOptions(ask_people=True)).start()
    q = await question(manager)
    assert q.text == "plan rollout: canary of plan rollout paused: error rate 2%. Continue?"
    manager.approvals.answer(live.id, q.n, "Approve", "carol")
    session = await live.done
    assert session.state is State.DONE
    assert [n["state"] for n in session.meta["plan"]["nodes"]] == ["done", "done", "done"]

    live = PlanRun(manager, plan, local_runners(manager), PlanOptions(ask_people=True)).start()
    q = await question(manager)
    manager.approvals.answer(live.id, q.n, "Deny", "carol")
    session = await live.done
    by_id = nodes(session.meta["plan"])
    assert by_id["canary"]["state"] == "done"
    assert by_id["rest"]["state"] == "skipped"
    assert by_id["rest"]["reason"] == (
        "not started: plan stopped after canary (not approved: carol chose Deny)"
    )

    # without pauseOn the line is just output
    plan.pause_on = []
    live = PlanRun(manager, plan, local_runners(manager), PlanOptions(ask_people=True)).start()
    assert (await live.done).state is State.DONE
