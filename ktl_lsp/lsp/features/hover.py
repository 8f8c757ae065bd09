"""Hover on Kubernetes manifests: a field's description, type, required, default and values;
on apiVersion/kind the resource, and whether the configured Kubernetes version serves it; on a
name reference the object it names (`configMapRef.name` -> the ConfigMap). In ktl files: on a
stack's `needs` entry the release, on a plan's `deps` entry the node. In a Helm template, what
`helm_editing` answers, else what the line rendered to (`HelmCharts.rendered_markdown`).

The lookup runs in a worker thread on the editor's current text (a half-typed document
included); anything it cannot answer is an empty answer, never an error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from ktl_lsp.documents.file_kinds import FileKind
from ktl_lsp.documents.positions import Position, PositionEncoding
from ktl_lsp.lsp.checker import Checker, to_lsp_range
from ktl_lsp.lsp.feature import Feature, handles
from ktl_lsp.lsp.features.helm import HelmCharts
from ktl_lsp.lsp.helm_editing import helm_kind
from ktl_lsp.lsp.helm_editing import hover as helm_hover

if TYPE_CHECKING:
    from pathlib import Path

    from ktl_lsp.checks import Workspace
    from ktl_lsp.checks.hover import HoverText


def _lookup(
    workspace: Workspace,
    path: Path,
    text: str,
    where: Position,
    encoding: PositionEncoding,
    roots: list[Path],
) -> HoverText | None:
    from ktl_lsp.checks.hover import hover_at
    from ktl_lsp.checks.references import reference_hover
    from ktl_lsp.documents.file_kinds import FileKind

    found = reference_hover(workspace, path, text, where, encoding, roots)
    if found is not None:
        return found
    kind, parsed = workspace.parsed_for(path, text)
    if kind != FileKind.K8S_MANIFEST or parsed is None:
        return None
    return hover_at(parsed, where, workspace.k8s_version, workspace.crd, encoding)


class Hovers(Feature):
    def __init__(self, checker: Checker, helm: HelmCharts) -> None:
        self.checker = checker
        self.helm = helm

    @handles(lsp.TEXT_DOCUMENT_HOVER)
    async def hover(self, params: lsp.HoverParams) -> lsp.Hover | None:
        source = self.checker.source(params.text_document.uri)
        if source is None:
            return None
        path, text = source
        where = Position(params.position.line, params.position.character)
        workspace, encoding = self.checker.workspace, self.checker.encoding()
        if helm_kind(path, text) == FileKind.HELM_TEMPLATE:
            answer = await asyncio.to_thread(helm_hover, workspace, path, text, where, encoding)
            if answer is not None:
                return answer
            markdown = await asyncio.to_thread(self.helm.rendered_markdown, path, text, where.line)
            if markdown is None:
                return None
            return lsp.Hover(
                contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=markdown)
            )
        roots = self.checker.folder_roots()
        found = await asyncio.to_thread(_lookup, workspace, path, text, where, encoding, roots)
        if found is None:
            return None
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found.markdown),
            range=to_lsp_range(found.range) if found.range is not None else None,
        )
