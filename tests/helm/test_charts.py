"""Charts in a workspace and what is rendered for each: subcharts and libraries render with their
parent, ci values and stack releases are renders of their own, missing dependencies are one note."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from ktl_lsp.helm.charts import (
    chart_root,
    find_charts,
    find_stack_roots,
    missing_dependencies_finding,
    read_chart,
    releases_using,
    render_requests,
)
from ktl_lsp.helm.render import Renderer
from ktl_lsp.helm.render_findings import check_chart

FIXTURES = Path(__file__).parent / "fixtures"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def chart(root: Path, name: str, extra: str = "") -> Path:
    write(root, f"{name}/Chart.yaml", f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n{extra}")
    return root / name


def test_subcharts_and_library_charts_do_not_render_alone(tmp_path: Path) -> None:
    app = chart(tmp_path, "app")
    sub = chart(app / "charts", "sub")
    write(sub, "templates/s.yaml", "a: 1\n")
    chart(tmp_path, "lib", "type: library\n")
    chart(tmp_path / "deep" / "er", "other")
    assert find_charts(tmp_path) == [app, tmp_path / "deep" / "er" / "other"]
    assert chart_root(sub / "templates" / "s.yaml") == app
    assert chart_root(app / "values.yaml") == app
    assert chart_root(tmp_path / "lib" / "Chart.yaml") == tmp_path / "lib"
    assert chart_root(tmp_path / "elsewhere.yaml") is None
    info = read_chart(tmp_path / "lib")
    assert info is not None and info.is_library


def test_missing_dependencies_are_one_note_naming_helm_dependency_build(tmp_path: Path) -> None:
    app = chart(
        tmp_path,
        "app",
        "dependencies:\n"
        "  - name: sub\n    version: 0.1.0\n"
        "  - name: common\n    version: 2.3.1\n    repository: https://charts.example.com\n"
        "  - name: redis\n    version: 19.0.0\n    repository: oci://registry.example.com\n",
    )
    chart(app / "charts", "sub")
    (app / "charts" / "common-2.3.1.tgz").write_bytes(b"\x1f\x8b")
    info = read_chart(app)
    assert info is not None
    finding = missing_dependencies_finding(info, (app / "Chart.yaml").read_text())
    assert finding is not None
    assert (finding.severity, finding.code, finding.range.start.line) == (
        "information",
        "helm-render",
        3,
    )
    assert finding.message == (
        "dependencies missing from charts/: redis 19.0.0; the templates are not rendered until "
        '"helm dependency build" fetches them'
    )
    (app / "charts" / "redis-19.0.0.tgz").write_bytes(b"\x1f\x8b")
    assert missing_dependencies_finding(info, None) is None


def test_what_is_rendered_for_a_chart(tmp_path: Path) -> None:
    web = Path(shutil.copytree(FIXTURES / "web", tmp_path / "charts" / "web"))
    write(
        tmp_path,
        "stack.yaml",
        """\
        apiVersion: ktl.dev/v1
        kind: Stack
        name: shop
        defaultProfile: prod
        defaults:
          namespace: shop
          values: [common.yaml]
        profiles:
          prod:
            defaults:
              set:
                replicaCount: 3
        releases:
          - name: front
            chart: ./charts/web
            values: [front.yaml]
            set:
              image.tag: "2.0"
          - name: other
            chart: oci://registry.example.com/other
        """,
    )
    roots = find_stack_roots([tmp_path])
    assert roots == [tmp_path]
    releases = releases_using(web, roots)
    assert [r["name"] for r in releases] == ["front"]
    picked = web / "values-prod.yaml"
    requests = render_requests(web, "1.30", releases, [picked])
    assert [(r.label, r.release, r.namespace) for r in requests] == [
        ("values.yaml", "release-name", "default"),
        ("ci/daemonset-values.yml", "release-name", "default"),
        ("ci/ingress-values.yaml", "release-name", "default"),
        ("stack release front", "front", "shop"),
        ("values-prod.yaml", "release-name", "default"),
    ]
    front = requests[3]
    assert front.values_files == (tmp_path / "common.yaml", tmp_path / "front.yaml")
    assert front.set_values == (("replicaCount", "3"), ("image.tag", "2.0"))
    assert {r.kube_version for r in requests} == {"1.30"}


@pytest.mark.skipif(not Renderer().available(), reason="no Helm renderer here")
def test_the_same_error_from_several_renders_is_reported_once(tmp_path: Path) -> None:
    web = Path(shutil.copytree(FIXTURES / "web", tmp_path / "web"))
    write(web, "templates/cm.yaml", "a: 1\nb: {{ .Values.config.key }}\n")
    renderer = Renderer()
    try:
        checked = check_chart(web, renderer, "1.31")
    finally:
        renderer.close()
    assert checked.rendered and len(checked.renders) == 3
    [finding] = checked.findings[web / "templates" / "cm.yaml"]
    assert (finding.range.start.line, finding.range.start.character) == (1, 3)
    assert finding.message == (
        "at <.Values.config.key>: nil pointer evaluating interface {}.key "
        "(render: values.yaml, ci/daemonset-values.yml)"
    )
    assert [r.message for r in finding.related] == ["render: ci/daemonset-values.yml"]
    # Helm stops at a render's first error: the ingress render failed elsewhere.
    [required] = checked.findings[web / "templates" / "ingress.yaml"]
    assert required.message.endswith("(render: ci/ingress-values.yaml)")
