"""Resume reruns only what did not finish; worktree nodes never touch the main working tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ktl_lsp.orchestration import PlanError, load
from ktl_lsp.orchestration.run import carried_over
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import State
from tests.orchestration.conftest import intervals, nodes, overlaps, run_plan, write_plan


async def test_resume_reruns_only_failed_cancelled_and_skipped(
    manager: SessionManager, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    gate = tmp_path / "gate"  # absent: "flaky" fails; present: it passes
    data = {
        "concurrency": 2,
        "nodes": [
            {"id": "ok", "run": f"echo ok >> {runs}"},
            {"id": "flaky", "run": f"echo flaky >> {runs}; test -e {gate}"},
            {"id": "after", "run": f"echo after >> {runs}", "deps": ["flaky", "ok"]},
            {"id": "solo", "run": f"echo solo >> {runs}"},
        ],
    }
    path = write_plan(tmp_path, data)
    first, record, _ = await run_plan(manager, path)
    assert first.state is State.ERROR
    assert sorted(runs.read_text().split()) == ["flaky", "ok", "solo"]
    assert nodes(record)["after"]["state"] == "skipped"

    gate.write_text("")
    runs.write_text("")
    previous = await manager.get(first.id)
    second, record2, _ = await run_plan(manager, load(path), resume_of=previous)
    assert second.state is State.DONE
    assert sorted(runs.read_text().split()) == ["after", "flaky"]
    by_id = nodes(record2)
    assert by_id["ok"]["resumedFrom"] == first.id
    assert by_id["ok"]["sessionId"] == nodes(record)["ok"]["sessionId"]  # not run again
    assert "resumedFrom" not in by_id["flaky"]
    assert record2["resumeOf"] == first.id

    # resuming a finished, all-done run runs nothing
    runs.write_text("")
    third, _, _ = await run_plan(manager, load(path), resume_of=await manager.get(second.id))
    assert third.state is State.DONE and runs.read_text() == ""


async def test_resume_refuses_a_session_that_is_not_a_plan(
    manager: SessionManager, tmp_path: Path
) -> None:
    from ktl_lsp.sessions.manager import RunSpec

    live = manager.start(RunSpec(argv=["true"]))
    session = await live.done
    plan = load(write_plan(tmp_path, {"nodes": [{"id": "a", "run": "true"}]}))
    with pytest.raises(PlanError, match="is not a plan run"):
        carried_over(plan, session)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.txt").write_text("v1\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    _git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init")
    return root


async def test_worktree_nodes_do_not_touch_the_main_working_tree(
    manager: SessionManager, repo: Path
) -> None:
    met = repo.parent / "met"  # outside the repository: both nodes check in, then go on together
    met.mkdir()
    edit = (
        f"echo $1 > main.txt; echo new > $1.txt; pwd > where; touch {met}/$1; "
        f"for i in $(seq 1000); do [ $(ls {met} | wc -l) -ge 2 ] && break; sleep 0.01; done"
    )
    plan = write_plan(
        repo,
        {
            "name": "agents",
            "concurrency": 2,
            "nodes": [
                {
                    "id": name,
                    "run": ["sh", "-c", edit, "sh", name],
                    "cwd": "app",
                    "worktree": True,
                    "claims": [{"path": "app/**"}],  # in each node's own lane: no conflict
                }
                for name in ("fix-a", "fix-b")
            ],
        },
        name="agents.plan.yaml",
    )
    (repo / ".git" / "info" / "exclude").write_text("agents.plan.yaml\n")
    session, record, _ = await run_plan(manager, plan)
    assert session.state is State.DONE, record
    assert _git(repo, "status", "--porcelain") == ""  # main tree untouched
    spans = await intervals(manager, record)
    assert overlaps(spans["fix-a"], spans["fix-b"])
    assert (repo / "app" / "main.txt").read_text() == "v1\n"
    branches = _git(repo, "branch", "--list", "lane/*", "--format=%(refname:short)").split()
    assert sorted(branches) == ["lane/agents/fix-a", "lane/agents/fix-b"]
    for name in ("fix-a", "fix-b"):
        lane = nodes(record)[name]["worktree"]
        assert lane["branch"] == f"lane/agents/{name}"
        lane_path = Path(lane["path"])
        assert not lane_path.is_relative_to(repo / "app")
        assert (lane_path / "app" / "main.txt").read_text() == f"{name}\n"
        assert (lane_path / "app" / "where").read_text().strip() == str(lane_path / "app")
    # a second run reuses the lanes (their work is still there)
    session2, record2, _ = await run_plan(manager, plan)
    assert session2.state is State.DONE
    assert nodes(record2)["fix-a"]["worktree"] == nodes(record)["fix-a"]["worktree"]


async def test_worktree_outside_git_fails_the_node(manager: SessionManager, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, {"nodes": [{"id": "x", "run": "true", "worktree": True}]})
    _session, record, _ = await run_plan(manager, plan)
    node = nodes(record)["x"]
    assert node["state"] == "failed" and "not inside a git repository" in node["reason"]


def test_resume_after_the_server_died_mid_run(tmp_path: Path) -> None:
    """The record saved while running (nodes still 'running') is enough to resume from."""
    from ktl_lsp.sessions.model import Session

    plan = load(
        write_plan(
            tmp_path,
            {
                "nodes": [
                    {"id": "a", "run": "true"},
                    {"id": "b", "run": "true"},
                    {"id": "c", "run": "true"},
                ]
            },
        )
    )
    died = Session(
        id="p1",
        kind="plan",
        title="plan t",
        state=State.INTERRUPTED,
        meta={
            "plan": {
                "nodes": [
                    {"id": "a", "state": "done", "attempts": 1, "sessionId": "s1", "exitCode": 0},
                    {"id": "b", "state": "running", "attempts": 1, "sessionId": "s2"},
                    {"id": "gone", "state": "done", "attempts": 1},
                ]
            }
        },
    )
    carried = carried_over(plan, died)
    assert list(carried) == ["a"]
    assert carried["a"].session_id == "s1" and carried["a"].resumed_from == "p1"


def test_worktree_claims_are_no_conflict_for_the_diagnostics(tmp_path: Path) -> None:
    from ktl_lsp.checks import check_paths

    path = write_plan(
        tmp_path,
        {
            "nodes": [
                {"id": "a", "run": "true", "worktree": True, "claims": [{"path": "src/**"}]},
                {"id": "b", "run": "true", "worktree": True, "claims": [{"path": "src"}]},
                {"id": "c", "run": "true", "worktree": True, "claims": [{"path": "/tmp/lock"}]},
                {"id": "d", "run": "true", "claims": [{"path": "/tmp/lock"}]},
            ]
        },
    )
    codes = [f.code for f in check_paths([path])[path.resolve()]]
    assert codes == ["plan-claim-conflict"]  # only the absolute claim, shared by c and d
