"""`ktl-lsp check` through a real subprocess: formats and exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.checks.conftest import CORPUS
from tests.cli.conftest import KTL_LSP, into_a_closed_pipe

REPO = Path(__file__).parents[2]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KTL_LSP, "check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: 1}\nfoo: bar\n"
    )
    return tmp_path


def test_text_and_exit_one_on_errors(project: Path) -> None:
    result = run("bad.yaml", "ok.yaml", cwd=project)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == ("bad.yaml:4:11: error: data.k: expected string, got integer 1 [k8s-schema]")
    assert lines[1] == 'bad.yaml:5:1: error: unknown field "foo" [k8s-schema]'
    assert lines[-1] == "2 error(s), 0 warning(s), 0 note(s) in 2 file(s)"


def test_json_shape(project: Path) -> None:
    result = run("--format", "json", ".", cwd=project)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data[0] == {
        "path": "bad.yaml",
        "range": {"start": {"line": 3, "character": 10}, "end": {"line": 3, "character": 11}},
        "severity": "error",
        "code": "k8s-schema",
        "source": "ktl",
        "message": "data.k: expected string, got integer 1",
    }


def test_sarif(project: Path) -> None:
    result = run("--format", "sarif", "--k8s-version", "1.30", ".", cwd=project)
    assert result.returncode == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run_ = sarif["runs"][0]
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    levels = [r["level"] for r in run_["results"]]
    assert levels == ["error", "error"]
    # Before 1.27 kubectl applied unknown fields with a warning: so does the check.
    older = json.loads(run("--format", "sarif", "--k8s-version", "1.26", ".", cwd=project).stdout)
    assert [r["level"] for r in older["runs"][0]["results"]] == ["error", "warning"]
    for result_ in run_["results"]:
        assert rules[result_["ruleIndex"]] == result_["ruleId"]
        location = result_["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": "bad.yaml", "uriBaseId": "SRCROOT"}
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1
    assert run_["originalUriBaseIds"]["SRCROOT"]["uri"].endswith("/")


def test_exit_zero_when_clean_and_two_on_usage_errors(project: Path) -> None:
    assert run("ok.yaml", cwd=project).returncode == 0
    assert run(cwd=project).returncode == 2
    assert run("--format", "xml", "ok.yaml", cwd=project).returncode == 2
    assert run("--k8s-version", "1.2", "ok.yaml", cwd=project).returncode == 2
    missing = run("nope.yaml", cwd=project)
    assert missing.returncode == 2 and "no such file" in missing.stderr


@pytest.mark.skipif(not (CORPUS / "ktl-stack").is_dir(), reason="shared corpus not present")
def test_corpus_through_the_command() -> None:
    stacks = CORPUS / "ktl-stack"
    valid = [str(p) for p in sorted(stacks.iterdir()) if p.name[:2].isdigit()]
    assert run(*valid, cwd=REPO).returncode == 0
    result = run("--format", "json", str(stacks / "x1-cycle-detect"), cwd=REPO)
    assert result.returncode == 1
    found = json.loads(result.stdout)
    assert {d["code"] for d in found if d["code"] != "helm-lint"} == {"stack-cycle"}
    assert {(d["severity"], d["message"]) for d in found if d["code"] == "helm-lint"} == {
        ("information", "icon is recommended")  # helm lint's advice on the stack's chart
    }
    result = run("--format", "json", str(stacks / "x2-missing-dep"), cwd=REPO)
    found = json.loads(result.stdout)
    assert [d["code"] for d in found if d["code"] != "helm-lint"] == ["stack-missing-need"]


@pytest.mark.parametrize("args", [["bad.yaml"], ["."], ["--format", "json", "."]])
def test_a_reader_that_leaves_ends_it_quietly(project: Path, args: list[str]) -> None:
    gone = into_a_closed_pipe("check", *args, cwd=project)
    assert (gone.returncode, gone.stderr) == (141, "")


def test_piped_into_head(tmp_path: Path) -> None:
    # 3000 findings, more than a pipe holds: the writer is still writing when head leaves.
    data = ", ".join(f"k{i}: {i}" for i in range(3000))
    (tmp_path / "cm.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata: {{{data}}}\n"
    )
    piped = subprocess.run(
        ["bash", "-c", f'{KTL_LSP} check {tmp_path} | head -1; echo "${{PIPESTATUS[0]}}"'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    first, status = piped.stdout.splitlines()
    assert first.endswith("error: data.k0: expected string, got integer 0 [k8s-schema]")
    assert (status, piped.stderr) == ("141", "")


def test_information_and_hints_are_notes_on_every_line(tmp_path: Path) -> None:
    (tmp_path / "cr.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    )
    (tmp_path / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
        "spec: {selector: {app: nothing}, ports: [{port: 80}]}\n"
    )
    result = run(".", cwd=tmp_path)
    *lines, summary = result.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["note", "note"]
    assert summary == "0 error(s), 0 warning(s), 2 note(s) in 2 file(s)"
    severities = [
        d["severity"] for d in json.loads(run("--format", "json", ".", cwd=tmp_path).stdout)
    ]
    assert severities == ["hint", "information"]  # JSON keeps LSP's severities
