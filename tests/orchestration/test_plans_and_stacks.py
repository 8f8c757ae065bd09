"""Plan files and ktl stacks into plans: refusals in the diagnostics' words, templates, corpus."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from ktl_lsp.orchestration import PlanError, load
from ktl_lsp.orchestration.model import select, waves
from ktl_lsp.orchestration.stack import HELM_TEMPLATE, render
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import State
from tests.orchestration.conftest import CORPUS, intervals, nodes, run_plan

STACKS = CORPUS / "ktl-stack"
VALID = sorted(p.name for p in STACKS.iterdir() if p.name[:2].isdigit()) if STACKS.is_dir() else []
needs_corpus = pytest.mark.skipif(not STACKS.is_dir(), reason="shared corpus not present")


def _plan(tmp_path: Path, text: str, name: str = "x.plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_plan_file_fields(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    plan = load(
        _plan(
            tmp_path,
            """\
            name: ci
            concurrency: 3
            budget: 2.5
            toolLimits: {claude: 1}
            failFast: true
            nodes:
              - id: build
                run: [make, build]
                cwd: sub
                env: {A: 1, B: true}
                tool: claude
                claims: [{path: "out/**"}, {path: src, mode: shared}]
                estCost: 0.5
                priority: 2
                retries: 1
                retryBackoffS: 0.5
                timeoutS: 60
                worktree: true
                interactive: true
              - {id: test, run: make test, deps: [build]}
            """,
        )
    )
    assert (plan.name, plan.concurrency, plan.budget, plan.fail_fast) == ("ci", 3, 2.5, True)
    assert plan.limits == {"tool:claude": 1}
    build, test = plan.nodes
    assert build.argv == ["make", "build"] and build.command is None
    assert build.cwd == str(tmp_path / "sub") and build.env == {"A": "1", "B": "true"}
    assert [(c.path, c.mode) for c in build.claims] == [("out/**", "exclusive"), ("src", "shared")]
    assert (build.est_cost, build.priority, build.retries, build.retry_backoff_s) == (
        0.5,
        2,
        1,
        0.5,
    )
    assert (build.timeout_s, build.worktree, build.interactive) == (60, True, True)
    assert build.pools == ["tool:claude"]
    assert test.command == "make test" and test.cwd == str(tmp_path) and test.deps == ["build"]
    assert waves(plan) == [["build"], ["test"]]


def test_json_plan_and_default_name(tmp_path: Path) -> None:
    path = tmp_path / "nightly.plan.json"
    path.write_text(json.dumps({"nodes": [{"id": "a", "run": "true"}]}))
    plan = load(path)
    assert plan.name == "nightly" and plan.concurrency >= 1


def test_broken_plans_are_refused_with_the_diagnostics_wording(tmp_path: Path) -> None:
    path = _plan(
        tmp_path,
        """\
        nodes:
          - {id: a, run: "true", deps: [b]}
          - {id: b, run: "true", deps: [a]}
          - {id: c, run: "true", deps: [nope]}
          - {id: c, run: "true"}
          - {id: d, run: []}
        """,
    )
    with pytest.raises(PlanError) as info:
        load(path)
    problems = info.value.problems
    assert f'{path}:4:33: node "c" depends on unknown node "nope"' in problems
    assert f'{path}:5:10: duplicate node id "c"' in problems
    assert any(
        p.startswith(f"{path}:2:") and p.endswith("dependency cycle: a -> b -> a") for p in problems
    )
    assert any(p.startswith(f"{path}:6:") for p in problems)  # empty argv: schema


def test_not_a_plan(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="not a plan file or a ktl stack"):
        load(_plan(tmp_path, "a: 1\n", "notes.yaml"))
    with pytest.raises(PlanError, match="no such file"):
        load(tmp_path / "gone.plan.yaml")
    with pytest.raises(PlanError, match="the plan is empty"):
        load(_plan(tmp_path, "", "empty.plan.yaml"))


def test_selection(tmp_path: Path) -> None:
    plan = load(
        _plan(
            tmp_path,
            """\
            nodes:
              - {id: a, run: "true"}
              - {id: b, run: "true", deps: [a]}
              - {id: c, run: "true", deps: [b]}
              - {id: d, run: "true"}
            """,
        )
    )
    assert [n.id for n in select(plan, ["c"]).nodes] == ["a", "b", "c"]
    alone = select(plan, ["c"], with_deps=False)
    assert [(n.id, n.deps) for n in alone.nodes] == [("c", [])]
    with pytest.raises(PlanError, match='unknown node "zz"'):
        select(plan, ["zz"])


def test_template_rendering() -> None:
    release = {
        "id": "c1/ns/web",
        "name": "web",
        "chart": "/charts/web",
        "namespace": "ns",
        "values": ["/v/a.yaml", "/v/b yaml"],
        "set": {"image.tag": "1.2", "debug": True},
        "kubeconfig": None,
        "context": "",
    }
    argv, command = render(HELM_TEMPLATE, release, Path("/stack"))
    assert command is None
    assert argv == [
        "helm", "upgrade", "--install", "web", "/charts/web", "--namespace=ns",
        "--values=/v/a.yaml", "--values=/v/b yaml", "--set=image.tag=1.2", "--set=debug=true",
    ]  # fmt: skip
    argv, command = render("deploy {name} -f {values}", release, Path("/stack"))
    assert argv is None and command == "deploy web -f /v/a.yaml '/v/b yaml'"
    with pytest.raises(PlanError, match=r"unknown placeholder \{nmae\}"):
        render(["x", "{nmae}"], release, Path("/stack"))


STUB = [sys.executable, "-c", "import sys; print('apply', *sys.argv[1:])", "{id}", "--set={set}"]


@needs_corpus
@pytest.mark.parametrize("name", VALID)
def test_corpus_stacks_load_as_plans(name: str) -> None:
    plan = load(STACKS / name / "stack.yaml", stack_command=STUB)
    assert plan.kind == "stack" and plan.nodes
    for node in plan.nodes:
        assert node.id.count("/") == 2 and node.argv is not None
        assert node.argv[3] == node.id


@needs_corpus
def test_corpus_inheritance_and_ids() -> None:
    plan = load(STACKS / "07-inheritance-overlays" / "stack.yaml", stack_command=STUB)
    by_name = {n.meta["release"]: n for n in plan.nodes}
    node = by_name["e2e07-a"]
    assert node.id == "archimedes/ktl-stack-e2e/e2e07-a"
    assert node.meta["chart"] == str(
        (STACKS / "07-inheritance-overlays" / "charts" / "cm").resolve()
    )
    assert node.cwd == str((STACKS / "07-inheritance-overlays" / "apps" / "a").resolve())
    assert "--set=fixture=07-a" in (node.argv or [])


@needs_corpus
def test_x1_cycle_and_x2_missing_need_are_refused_in_ktl_words() -> None:
    with pytest.raises(PlanError) as info:
        load(STACKS / "x1-cycle-detect" / "stack.yaml", stack_command=STUB)
    text = str(info.value)
    assert "dependency cycle detected: [" in text
    assert "e2ex1-b -> e2ex1-a (declared)" in text
    assert ":10: " in text  # the line of the need, as the diagnostic has it (0-based 9)
    with pytest.raises(PlanError) as info:
        load(STACKS / "x2-missing-dep" / "stack.yaml", stack_command=STUB)
    assert info.value.problems == [
        f"{(STACKS / 'x2-missing-dep' / 'stack.yaml').resolve()}:10: "
        'release archimedes/ktl-stack-e2e/e2ex2-app needs missing dependency "e2ex2-db"'
    ]


@needs_corpus
async def test_corpus_large_graph_runs_in_dependency_order(
    manager: SessionManager, tmp_path: Path
) -> None:
    root = tmp_path / "stack"
    shutil.copytree(STACKS / "10-large-graph", root)
    (root / "stack.yaml").write_text(
        (root / "stack.yaml").read_text() + "runner:\n  concurrency: 3\n"
    )
    stub = [sys.executable, "-c", "import time, sys; time.sleep(0.1); print(*sys.argv[1:])"]
    plan = load(root / "stack.yaml", stack_command=[*stub, "{name}", "{set}"])
    assert plan.concurrency == 3
    session, record, _ = await run_plan(manager, plan)
    assert session.state is State.DONE, record
    spans = await intervals(manager, record)
    by_id = nodes(record)
    for node in plan.nodes:
        for dep in node.deps:
            assert spans[dep][1] <= spans[node.id][0], (dep, node.id)
    assert len(by_id) == 10
    out = "\n".join(await manager.output_lines(by_id[plan.nodes[0].id]["sessionId"]))
    assert "e2e10-01 fixture=10-01" in out


def test_stack_runner_limits_become_pools(tmp_path: Path) -> None:
    (tmp_path / "charts" / "app").mkdir(parents=True)
    (tmp_path / "charts" / "app" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: app\nversion: 0.1.0\n"
    )
    (tmp_path / "stack.yaml").write_text(
        textwrap.dedent(
            """\
            name: lim
            defaults: {cluster: {name: c1}, namespace: apps}
            runner:
              concurrency: 4
              limits: {maxParallelPerNamespace: 2, parallelismGroupLimit: 1, maxParallelKind: {Job: 1}}
            profiles:
              fast: {runner: {concurrency: 8}}
            releases:
              - {name: a, chart: ./charts/app, parallelismGroup: db}
              - {name: b, chart: ./charts/app, parallelismGroup: db, namespace: other}
              - {name: c, chart: ./charts/app, needs: [a]}
            """
        )
    )
    plan = load(tmp_path / "stack.yaml", stack_command=["true"])
    assert plan.concurrency == 4
    assert plan.limits == {"namespace:c1/apps": 2, "group:db": 1, "namespace:c1/other": 2}
    by_id = plan.by_id()
    assert by_id["c1/apps/a"].pools == ["namespace:c1/apps", "group:db"]
    assert by_id["c1/apps/c"].deps == ["c1/apps/a"]
    assert load(tmp_path / "stack.yaml", stack_command=["true"], profile="fast").concurrency == 8
    assert plan.info["notes"] == [
        "runner.limits.maxParallelKind is not applied by ktl-lsp plans (it needs the rendered charts)"
    ]


def test_a_nested_stack_of_its_own_runs_as_its_own_root(tmp_path: Path) -> None:
    """ktl runs testdata/stack/smoke/basic as a root; run from smoke/, ktl collects basic/'s
    releases too (and refuses their ids as duplicates): the plan does what ktl does."""
    stack = "kind: Stack\nname: {}\ndefaults: {{cluster: {{name: c}}}}\nreleases:\n  - {{name: a, chart: ./chart}}\n"
    for directory, name in ((tmp_path, "smoke"), (tmp_path / "basic", "smoke-basic")):
        (directory / "chart").mkdir(parents=True)
        (directory / "stack.yaml").write_text(stack.format(name))
    inner = load(tmp_path / "basic" / "stack.yaml", stack_command=STUB)
    assert [n.id for n in inner.nodes] == ["c/default/a"]
    with pytest.raises(PlanError, match="duplicate release id c/default/a"):
        load(tmp_path / "stack.yaml", stack_command=STUB)
