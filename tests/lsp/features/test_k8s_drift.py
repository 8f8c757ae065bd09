"""Drift through the real server: a workspace manifest against its live object, followed by a
watch; a scale shows up as ``k8s-drift`` with the manager that did it, an apply clears it."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.test_diagnostics import Publishes
from tests.lsp.features.test_k8s import open_doc
from tests.lsp.features.test_k8s_explorer import Tree, explorer  # noqa: F401 (fixture)
from tests.lsp.features.test_port_forward import APP


async def test_drift_appears_after_a_scale_and_clears_after_apply(
    explorer: tuple[Ktl, Tree],  # noqa: F811
    api: FakeApi,
    tmp_path: Path,
) -> None:
    ktl, tree = explorer
    pubs = Publishes(ktl)
    uri = open_doc(ktl, tmp_path / "app.yaml", APP)
    assert (await ktl.cmd("ktl.apply", {"uri": uri}))["state"] == "done"
    await ktl.cmd("ktl.k8s.watch", {"namespace": "default"})
    await tree.until(lambda: (tree.find("Deployment", "web") or {}).get("ready") == "1/1")

    await ktl.cmd("ktl.k8s.scale", {"kind": "Deployment", "name": "web", "replicas": 3})
    published = await pubs.until(uri, lambda p: any(d.code == "k8s-drift" for d in p.diagnostics))
    [drift] = [d for d in published.diagnostics if d.code == "k8s-drift"]
    assert drift.severity == lsp.DiagnosticSeverity.Information
    assert drift.message == "live differs: 1 field, replicas 1 -> 3 set by ktl-scale"
    assert APP.splitlines()[drift.range.start.line].startswith("kind: Deployment")

    actions = await ktl.client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=drift.range,
            context=lsp.CodeActionContext(diagnostics=[drift]),
        )
    )
    [show] = [a for a in actions or [] if isinstance(a, lsp.Command)]
    assert show.command == "ktl.diff" and show.arguments
    diffed = await ktl.cmd("ktl.diff", show.arguments[0])
    assert "replicas: 3" in diffed["diff"] and "replicas: 1" in diffed["diff"]

    lenses = await ktl.client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    titles = {lens.command.title for lens in lenses or [] if lens.command}
    assert "in cluster: 3/3 ready" in titles or "in cluster: 1/3 ready" in titles

    applied = await ktl.cmd("ktl.apply", {"uri": uri, "force": True})
    assert applied["state"] == "done"
    await pubs.until(uri, lambda p: not any(d.code == "k8s-drift" for d in p.diagnostics))
    await tree.until(lambda: (tree.find("Deployment", "web") or {}).get("ready") == "1/1")
