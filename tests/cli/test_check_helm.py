"""`ktl-lsp check` on Helm charts: the charts among the paths are rendered (every render
`helm/charts.py` lists) and their errors reported at template lines, in every format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_check import run

pytest.importorskip("helm_python")

FIXTURES = Path(__file__).parents[1] / "helm" / "fixtures"
REQUIRED = "ingress.host is required when ingress.enabled (render: ci/ingress-values.yaml)"


@pytest.fixture
def charts(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "web", tmp_path / "charts" / "web")
    lib = tmp_path / "charts" / "lib"
    (lib / "templates").mkdir(parents=True)
    (lib / "Chart.yaml").write_text("apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n")
    (lib / "templates" / "_x.tpl").write_text('{{- define "lib.x" }}{{ .Values.a.b }}{{ end }}\n')
    return tmp_path


def test_a_chart_directory_in_text(charts: Path) -> None:
    result = run("charts/web", cwd=charts)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"charts/web/templates/ingress.yaml:8:13: error: {REQUIRED} [helm-render]",
        "    charts/web/ci/ingress-values.yaml:1:1: render: ci/ingress-values.yaml",
        "1 error(s), 0 warning(s), 0 note(s) in 8 file(s)",  # _helpers.tpl counted
    ]  # and nothing on ci/daemonset-values.yml, a values file with a `kind:` key


def test_a_directory_of_charts_in_json_and_sarif(charts: Path) -> None:
    result = run("--format", "json", ".", cwd=charts)
    assert result.returncode == 1
    found = [f for f in json.loads(result.stdout) if f["code"] == "helm-render"]
    assert [(f["path"], f["range"]["start"], f["message"]) for f in found] == [
        ("charts/web/templates/ingress.yaml", {"line": 7, "character": 12}, REQUIRED)
    ]  # the library chart is not rendered alone
    sarif = json.loads(run("--format", "sarif", "charts", cwd=charts).stdout)
    [result_] = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "helm-render"]
    location = result_["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "charts/web/templates/ingress.yaml"
    assert location["region"]["startLine"] == 8
    rules = {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert "helm-render" in rules


def test_without_a_renderer_it_says_what_would_enable_renders(charts: Path) -> None:
    result = run("--helm-renderer", "none", "charts/web", cwd=charts)
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["0 error(s), 0 warning(s), 0 note(s) in 8 file(s)"]
    assert result.stderr == (
        'ktl-lsp: Helm templates are not rendered (setting helm.renderer is "none")\n'
    )


def test_the_rendered_manifests_findings_at_template_lines(tmp_path: Path) -> None:
    shutil.copytree(Path(__file__).parents[1] / "helm" / "charts" / "seeded", tmp_path / "seeded")
    result = run("seeded", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    found = {(f["path"], f["range"]["start"]["line"], f["code"]) for f in json.loads(result.stdout)}
    assert ("seeded/templates/deployment.yaml", 7, "helm-template-schema") in found
    assert ("seeded/templates/deployment.yaml", 22, "helm-template-schema") in found
