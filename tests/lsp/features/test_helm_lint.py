"""`helm-lint` through a real server: `helm lint`'s findings on Chart.yaml, following the
editor's buffer."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp

from tests.conftest import Ktl
from tests.lsp.features.test_diagnostics import Publishes, open_doc
from tests.lsp.features.test_helm_bad_input import CHART, _chart

pytest.importorskip("helm_python")


async def test_helm_lint_on_chart_yaml_follows_its_buffer(ktl: Ktl, tmp_path: Path) -> None:
    chart = _chart(tmp_path, {"cm.yaml": "kind: ConfigMap\nname: {{ .Values.name }}\n"})
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    pubs = Publishes(ktl)
    uri = open_doc(ktl, chart / "Chart.yaml")

    def lint(p: lsp.PublishDiagnosticsParams) -> list[tuple[int, str, str]]:
        return [
            (d.range.start.line, str(d.severity), d.message)
            for d in p.diagnostics
            if d.code == "helm-lint"
        ]

    params = await pubs.until(uri, lambda p: bool(lint(p)), timeout=20)
    assert lint(params) == [(0, str(lsp.DiagnosticSeverity.Information), "icon is recommended")]
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=CHART)],
        )
    )
    await pubs.until(uri, lambda p: p.version == 2 and not lint(p), timeout=20)
