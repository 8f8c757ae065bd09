"""Bad input in charts, through a real server and real renders: each is a diagnostic that says
what and where, the server keeps answering, and the file's other diagnostics stay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types as lsp

from tests.conftest import Ktl
from tests.lsp.features.test_diagnostics import Publishes, open_doc, write
from tests.lsp.features.test_helm import helm_diagnostics

pytest.importorskip("helm_python")

CHART = "apiVersion: v2\nname: c\nversion: 0.1.0\nicon: https://example.com/c.png\n"


def _chart(root: Path, templates: dict[str, str], values: str = "name: x\n") -> Path:
    chart = root / "c"
    root.mkdir(parents=True, exist_ok=True)
    write(chart, "Chart.yaml", CHART)
    write(chart, "values.yaml", values)
    for name, text in templates.items():
        (chart / "templates").mkdir(parents=True, exist_ok=True)
        (chart / "templates" / name).write_text(text)
    return chart


def _codes(params: lsp.PublishDiagnosticsParams) -> list[tuple[str, int, str]]:
    return sorted((str(d.code), d.range.start.line, d.message) for d in params.diagnostics)


async def _answers_quickly(ktl: Ktl, uri: str) -> None:
    started = time.monotonic()
    symbols = await ktl.client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    assert symbols is not None and time.monotonic() - started < 2


async def test_template_syntax_errors_at_their_lines(ktl: Ktl, tmp_path: Path) -> None:
    unclosed = _chart(tmp_path / "one", {"t.yaml": "a: 1\nb: {{ .Values.name\n"})
    unknown = _chart(
        tmp_path / "two", {"t.yaml": "a: {{ .Values.nope }}\nb: {{ nope .Values.name }}\n"}
    )
    pubs = Publishes(ktl)
    first = open_doc(ktl, unclosed / "templates" / "t.yaml")
    second = open_doc(ktl, unknown / "templates" / "t.yaml")
    params = await pubs.until(first, lambda p: bool(helm_diagnostics(p)), timeout=20)
    [error] = helm_diagnostics(params)
    assert error.range.start.line == 1 and error.severity == lsp.DiagnosticSeverity.Error
    assert error.message == "unclosed action started at templates/t.yaml:2 (render: values.yaml)"
    params = await pubs.until(second, lambda p: bool(helm_diagnostics(p)), timeout=20)
    assert _codes(params) == [
        ("helm-render", 1, 'function "nope" not defined (render: values.yaml)'),
        (
            "helm-values-ref",
            0,
            ".Values.nope is not defined in values.yaml: give it a default there, or guard it "
            "(default, required, if, with)",
        ),
    ]  # the template's own findings stay beside the render error
    await _answers_quickly(ktl, second)


async def test_include_recursion_is_an_error_and_the_server_answers(
    ktl: Ktl, tmp_path: Path
) -> None:
    chart = _chart(
        tmp_path,
        {"loop.yaml": '{{- define "a" }}{{ include "a" . }}{{ end }}\nname: {{ include "a" . }}\n'},
    )
    pubs = Publishes(ktl)
    uri = open_doc(ktl, chart / "templates" / "loop.yaml")
    params = await pubs.until(uri, lambda p: bool(helm_diagnostics(p)), timeout=30)
    [error] = helm_diagnostics(params)
    assert error.range.start.line == 0
    assert "rendering template has a nested reference name: a" in error.message
    await _answers_quickly(ktl, uri)


async def test_a_template_writing_50_mb_is_cut_short(ktl: Ktl, tmp_path: Path) -> None:
    big = '{{- range until 52000 }}\n{{ "x" | repeat 1000 }}: 1\n{{- end }}\n'
    chart = _chart(
        tmp_path,
        {"big.yaml": big, "cm.yaml": "kind: ConfigMap\nname: {{ .Values.nope }}\n"},
    )
    pubs = Publishes(ktl)
    uri = open_doc(ktl, chart / "Chart.yaml")
    cm = open_doc(ktl, chart / "templates" / "cm.yaml")
    params = await pubs.until(uri, lambda p: bool(helm_diagnostics(p)), timeout=60)
    [cut] = helm_diagnostics(params)
    assert cut.severity == lsp.DiagnosticSeverity.Warning and cut.range.start.line == 0
    assert cut.message == (
        "rendered output larger than 16 MiB; only part of it is checked (render: values.yaml)"
    )
    await _answers_quickly(ktl, cm)
    params = await pubs.until(cm, lambda p: bool(p.diagnostics))
    # the other template is still rendered and checked
    assert sorted(str(d.code) for d in params.diagnostics) == [
        "helm-template-schema",  # no apiVersion
        "helm-values-ref",
    ]


async def test_a_binary_file_in_templates_is_named_on_chart_yaml(ktl: Ktl, tmp_path: Path) -> None:
    chart = _chart(tmp_path, {"cm.yaml": "kind: ConfigMap\nname: {{ .Values.name }}\n"})
    (chart / "templates" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00{{\xff\xfe\x00")
    pubs = Publishes(ktl)
    uri = open_doc(ktl, chart / "Chart.yaml")
    params = await pubs.until(uri, lambda p: bool(helm_diagnostics(p)), timeout=20)
    [error] = helm_diagnostics(params)
    assert error.range.start.line == 0
    assert error.message.startswith(
        "templates/logo.png is not a text file, yet Helm renders every file of templates/ as a "
        "template (move it out, e.g. to files/): "
    )
    assert [r.message for r in error.related_information or []] == ["in templates/logo.png:3"]
    await asyncio.sleep(0.3)
    assert pubs.latest((chart / "templates" / "logo.png").as_uri()) is None


async def test_without_chart_yaml_templates_are_no_chart(ktl: Ktl, tmp_path: Path) -> None:
    root = tmp_path / "nochart"
    write(root, "values.yaml", "name: x\n")
    cm = write(
        root,
        "templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n"
        "{{- if .Values.x }}\ndata: {}\n{{- end }}\n",
    )
    pubs = Publishes(ktl)
    uri = open_doc(ktl, cm)
    params = await pubs.until(uri)
    assert not params.diagnostics  # not rendered, and its actions are no YAML errors
    await asyncio.sleep(0.5)
    latest = pubs.latest(uri)
    assert latest is not None and not latest.diagnostics


async def test_values_files_that_cannot_be_read(ktl: Ktl, tmp_path: Path) -> None:
    chart = _chart(tmp_path, {"cm.yaml": "kind: ConfigMap\nname: {{ .Values.name }}\n"})
    bad = write(chart, "ci/bad-values.yaml", "name: ok\nlist: [1, 2\nmore: x\n")
    (chart / "ci" / "dir-values.yaml").mkdir()  # a directory where a values file should be
    pubs = Publishes(ktl)
    chart_uri = open_doc(ktl, chart / "Chart.yaml")
    params = await pubs.until(bad.as_uri(), lambda p: bool(helm_diagnostics(p)), timeout=20)
    [error] = helm_diagnostics(params)
    assert error.range.start.line > 0 and "render: ci/bad-values.yaml" in error.message
    params = await pubs.until(chart_uri, lambda p: bool(helm_diagnostics(p)), timeout=20)
    [unreadable] = helm_diagnostics(params)
    assert unreadable.range.start.line == 0
    assert unreadable.message.startswith(
        f"cannot read values file {chart / 'ci' / 'dir-values.yaml'}"
    )
    assert (
        "Is a directory" in unreadable.message
        and "render: ci/dir-values.yaml" in unreadable.message
    )
    await _answers_quickly(ktl, chart_uri)
