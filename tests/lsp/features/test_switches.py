"""Per-capability settings end to end: a feature turned off in initializationOptions answers
empty; `workspace/didChangeConfiguration` turns features off and on again in a running server."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from tests.conftest import Ktl, StartKtl
from tests.lsp.features.test_code_actions import code_actions
from tests.lsp.features.test_completion import DEPLOYMENT as COMPLETION_DEPLOYMENT
from tests.lsp.features.test_completion import complete
from tests.lsp.features.test_diagnostics import Publishes, open_doc

#: `replica` misspelled (a quick fix); line 10 is inside a container (completion, hover).
DEPLOYMENT = COMPLETION_DEPLOYMENT.replace("  replicas: 3", "  replica: 3")
IMAGE = lsp.Position(line=10, character=9)
REPLICA = lsp.Range(start=lsp.Position(line=5, character=2), end=lsp.Position(line=5, character=9))

OFF = {"enabled": False}
ALL_OFF = {
    key: OFF
    for key in (
        "completion",
        "hover",
        "symbols",
        "codeActions",
        "codeLens",
        "definition",
        "references",
        "diagnostics",
    )
}


def configure(ktl: Ktl, settings: Any) -> None:
    ktl.client.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(settings=settings)
    )


async def hover(ktl: Ktl, uri: str) -> lsp.Hover | None:
    return await ktl.client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=IMAGE)
    )


async def quick_fixes(
    ktl: Ktl, uri: str, rng: lsp.Range, diagnostics: Sequence[lsp.Diagnostic] = ()
) -> Sequence[lsp.Command | lsp.CodeAction] | None:
    """The server's answer as it is (`code_actions` insists on a list)."""
    return await ktl.client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=lsp.CodeActionContext(diagnostics=list(diagnostics)),
        )
    )


def is_unknown_key(d: lsp.Diagnostic) -> bool:
    return "replica" in d.message


async def test_features_turned_off_at_start_answer_empty(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    ktl = await start_ktl(options=ALL_OFF)
    pubs = Publishes(ktl)
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOYMENT)
    uri = open_doc(ktl, path)
    doc = lsp.TextDocumentIdentifier(uri=uri)

    assert not (await pubs.until(uri)).diagnostics
    assert (
        await ktl.client.text_document_completion_async(
            lsp.CompletionParams(text_document=doc, position=IMAGE)
        )
        is None
    )
    item = lsp.CompletionItem(label="image", data={"apiVersion": "apps/v1", "kind": "Deployment"})
    resolved = await ktl.client.completion_item_resolve_async(item)
    assert resolved.label == "image" and resolved.documentation is None  # handed back as it was
    assert await hover(ktl, uri) is None
    assert (
        await ktl.client.text_document_document_symbol_async(
            lsp.DocumentSymbolParams(text_document=doc)
        )
        is None
    )
    assert await ktl.client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="web")) is None
    assert await quick_fixes(ktl, uri, REPLICA) is None
    assert (
        await ktl.client.text_document_code_lens_async(lsp.CodeLensParams(text_document=doc))
        is None
    )

    # The capabilities stay advertised: turning a feature on needs no new registration.
    caps = ktl.server_capabilities
    assert caps is not None and caps.completion_provider is not None and caps.hover_provider

    # ... and turning them on again answers at once, diagnostics included.
    configure(ktl, {"hover": {"enabled": True}, "diagnostics": {"enabled": True}})
    found = await hover(ktl, uri)
    assert found is not None and "image" in str(found.contents)
    published = await pubs.until(uri, lambda p: any(is_unknown_key(d) for d in p.diagnostics))
    assert [d.code for d in published.diagnostics if is_unknown_key(d)]
    assert await complete(ktl, uri, IMAGE.line, IMAGE.character) == []  # still off


async def test_turned_off_and_on_while_running(ktl: Ktl, tmp_path: Path) -> None:
    pubs = Publishes(ktl)
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOYMENT)
    uri = open_doc(ktl, path)
    published = await pubs.until(uri, lambda p: any(is_unknown_key(d) for d in p.diagnostics))
    diagnostic = next(d for d in published.diagnostics if is_unknown_key(d))

    labels = [i.label for i in await complete(ktl, uri, IMAGE.line, IMAGE.character)]
    assert "ports" in labels
    assert await hover(ktl, uri) is not None
    titles = [a.title for a in await code_actions(ktl, uri, diagnostic.range, [diagnostic])]
    assert any("replicas" in t for t in titles), titles

    # Off, as VS Code's configuration section sends it (under "ktl"), leaving the rest alone.
    configure(
        ktl,
        {"ktl": {"completion": OFF, "codeActions": OFF, "diagnostics": OFF, "k8sVersion": "1.25"}},
    )
    assert await complete(ktl, uri, IMAGE.line, IMAGE.character) == []
    assert await quick_fixes(ktl, uri, diagnostic.range, [diagnostic]) is None
    assert await hover(ktl, uri) is not None  # not named: still on
    assert not (await pubs.until(uri, lambda p: not p.diagnostics)).diagnostics

    # On again, the switches only (a switch left out keeps its value).
    configure(ktl, {"completion": {"enabled": True}, "diagnostics": {"enabled": True}})
    labels = [i.label for i in await complete(ktl, uri, IMAGE.line, IMAGE.character)]
    assert "ports" in labels
    await pubs.until(uri, lambda p: any(is_unknown_key(d) for d in p.diagnostics))
    assert await quick_fixes(ktl, uri, diagnostic.range, [diagnostic]) is None


async def test_a_bad_value_is_said_and_defaulted(ktl: Ktl, tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOYMENT)
    uri = open_doc(ktl, path)
    configure(ktl, {"hover": OFF})
    assert await hover(ktl, uri) is None
    configure(ktl, {"hover": {"enabled": "no"}, "completion": 3})
    assert await hover(ktl, uri) is not None  # the default: on
    said = [m.message for m in ktl.client.messages]
    assert "ktl: setting 'hover.enabled': expected boolean, got string; using True" in said
    assert "ktl: setting 'completion' should be an object; using defaults" in said
    configure(ktl, None)  # no settings at all: nothing changes, nothing to say
    assert await hover(ktl, uri) is not None
