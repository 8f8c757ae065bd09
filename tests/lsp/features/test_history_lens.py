"""A file with history gets a lens with its last run, which opens the replay in the browser."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.conftest import StartKtl


async def test_last_run_lens_opens_the_replay(start_ktl: StartKtl, tmp_path: Path) -> None:
    ktl = await start_ktl()
    plan = tmp_path / "build.plan.yaml"
    plan.write_text("name: build\nnodes:\n  - id: hello\n    run: echo hello from the plan\n")
    uri = plan.as_uri()
    ktl.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri, language_id="yaml", version=1, text=plan.read_text()
            )
        )
    )
    before = await ktl.client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    assert before and all(
        lens.command is None or "open replay" not in lens.command.title for lens in before
    )
    result = await ktl.cmd("ktl.plan.run", {"uri": uri})
    assert result["state"] == "done"
    after = await ktl.client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    assert after is not None
    first = after[0].command
    assert first is not None and first.title == "plan ran just now · open replay"
    assert first.command == "ktl.session.openReplay"
    assert list(first.arguments or []) == [{"sessionId": result["sessionId"]}]
    opened = await ktl.cmd(first.command, first.arguments[0])
    assert opened["opened"] is True
    shown = ktl.client.shown_documents[-1]
    assert shown.external is True and shown.uri == opened["url"] and "/ui/login?code=" in shown.uri
