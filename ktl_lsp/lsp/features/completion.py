"""Completion on Kubernetes manifests: keys from the schema of the document's apiVersion/kind
(required first, snippets with required children when the client takes snippets), enum and
boolean values, kinds with their apiVersion, names of the workspace's objects (and of the
connected cluster's, from `ClusterObjects`' cache), ports of the pods a Service selects; the
documentation comes with `completionItem/resolve`. In ktl files: a stack's release names in
`needs`, a plan's node ids in `deps`, and the keys and values of ktl's formats.

Computed in a worker thread on the editor's current text (a half-typed document included);
anything it cannot answer is an empty list, never an error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from ktl_lsp.documents.file_kinds import FileKind
from ktl_lsp.documents.positions import Position, PositionEncoding
from ktl_lsp.lsp.checker import Checker, to_lsp_range
from ktl_lsp.lsp.feature import Feature, handles
from ktl_lsp.lsp.helm_editing import completions, helm_kind

if TYPE_CHECKING:
    from pathlib import Path

    from ktl_lsp.checks import Workspace
    from ktl_lsp.checks.completion import ClusterNames, Edit, Suggestion

#: Typing one of these asks for completion without the editor's explicit request.
TRIGGERS = [":", " "]
#: Only in Helm templates (`.Values.`, `include "`): YAML files ignore them.
TEMPLATE_TRIGGERS = [".", '"']

_KINDS: dict[str, lsp.CompletionItemKind] = {
    "key": lsp.CompletionItemKind.Property,
    "value": lsp.CompletionItemKind.Value,
    "enum": lsp.CompletionItemKind.EnumMember,
    "boolean": lsp.CompletionItemKind.Value,
    "kind": lsp.CompletionItemKind.Class,
    "apiVersion": lsp.CompletionItemKind.Module,
    "reference": lsp.CompletionItemKind.Reference,
}


def _suggest(
    workspace: Workspace,
    path: Path,
    text: str,
    where: Position,
    encoding: PositionEncoding,
    snippets: bool,
    cluster: ClusterNames | None = None,
) -> list[Suggestion]:
    from ktl_lsp.checks.completion import complete_at, complete_ktl

    kind, parsed, first = workspace.parsed_around(path, text, where.line)
    if parsed is None:
        return []
    if kind == FileKind.K8S_MANIFEST:
        local = Position(where.line - first, where.character)
        version = workspace.k8s_version
        found = complete_at(parsed, local, version, workspace, encoding, snippets, cluster)
        return [s.shifted(first) for s in found]

    def releases() -> list[tuple[str, str, str]]:
        return workspace.stack_releases(path)

    return complete_ktl(parsed, where, kind, releases, encoding, snippets)


def _document(workspace: Workspace, data: Any) -> str | None:
    from ktl_lsp.checks.completion import Topic, documentation

    if not isinstance(data, dict):
        return None
    api_version, kind, path = data.get("apiVersion"), data.get("kind"), data.get("path")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    if not isinstance(path, list) or not all(isinstance(p, str | int) for p in path):
        return None
    topic = Topic(api_version, kind, tuple(path))
    return documentation(topic, workspace.k8s_version, workspace.crd)


def _text_edit(edit: Edit) -> lsp.TextEdit:
    return lsp.TextEdit(range=to_lsp_range(edit.range), new_text=edit.new_text)


def _item(found: Suggestion) -> lsp.CompletionItem:
    topic = found.topic
    return lsp.CompletionItem(
        label=found.label,
        kind=_KINDS[found.kind],
        detail=found.detail or None,
        label_details=lsp.CompletionItemLabelDetails(description="required")
        if found.required
        else None,
        sort_text=found.sort_text or None,
        filter_text=found.label,
        text_edit=_text_edit(found.edit),
        insert_text_format=lsp.InsertTextFormat.Snippet
        if found.snippet
        else lsp.InsertTextFormat.PlainText,
        insert_text_mode=lsp.InsertTextMode.AdjustIndentation if found.snippet else None,
        additional_text_edits=[_text_edit(e) for e in found.additional_edits] or None,
        documentation=found.documentation,
        data={"apiVersion": topic.api_version, "kind": topic.kind, "path": list(topic.path)}
        if topic is not None
        else None,
    )


class Completions(Feature):
    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        #: The connected cluster's object names, once a context is active (`ClusterObjects`).
        self.cluster: ClusterNames | None = None

    def _client(self) -> lsp.ClientCompletionItemOptions | None:
        caps = self.checker.server.client_capabilities
        document = caps.text_document if caps is not None else None
        completion = document.completion if document is not None else None
        return completion.completion_item if completion is not None else None

    def _markdown(self) -> bool:
        client = self._client()
        formats = (client.documentation_format if client is not None else None) or []
        return lsp.MarkupKind.Markdown in formats

    def _snippets(self) -> bool:
        item = self._client()
        return bool(item is not None and item.snippet_support)

    @handles(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(
            trigger_characters=TRIGGERS + TEMPLATE_TRIGGERS, resolve_provider=True
        ),
    )
    async def complete(self, params: lsp.CompletionParams) -> lsp.CompletionList:
        source = self.checker.source(params.text_document.uri)
        if source is None:
            return lsp.CompletionList(is_incomplete=False, items=[])
        path, text = source
        where = Position(params.position.line, params.position.character)
        workspace, encoding = self.checker.workspace, self.checker.encoding()
        if helm_kind(path, text) == FileKind.HELM_TEMPLATE:
            markdown = self._markdown()
            items = await asyncio.to_thread(
                completions, workspace, path, text, where, encoding, markdown
            )
            return lsp.CompletionList(is_incomplete=False, items=items)
        context = params.context
        if context is not None and context.trigger_character in TEMPLATE_TRIGGERS:
            return lsp.CompletionList(is_incomplete=False, items=[])
        found = await asyncio.to_thread(
            _suggest, workspace, path, text, where, encoding, self._snippets(), self.cluster
        )
        return lsp.CompletionList(is_incomplete=False, items=[_item(s) for s in found])

    @handles(lsp.COMPLETION_ITEM_RESOLVE)
    async def resolve(self, item: lsp.CompletionItem) -> lsp.CompletionItem:
        markdown = await asyncio.to_thread(_document, self.checker.workspace, item.data)
        if markdown is not None:
            kind = lsp.MarkupKind.Markdown if self._markdown() else lsp.MarkupKind.PlainText
            item.documentation = lsp.MarkupContent(kind=kind, value=markdown)
        return item
