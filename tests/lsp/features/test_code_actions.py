"""Quick fixes end to end: a real server's code actions for the diagnostics it published,
applied by the test as an editor would, and the diagnostic gone after the edit."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig

from tests.checks.test_fixes import DEPLOYMENT, INGRESS, STACK
from tests.conftest import Ktl, StartKtl, server_command
from tests.lsp.features.test_diagnostics import Publishes, open_doc, write


@pytest.fixture
def pubs(ktl: Ktl) -> Publishes:
    return Publishes(ktl)


async def code_actions(
    ktl: Ktl, uri: str, rng: lsp.Range, diagnostics: Sequence[lsp.Diagnostic] = ()
) -> list[lsp.CodeAction]:
    result = await ktl.client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=lsp.CodeActionContext(diagnostics=list(diagnostics)),
        )
    )
    assert result is not None
    return [a for a in result if isinstance(a, lsp.CodeAction)]


def offset(text: str, position: lsp.Position) -> int:
    """A UTF-16 position (the client's default encoding) as an index into `text`."""
    lines = text.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: position.line])
    line = lines[position.line] if position.line < len(lines) else ""
    units = index = 0
    while units < position.character and index < len(line):
        units += 2 if ord(line[index]) > 0xFFFF else 1
        index += 1
    return start + index


def applied(text: str, uri: str, action: lsp.CodeAction) -> str:
    assert action.edit is not None and action.edit.changes is not None
    assert list(action.edit.changes) == [uri]
    edits = sorted(
        action.edit.changes[uri],
        key=lambda e: (e.range.start.line, e.range.start.character),
        reverse=True,
    )
    for edit in edits:
        start, end = offset(text, edit.range.start), offset(text, edit.range.end)
        text = text[:start] + edit.new_text + text[end:]
    return text


async def fix(
    ktl: Ktl, pubs: Publishes, path: Path, code: str, needle: str, title: str
) -> tuple[str, lsp.CodeAction]:
    """Opens the file, takes the diagnostic, applies its quick fix, and waits until the server
    has checked the new text without that diagnostic; returns the new text and the action."""
    text = path.read_text()
    uri = open_doc(ktl, path)

    def matching(p: lsp.PublishDiagnosticsParams) -> list[lsp.Diagnostic]:
        return [d for d in p.diagnostics if d.code == code and needle in d.message]

    published = await pubs.until(uri, lambda p: bool(matching(p)))
    diagnostic = matching(published)[0]
    actions = await code_actions(ktl, uri, diagnostic.range, [diagnostic])
    chosen = [a for a in actions if a.title == title]
    assert len(chosen) == 1, [a.title for a in actions]
    action = chosen[0]
    assert action.kind == lsp.CodeActionKind.QuickFix
    assert action.diagnostics is not None
    assert [(d.code, d.message, d.range) for d in action.diagnostics] == [
        (diagnostic.code, diagnostic.message, diagnostic.range)
    ]
    new_text = applied(text, uri, action)
    list(yaml.safe_load_all(new_text))
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=new_text)],
        )
    )
    after = await pubs.until(uri, lambda p: p.version == 2)
    assert not [d for d in after.diagnostics if d.message == diagnostic.message]
    return new_text, action


