"""``ktl.k8s.edit`` through the real server: the live object as a document, saved -> a dry-run
diff and a question naming the object and its context -> applied; a 422 -> line diagnostics."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.test_diagnostics import Publishes
from tests.lsp.features.test_k8s import change, open_doc
from tests.lsp.features.test_k8s_explorer import Tree, explorer  # noqa: F401 (fixture)
from tests.lsp.features.test_port_forward import deploy


def _save(ktl: Ktl, path: Path, text: str, version: int) -> None:
    """An edit and a save, as the editor sends them (the file written first)."""
    change(ktl, path.as_uri(), text, version)
    path.write_text(text)
    ktl.client.text_document_did_save(
        lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=path.as_uri()))
    )


async def test_edit_live_applies_on_confirmation(
    explorer: tuple[Ktl, Tree],  # noqa: F811
    api: FakeApi,
    tmp_path: Path,
) -> None:
    ktl, _ = explorer
    pubs = Publishes(ktl)
    asked: asyncio.Queue[str] = asyncio.Queue()

    @ktl.client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    async def answer(params: Any) -> lsp.MessageActionItem:
        await asyncio.sleep(0)
        asked.put_nowait(params.message)
        return lsp.MessageActionItem(title="Apply")

    await deploy(ktl, api, tmp_path)
    opened = await ktl.cmd("ktl.k8s.edit", {"kind": "Deployment", "name": "web"})
    assert opened["liveUri"] == "ktl-live://fake/default/Deployment/web.yaml"
    text = opened["yaml"]
    assert "status:" not in text and "resourceVersion" not in text and "replicas: 1" in text
    served = await ktl.cmd("ktl.k8s.live", {"uri": opened["liveUri"]})
    assert served["yaml"] == text
    path = Path(opened["uri"].removeprefix("file://"))
    uri = open_doc(ktl, path, text)

    _save(ktl, path, text.replace("replicas: 1", "replicas: 2"), 2)
    question = await asyncio.wait_for(asked.get(), 20)
    assert "Deployment/web in default" in question and "context fake" in question
    assert "+  replicas: 2" in question
    for _ in range(200):
        live = api.get("apps/v1", "Deployment", "web", "default") or {}
        if live["spec"]["replicas"] == 2:
            break
        await asyncio.sleep(0.05)
    assert live["spec"]["replicas"] == 2

    bad = text.replace("replicas: 1", "replicas: -1")
    _save(ktl, path, bad, 3)
    published = await pubs.until(
        uri, lambda p: any(d.code == "k8s-api-error" for d in p.diagnostics)
    )
    [diag] = [d for d in published.diagnostics if d.code == "k8s-api-error"]
    assert "replicas: -1" in bad.splitlines()[diag.range.start.line]
    assert asked.empty()

    with pytest.raises(JsonRpcException, match="reveal"):
        api.add(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s", "namespace": "default"},
            }
        )
        await ktl.cmd("ktl.k8s.edit", {"kind": "Secret", "name": "s"})
