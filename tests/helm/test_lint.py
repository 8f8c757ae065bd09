"""`helm lint` through the render worker, as `helm-lint` findings: Chart.yaml fields at their
lines, deprecated APIs at the template's `apiVersion` line, removed APIs left to the schema
check."""

from __future__ import annotations

import contextlib
import json
import socket
import textwrap
from pathlib import Path

import pytest

from ktl_lsp.checks.findings import Finding
from ktl_lsp.helm.lint import lint_findings
from ktl_lsp.helm.render import Renderer

pytest.importorskip("helm_python")

FLOW_SCHEMA = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: first
---
apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
kind: FlowSchema
metadata:
  name: x
spec:
  priorityLevelConfiguration: {name: x}
"""
INGRESS = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: x\n"


@pytest.fixture
def renderer() -> Renderer:
    r = Renderer("library", timeout_s=10)
    yield r  # type: ignore[misc]
    r.close()


def _chart(root: Path, chart_yaml: str) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text(textwrap.dedent(chart_yaml))
    (root / "values.yaml").write_text("{}\n")
    (root / "templates" / "flow.yaml").write_text(FLOW_SCHEMA)
    (root / "templates" / "ingress.yaml").write_text(INGRESS)
    return root


def _brief(found: dict[Path, list[Finding]], root: Path) -> list[tuple[str, int, str, str]]:
    return [
        (str(p.relative_to(root)), f.range.start.line, f.severity, f.message)
        for p, fs in sorted(found.items())
        for f in fs
    ]


def test_chart_fields_and_deprecated_apis(tmp_path: Path, renderer: Renderer) -> None:
    chart = _chart(
        tmp_path / "c",
        """\
        apiVersion: v2
        name: c
        description: d
        version: 1.x
        """,
    )
    messages = renderer.lint_sync(chart, None, "1.30")
    assert messages is not None
    assert _brief(lint_findings(chart, messages, "1.30"), chart) == [
        ("Chart.yaml", 0, "information", "icon is recommended"),
        ("Chart.yaml", 3, "warning", "version '1.x' is not a valid SemVer"),
    ]  # a chart Helm cannot load is not rendered: no template finding
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: c\nversion: 1.0.0\nicon: https://example.com/c.png\n"
    )
    messages = renderer.lint_sync(chart, None, "1.30")
    assert messages is not None
    assert _brief(lint_findings(chart, messages, "1.30"), chart) == [
        (
            "templates/flow.yaml",
            5,
            "warning",
            "flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema is deprecated in v1.29+, "
            "unavailable in v1.32+; use flowcontrol.apiserver.k8s.io/v1 FlowSchema",
        )
    ]  # extensions/v1beta1 Ingress is gone by 1.30: the schema check says so, not lint
    assert lint_findings(chart, messages, "1.32") == {}


def test_a_missing_name_and_the_editors_buffer(tmp_path: Path, renderer: Renderer) -> None:
    chart = _chart(
        tmp_path / "c", "apiVersion: v2\nname: c\nversion: 1.0.0\nicon: https://example.com/c.png\n"
    )
    buffer = {
        chart / "Chart.yaml": "apiVersion: v2\nversion: 1.0.0\nicon: https://example.com/c.png\n"
    }
    messages = renderer.lint_sync(chart, buffer, "1.30")
    assert messages is not None
    found = lint_findings(chart, messages, "1.30", buffer)
    assert ("Chart.yaml", 0, "warning", "name is required") in _brief(found, chart)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 1.0.0\nicon: c.png\n")
    messages = renderer.lint_sync(chart, None, "1.30")
    assert messages is not None
    found = lint_findings(chart, messages, "1.30")
    assert ("Chart.yaml", 3, "warning", "invalid icon URL 'c.png'") in _brief(found, chart)


def test_lint_fetches_no_remote_schema(tmp_path: Path, renderer: Renderer) -> None:
    hits: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    chart = _chart(tmp_path / "c", "apiVersion: v2\nname: c\nversion: 1.0.0\n")
    (chart / "values.schema.json").write_text(json.dumps({"$ref": f"http://127.0.0.1:{port}/s"}))
    try:
        assert renderer.lint_sync(chart, None, "1.30") is not None
        with contextlib.suppress(TimeoutError):
            connection, _ = listener.accept()
            hits.append(connection.recv(200))
            connection.close()
    finally:
        listener.close()
    assert hits == []