async def test_a_misspelled_key_becomes_the_suggested_one(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    path = write(tmp_path, "deploy.yaml", DEPLOYMENT.replace("  replicas: 2", "  replcas: 2"))
    fixed, action = await fix(
        ktl, pubs, path, "k8s-schema", "replcas", 'Change "replcas" to "replicas"'
    )
    assert fixed == DEPLOYMENT and action.is_preferred
    # After non-ASCII text on its line: the edit's range counts UTF-16 code units.
    flow = 'metadata: {annotations: {note: "café 😀"}, name: web}'
    text = DEPLOYMENT.replace("metadata:\n  name: web", flow)
    path = write(tmp_path, "flow.yaml", text.replace("name: web}", "nme: web}"))
    fixed, _ = await fix(ktl, pubs, path, "k8s-schema", ".nme", 'Change "nme" to "name"')
    assert fixed == text


async def test_a_quoted_number_becomes_the_integer(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    path = write(
        tmp_path, "deploy.yaml", DEPLOYMENT.replace("containerPort: 80", 'containerPort: "80"')
    )
    fixed, action = await fix(
        ktl, pubs, path, "k8s-schema", "containerPort", 'Change "80" to the integer 80'
    )
    assert fixed == DEPLOYMENT and action.is_preferred


async def test_a_later_duplicate_key_is_removed(ktl: Ktl, pubs: Publishes, tmp_path: Path) -> None:
    text = DEPLOYMENT.replace(
        "{app: web}\n  template", "{app: web}\n  selector:\n    matchLabels: {}\n  template"
    )
    path = write(tmp_path, "deploy.yaml", text)
    fixed, _ = await fix(
        ktl, pubs, path, "yaml-duplicate-key", '"selector"', 'Remove the later "selector"'
    )
    assert fixed == DEPLOYMENT


async def test_a_need_that_names_no_release(ktl: Ktl, pubs: Publishes, tmp_path: Path) -> None:
    (tmp_path / "charts" / "db").mkdir(parents=True)
    path = write(tmp_path, "stack.yaml", STACK)
    fixed, _ = await fix(
        ktl,
        pubs,
        path,
        "stack-missing-need",
        "databse",
        'Change "databse" to the release "database"',
    )
    assert fixed == STACK.replace("[databse]", "[database]")


async def test_an_api_version_no_longer_served(start_ktl: StartKtl, tmp_path: Path) -> None:
    ktl = await start_ktl(options={"k8sVersion": "1.30"})
    pubs = Publishes(ktl)
    pdb = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: p\n"
    fixed, _ = await fix(
        ktl,
        pubs,
        write(tmp_path, "pdb.yaml", pdb),
        "k8s-unknown-kind",
        "policy/v1beta1",
        "Change apiVersion to policy/v1 (no field changes needed)",
    )
    assert fixed == pdb.replace("policy/v1beta1", "policy/v1")


async def test_an_old_ingress_and_deployment_move_with_their_fields(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    fixed, action = await fix(
        ktl,
        pubs,
        write(tmp_path, "ingress.yaml", INGRESS),
        "k8s-unknown-kind",
        "extensions/v1beta1",
        "Change apiVersion to networking.k8s.io/v1, rename spec.backend to spec.defaultBackend, "
        "move serviceName/servicePort to service: {name, port}, "
        "add pathType: ImplementationSpecific to 1 path(s)",
    )
    assert action.is_preferred is True
    paths = yaml.safe_load(fixed)["spec"]["rules"][0]["http"]["paths"]
    assert paths[0]["backend"] == {"service": {"name": "web", "port": {"number": 80}}}
    assert paths[0]["pathType"] == "ImplementationSpecific"
    old = DEPLOYMENT.replace("apps/v1", "apps/v1beta2").replace(
        "  selector:\n    matchLabels: {app: web}\n", ""
    )
    moved, _ = await fix(
        ktl,
        pubs,
        write(tmp_path, "deploy.yaml", old),
        "k8s-unknown-kind",
        "apps/v1beta2",
        "Change apiVersion to apps/v1, add spec.selector.matchLabels from the template's labels",
    )
    assert yaml.safe_load(moved)["spec"]["selector"] == {"matchLabels": {"app": "web"}}


async def test_a_missing_required_field_is_added(ktl: Ktl, pubs: Publishes, tmp_path: Path) -> None:
    text = DEPLOYMENT.replace(
        "        - name: web\n          image: nginx\n", "        - image: nginx\n"
    )
    fixed, action = await fix(
        ktl,
        pubs,
        write(tmp_path, "deploy.yaml", text),
        "k8s-schema",
        '"name" in spec.template.spec.containers[0]',
        'Add the required field "name"',
    )
    assert fixed.endswith('            - containerPort: 80\n          name: ""\n')
    assert action.is_preferred


async def test_only_the_fixes_at_the_range_and_bad_input(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    text = DEPLOYMENT.replace("  replicas: 2", "  replcas: 2").replace(
        "containerPort: 80", 'containerPort: "80"'
    )
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", text))
    await pubs.until(uri, lambda p: len(p.diagnostics) == 2)

    def at(line: int, start: int, end: int | None = None) -> lsp.Range:
        return lsp.Range(
            start=lsp.Position(line=line, character=start),
            end=lsp.Position(line=line, character=start if end is None else end),
        )

    assert [a.title for a in await code_actions(ktl, uri, at(5, 4))] == [
        'Change "replcas" to "replicas"'
    ]
    everything = lsp.Range(
        start=lsp.Position(line=0, character=0), end=lsp.Position(line=99, character=0)
    )
    assert len(await code_actions(ktl, uri, everything)) == 2
    assert await code_actions(ktl, uri, at(1, 2)) == []  # no finding there
    assert await code_actions(ktl, uri, at(400, 0)) == []  # past the end
    never = (tmp_path / "never-opened.yaml").as_uri()
    assert await code_actions(ktl, never, at(0, 0)) == []
    refactor = await ktl.client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=at(5, 4),
            context=lsp.CodeActionContext(diagnostics=[], only=[lsp.CodeActionKind.Refactor]),
        )
    )
    assert not refactor


async def test_the_capability_is_advertised(tmp_path: Path) -> None:
    config = ClientServerConfig(
        server_command=server_command(tmp_path / "sessions.db"), server_env=dict(os.environ)
    )
    client = await config.start()
    try:
        result = await client.initialize_session(
            lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), root_uri=tmp_path.as_uri())
        )
    finally:
        await asyncio.wait_for(client.shutdown_session(), 10)
        await client.stop()
    provider = result.capabilities.code_action_provider
    assert isinstance(provider, lsp.CodeActionOptions)
    assert list(provider.code_action_kinds or []) == [lsp.CodeActionKind.QuickFix]
