"""ktl stacks: the real-world corpus, and broken stacks reported with ktl's wording."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ktl_lsp.checks import check_paths
from tests.checks.conftest import CORPUS, brief

STACKS = CORPUS / "ktl-stack"
VALID = [
    "01-basic-chain", "02-fanout", "03-fanin", "04-three-wave", "05-inline-releases",
    "06-release-files-mix", "07-inheritance-overlays", "08-tags-selection",
    "09-from-path-selection", "10-large-graph", "11-verify-enabled", "12-verify-warning-fail",
]  # fmt: skip
needs_corpus = pytest.mark.skipif(not STACKS.is_dir(), reason="shared corpus not present")


@needs_corpus
@pytest.mark.parametrize("name", VALID)
def test_valid_corpus_stacks_have_no_error(name: str) -> None:
    results = check_paths([STACKS / name])
    assert results, "the walk found no files"
    errors = [(p, f) for p, fs in results.items() for f in fs if f.severity == "error"]
    assert errors == []


@needs_corpus
def test_x1_reports_the_cycle_with_every_edge() -> None:
    path = (STACKS / "x1-cycle-detect" / "stack.yaml").resolve()
    findings = check_paths([STACKS / "x1-cycle-detect"])[path]
    assert brief(findings) == [
        ("stack-cycle", 9, 12, 9, 19, "error"),
        ("stack-cycle", 12, 12, 12, 19, "error"),
    ]
    message = findings[0].message
    assert message.startswith("dependency cycle detected: [")
    assert "e2ex1-a(e2ex1-a)" in message and "e2ex1-b(e2ex1-b)" in message
    assert "e2ex1-b -> e2ex1-a (declared)" in message  # ktl names the edges by release
    assert [r.range.start.line for r in findings[0].related] == [12]


@needs_corpus
def test_x2_reports_the_missing_need() -> None:
    path = (STACKS / "x2-missing-dep" / "stack.yaml").resolve()
    findings = check_paths([STACKS / "x2-missing-dep"])[path]
    assert brief(findings) == [("stack-missing-need", 9, 12, 9, 20, "error")]
    assert findings[0].message == (
        'release archimedes/ktl-stack-e2e/e2ex2-app needs missing dependency "e2ex2-db"'
    )


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_broken_stack_uses_ktl_wording(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
            "stack.yaml": """\
            apiVersion: ktl.dev/v2
            kind: Stack
            defaultProfile: prod
            defaults:
              cluster: {name: c1}
              runner: {concurrency: 2}
            runner:
              concurrency: 0
              adaptive: {mode: fast, window: 2}
            cli: {output: yaml}
            hooks:
              preApply:
                - name: h
                  type: shell
                - type: kubectl
                  timeout: 90
                - type: http
                  http: {url: "https://x"}
                  when: sometimes
                  retry: 0
            releases:
              - name: a
                chart: ./charts/app
                needs: [b]
                dependsOn: [b]
              - name: b
                chart: ./charts/missing
                values: [values/b.yaml]
              - chart: ./charts/app
            """,
        },
    )
    findings = check_paths([tmp_path])[(tmp_path / "stack.yaml").resolve()]
    messages = {(f.range.start.line, f.severity, f.message) for f in findings}
    expected = {
        (0, "error", 'stack.yaml: apiVersion must be ktl.dev/v1 (got "ktl.dev/v2")'),
        (2, "warning", 'defaultProfile "prod" names no profile; ktl silently ignores it'),
        (
            5,
            "warning",
            "defaults.runner is ignored by ktl; put runner at the top level or under "
            "profiles.<name>",
        ),
        (7, "error", "runner.concurrency must be >= 1 (got 0)"),
        (8, "error", 'runner.adaptive.mode must be balanced|conservative|aggressive (got "fast")'),
        (8, "error", "runner.adaptive.window must be >= 4 (got 2)"),
        (9, "error", 'cli.output must be table|json (got "yaml")'),
        (13, "error", 'hooks.preApply: unknown hook type "shell" (expected kubectl|script|http)'),
        (14, "error", "hooks.preApply: kubectl hook requires kubectl.args"),
        (
            15,
            "error",
            "hooks.preApply[1].timeout: must be a Go duration such as 90s or 2m "
            "(got '90'); bare numbers are rejected",
        ),
        (18, "error", 'hooks.preApply: when must be success|failure|always (got "sometimes")'),
        (19, "error", "hooks.preApply: retry must be >= 1 (got 0)"),
        (
            24,
            "warning",
            "ktl has no dependsOn key: dependencies are declared with needs (a list "
            "of release names)",
        ),
        (
            26,
            "error",
            'chart "./charts/missing" does not exist (resolved to '
            f"{(tmp_path / 'charts' / 'missing').resolve()})",
        ),
        (
            27,
            "error",
            'values file "values/b.yaml" does not exist (resolved to '
            f"{(tmp_path / 'values' / 'b.yaml').resolve()})",
        ),
        (28, "error", "stack.yaml: releases[2].name is required"),
    }
    assert messages == expected


def test_cycle_across_release_files_and_duplicates(tmp_path: Path) -> None:
    chart = "apiVersion: v2\nname: app\nversion: 0.1.0\n"
    _write(
        tmp_path,
        {
            "charts/app/Chart.yaml": chart,
            "stack.yaml": "defaults:\n  cluster: {name: c1}\n",
            "svc/a/release.yaml": "name: a\nchart: ../../charts/app\nneeds: [b]\n",
            "svc/b/release.yaml": "name: b\nchart: ../../charts/app\nnamespace: x\nneeds: [a]\n",
            "svc/c/release.yaml": "name: a\nchart: ../../charts/app\nnamespace: other\n",
        },
    )
    results = check_paths([tmp_path])
    a = results[(tmp_path / "svc/a/release.yaml").resolve()]
    b = results[(tmp_path / "svc/b/release.yaml").resolve()]
    c = results[(tmp_path / "svc/c/release.yaml").resolve()]
    assert brief(a) == [("stack-cycle", 2, 8, 2, 9, "error")]
    assert brief(b) == [("stack-cycle", 3, 8, 3, 9, "error")]
    assert a[0].related[0].path == str((tmp_path / "svc/b/release.yaml").resolve())
    assert brief(c) == [("stack-duplicate-release", 0, 6, 0, 7, "error")]
    assert c[0].message == (
        'duplicate release name "a" in cluster "c1" (c1/default/a vs c1/other/a)'
    )


def test_release_file_rules(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "stack.yaml": "defaults:\n  cluster: {name: c1}\n",
            "apps/x/release.yaml": """\
            apiVersion: ktl.dev/v1
            kind: Stack
            chart: oci://registry/charts/x
            verify: {enabled: true}
            hooks:
              postApply:
                - {type: script, script: {command: [echo]}, runOnce: true}
            """,
        },
    )
    findings = check_paths([tmp_path])[(tmp_path / "apps/x/release.yaml").resolve()]
    messages = {(f.range.start.line, f.message) for f in findings}
    assert messages == {
        (1, 'release.yaml: kind must be Release (got "Stack")'),
        (0, "release.yaml: name is required"),
        (3, "verify is ignored in release.yaml; ktl reads it only from inline releases"),
        (
            6,
            "hooks.postApply: runOnce is not allowed here (only the root "
            "stack.yaml hooks can use runOnce)",
        ),
    }


def test_a_stack_only_in_the_editor_is_checked_as_a_stack(tmp_path: Path) -> None:
    """A new stack.yaml (and a release.yaml beside it) not saved yet: still the stack root,
    still its graph. Before, it was called a subdirectory stack and its cycle went unseen."""
    from ktl_lsp.checks import Workspace

    (tmp_path / "chart").mkdir()
    stack = tmp_path / "stack.yaml"
    release = tmp_path / "apps" / "release.yaml"
    workspace = Workspace()
    workspace.update(
        stack,
        "name: s\ndefaults: {cluster: {name: c}}\nreleases:\n"
        "  - {name: a, chart: ./chart, needs: [b]}\n",
    )
    workspace.update(release, "name: b\nchart: ../chart\nneeds: [a]\n")
    assert not stack.exists() and not release.exists()
    codes = [(f.code, f.message) for f in workspace.findings_for(stack)]
    assert not any("subdirectory" in m for _, m in codes), codes
    assert [c for c, _ in codes] == ["stack-cycle"]
    assert [f.code for f in workspace.findings_for(release)] == ["stack-cycle"]


SMOKE_STACK = """\
apiVersion: ktl.dev/v1
kind: Stack
name: {name}
defaults:
  cluster: {{name: archimedes, kubeconfig: ~/.kube/archimedes.yaml}}
  namespace: ktl-stack-smoke
