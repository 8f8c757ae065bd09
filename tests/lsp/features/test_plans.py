"""``ktl.plan.run`` end to end through a real server (pytest-lsp)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lsprotocol import types as lsp

from tests.conftest import Ktl, StartKtl
from tests.orchestration.conftest import CORPUS, pid_alive

STACKS = CORPUS / "ktl-stack"


def _plan(tmp_path: Path, data: dict[str, Any], name: str = "ci.plan.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path.as_uri()


async def test_plan_run_result_children_states_and_progress(ktl: Ktl, tmp_path: Path) -> None:
    uri = _plan(
        tmp_path,
        {
            "name": "ci",
            "concurrency": 2,
            "nodes": [
                {"id": "build", "run": "sleep 0.3; echo built"},
                {"id": "lint", "run": ["sh", "-c", "sleep 0.6"]},
                {"id": "test", "run": "sleep 0.3; exit 3", "deps": ["build"]},
                {"id": "ship", "run": "true", "deps": ["test"]},
            ],
        },
    )
    result = await ktl.cmd("ktl.plan.run", {"uri": uri})
    assert result["state"] == "error" and result["exitCode"] == 1
    assert result["error"] == "1 failed, 1 skipped of 4 nodes"
    by_id = {n["id"]: n for n in result["nodes"]}
    assert by_id["build"]["state"] == "done" and by_id["build"]["attempts"] == 1
    assert by_id["test"]["state"] == "failed" and by_id["test"]["exitCode"] == 3
    assert by_id["ship"] == {
        "id": "ship",
        "state": "skipped",
        "attempts": 0,
        "reason": 'dependency "test" failed',
    }
    plan = await ktl.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    assert plan["kind"] == "plan"
    assert [n["id"] for n in plan["meta"]["plan"]["nodes"]] == ["build", "lint", "test", "ship"]
    child = await ktl.cmd("ktl.session.get", {"sessionId": by_id["build"]["sessionId"]})
    assert child["parentId"] == result["sessionId"] and child["meta"]["node"] == "build"
    # ktl/sessionState for every node's session, and for the plan
    await ktl.rec.until(
        lambda: (
            {s["sessionId"] for s in ktl.rec.states if s["state"] != "running"}
            >= {by_id[n]["sessionId"] for n in ("build", "lint", "test")} | {result["sessionId"]}
        )
    )
    token = f"ktl-session-{result['sessionId']}"
    reports = ktl.client.progress_reports[token]
    percentages = [r.percentage for r in reports if r.kind == "report" and r.percentage is not None]
    # paced at 10 a second: the last one may fold into the end report
    assert percentages == sorted(percentages) and percentages[-1] >= 50, percentages
    assert any("running:" in (r.message or "") for r in reports if r.kind == "report")
    listed = await ktl.cmd("ktl.sessions.list", {"kind": "plan"})
    assert [s["sessionId"] for s in listed["sessions"]] == [result["sessionId"]]


async def test_refused_plans_are_invalid_params_with_the_diagnostics_wording(
    ktl: Ktl, tmp_path: Path
) -> None:
    uri = _plan(
        tmp_path,
        {
            "nodes": [
                {"id": "a", "run": "true", "deps": ["b"]},
                {"id": "b", "run": "true", "deps": ["a"]},
            ]
        },
    )
    with pytest.raises(Exception, match=r"dependency cycle: a -> b -> a"):
        await ktl.cmd("ktl.plan.run", {"uri": uri})
    with pytest.raises(Exception, match='unknown node "zz"'):
        await ktl.cmd(
            "ktl.plan.run",
            {
                "uri": _plan(tmp_path, {"nodes": [{"id": "a", "run": "true"}]}, "ok.plan.yaml"),
                "nodes": ["zz"],
            },
        )
    with pytest.raises(Exception, match="missing field 'uri'"):
        await ktl.cmd("ktl.plan.run", {})
    with pytest.raises(Exception, match="unknown session nope"):
        await ktl.cmd("ktl.plan.run", {"resume": "nope"})
    listed = await ktl.cmd("ktl.sessions.list", {"kind": "plan"})
    assert listed["sessions"] == []  # refused before any session exists


async def test_budget_raised_through_show_message_request(ktl: Ktl, tmp_path: Path) -> None:
    asked: list[lsp.ShowMessageRequestParams] = []

    @ktl.client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    def answer(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        asked.append(params)
        assert params.actions is not None
        return params.actions[0]

    uri = _plan(
        tmp_path,
        {
            "budget": 1,
            "nodes": [
                {"id": "a", "run": "echo ::ktl-cost 0.75", "estCost": 0.5},
                {"id": "b", "run": "true", "estCost": 1, "deps": ["a"]},
            ],
        },
    )
    result = await ktl.cmd("ktl.plan.run", {"uri": uri})
    assert result["state"] == "done", result
    assert len(asked) == 1 and "Raise the budget?" in asked[0].message
    assert asked[0].actions is not None and asked[0].actions[0].title == "Raise to 1.75"
    plan = await ktl.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    assert plan["meta"]["plan"]["budget"] == 1.75 and plan["meta"]["plan"]["spent"] == 1.75


async def test_budget_without_an_answer_skips(ktl: Ktl, tmp_path: Path) -> None:
    uri = _plan(tmp_path, {"budget": 1, "nodes": [{"id": "big", "run": "true", "estCost": 2}]})
    result = await asyncio.wait_for(ktl.cmd("ktl.plan.run", {"uri": uri}), 20)
    assert result["nodes"][0]["state"] == "skipped"
    assert result["nodes"][0]["reason"] == "over budget: needs 2, 1 of 1 left"


async def test_cancel_plan_session_and_resume(ktl: Ktl, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    marker = tmp_path / "fast"
    uri = _plan(
        tmp_path,
        {
            "concurrency": 2,
            "nodes": [
                {"id": "quick", "run": "echo hi"},
                {
                    "id": "slow",
                    "run": f"test -e {marker} && exit 0; sleep 30 & echo $! > {pids}/slow; wait",
                    "deps": ["quick"],
                },
                {"id": "last", "run": "true", "deps": ["slow"]},
            ],
        },
    )
    started = await ktl.cmd("ktl.plan.run", {"uri": uri, "detach": True})
    assert started["state"] == "running"
    plan_id = started["sessionId"]
    for _ in range(500):
        if (pids / "slow").exists():
            break
        await asyncio.sleep(0.01)
    pid = int((pids / "slow").read_text())
    cancelled = await ktl.cmd("ktl.session.cancel", {"sessionId": plan_id})
    assert cancelled["state"] == "cancelled"
    for _ in range(300):
        if not pid_alive(pid):
            break
        await asyncio.sleep(0.01)
    assert not pid_alive(pid)
    plan = await ktl.cmd("ktl.session.get", {"sessionId": plan_id})
    states = {n["id"]: n["state"] for n in plan["meta"]["plan"]["nodes"]}
    assert states == {"quick": "done", "slow": "cancelled", "last": "cancelled"}

    marker.write_text("")
    resumed = await ktl.cmd("ktl.plan.run", {"resume": plan_id})
    assert resumed["state"] == "done", resumed
    by_id = {n["id"]: n for n in resumed["nodes"]}
    quick = next(n for n in plan["meta"]["plan"]["nodes"] if n["id"] == "quick")
    assert by_id["quick"]["sessionId"] == quick["sessionId"]  # carried over, not rerun
    assert by_id["slow"]["attempts"] == 1 and by_id["last"]["state"] == "done"


async def test_dry_run(ktl: Ktl, tmp_path: Path) -> None:
    uri = _plan(
        tmp_path,
        {
            "nodes": [
                {"id": "a", "run": ["no-such-binary-q"]},
                {"id": "b", "run": "true", "deps": ["a"]},
            ]
        },
    )
    result = await ktl.cmd("ktl.plan.run", {"uri": uri, "dryRun": True})
    assert result["state"] == "done" and result["dryRun"] is True
    assert result["order"] == [["a"], ["b"]]
    assert [n["state"] for n in result["nodes"]] == ["pending", "pending"]
    assert result["nodes"][0]["reason"] == "executable not found: no-such-binary-q (not on PATH)"


@pytest.mark.skipif(not STACKS.is_dir(), reason="shared corpus not present")
async def test_stack_runs_as_a_plan_with_a_stub_command(start_ktl: StartKtl) -> None:
    ktl = await start_ktl()
    stub = [sys.executable, "-c", "import sys; print('apply', *sys.argv[1:])", "{name}"]
    uri = (STACKS / "03-fanin" / "stack.yaml").resolve().as_uri()
    result = await ktl.cmd("ktl.plan.run", {"uri": uri, "stackCommand": stub})
    assert result["state"] == "done", result
    ids = [n["id"] for n in result["nodes"]]
    assert all(i.startswith("archimedes/ktl-stack-e2e/") for i in ids)
    one = await ktl.cmd(
        "ktl.session.output", {"sessionId": result["nodes"][0]["sessionId"], "plain": True}
    )
    text = "".join(f["data"] for f in one["frames"] if f["type"] == "output")
    assert "apply " + ids[0].rsplit("/", 1)[1] in text
    with pytest.raises(Exception, match='needs missing dependency "e2ex2-db"'):
        await ktl.cmd(
            "ktl.plan.run",
            {
                "uri": (STACKS / "x2-missing-dep" / "stack.yaml").resolve().as_uri(),
                "stackCommand": stub,
            },
        )


async def test_cancel_one_node_running_or_pending(ktl: Ktl, tmp_path: Path) -> None:
    uri = _plan(
        tmp_path,
        {
            "concurrency": 1,
            "nodes": [
                {"id": "slow", "run": "sleep 30"},
                {"id": "later", "run": "true", "deps": ["slow"]},
                {"id": "other", "run": "true"},
            ],
        },
    )
    started = await ktl.cmd("ktl.plan.run", {"uri": uri, "detach": True})
    plan_id = started["sessionId"]
    for _ in range(500):
        listed = await ktl.cmd("ktl.sessions.list", {"kind": "pty", "state": "running"})
        if listed["sessions"]:
            break
        await asyncio.sleep(0.01)
    await ktl.cmd("ktl.plan.cancelNode", {"sessionId": plan_id, "node": "other"})
    await ktl.cmd("ktl.plan.cancelNode", {"sessionId": plan_id, "node": "slow"})
    result = await ktl.cmd("ktl.session.wait", {"sessionId": plan_id, "timeoutS": 15})
    assert result["state"] == "error"
    plan = await ktl.cmd("ktl.session.get", {"sessionId": plan_id})
    by_id = {n["id"]: n for n in plan["meta"]["plan"]["nodes"]}
    assert by_id["other"]["state"] == "cancelled" and "sessionId" not in by_id["other"]
    assert by_id["slow"]["state"] == "cancelled"
    assert by_id["later"]["reason"] == 'dependency "slow" was cancelled'
    with pytest.raises(Exception, match="no running plan"):
        await ktl.cmd("ktl.plan.cancelNode", {"sessionId": plan_id, "node": "slow"})