releases:
  - name: cm-base
    chart: ./charts/cm-base
  - name: cm-dependent
    chart: ./charts/cm-dependent
    needs: [cm-base]
"""


def smoke(tmp_path: Path) -> Path:
    """ktl's testdata/stack/smoke: a stack whose subdirectories hold stacks of their own
    (`basic` is run as a root by ktl's tests), and one that is a layer (`inheritance/services`)."""
    root = tmp_path / "smoke"
    files = {
        "stack.yaml": SMOKE_STACK.format(name="smoke"),
        "basic/stack.yaml": SMOKE_STACK.format(name="smoke-basic"),
        "inheritance/stack.yaml": "apiVersion: ktl.dev/v1\nkind: Stack\nname: smoke-inheritance\n"
        "defaults:\n  cluster: {name: archimedes}\n  namespace: ktl-stack-smoke\n",
        "inheritance/services/stack.yaml": "releases:\n  - name: svc-a\n    chart: ./svc-a\n"
        "  - name: cm-base\n    chart: ./svc-a\n",
    }
    for directory in ("charts", "basic/charts"):
        for chart in ("cm-base", "cm-dependent"):
            (root / directory / chart).mkdir(parents=True)
            (root / directory / chart / "Chart.yaml").write_text(f"name: {chart}\n")
    (root / "inheritance/services/svc-a").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_nested_stack_of_its_own_is_its_own_root(tmp_path: Path) -> None:
    from ktl_lsp.checks import Workspace

    root = smoke(tmp_path)
    results = check_paths([root])
    outer, basic = results[root / "stack.yaml"], results[root / "basic/stack.yaml"]
    assert basic == []  # no duplicate release ids against the outer stack, no layer warnings
    assert results[root / "inheritance/services/stack.yaml"] == []  # a layer of inheritance/
    [note] = outer
    assert (note.code, note.severity, note.range.start.line) == (
        "stack-nested-root",
        "information",
        2,
    )
    assert note.message.startswith("basic/, inheritance/: stack(s) of their own")
    assert [(r.path, r.range.start.line) for r in note.related] == [
        (str(root / "basic/stack.yaml"), 2),
        (str(root / "inheritance/stack.yaml"), 2),
    ]
    workspace = Workspace()
    workspace.add_directory(root)
    ids = [i for i, _, _ in workspace.stack_releases(root / "basic/stack.yaml")]
    assert ids == ["archimedes/ktl-stack-smoke/cm-base", "archimedes/ktl-stack-smoke/cm-dependent"]
    layer = workspace.stack_releases(root / "inheritance/services/stack.yaml")
    assert [n for _, n, _ in layer] == ["svc-a", "cm-base"]


def test_a_stack_that_stops_declaring_itself_joins_the_outer_one(tmp_path: Path) -> None:
    from ktl_lsp.checks import Workspace

    root = smoke(tmp_path)
    workspace = Workspace()
    workspace.add_directory(root)
    basic = root / "basic/stack.yaml"
    assert workspace.findings_for(basic) == []
    assert [f.code for f in workspace.findings_for(root / "stack.yaml")] == ["stack-nested-root"]
    layer = SMOKE_STACK.format(name="x").replace(
        "apiVersion: ktl.dev/v1\nkind: Stack\nname: x\n", ""
    )
    affected = workspace.update(basic, layer)
    assert root / "stack.yaml" in affected
    assert {f.code for f in workspace.findings_for(basic)} == {"stack-duplicate-release"}
    [note] = workspace.findings_for(root / "stack.yaml")
    assert note.message.startswith("inheritance/:")
    (root / "new").mkdir()
    affected = workspace.update(root / "new/stack.yaml", SMOKE_STACK.format(name="new"))
    assert root / "stack.yaml" in affected  # a new stack of its own: the note changes
    [note] = workspace.findings_for(root / "stack.yaml")
    assert note.message.startswith("inheritance/, new/:")
