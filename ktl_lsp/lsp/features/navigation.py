"""Go to definition and find references: a name reference to the object it names (ConfigMaps,
Secrets, ServiceAccounts, claims, Services, Roles) and back, a Service's selector to the
workloads it selects and back, a stack's `needs` to the release, a plan's `deps` to the node,
a stack's `chart:` and `values:` paths to the files. In Helm charts (`lsp/helm_editing.py`): a
`.Values` path to its keys in the values files, `include "x"` to its define, a values key to the
templates that read it.

Answered in a worker thread from the editor's current text and the workspace (open buffers and
the files of the workspace folders); the workspace's index is built once per change. Anything
it cannot answer is an empty list, never an error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from ktl_lsp.documents.positions import Position, PositionEncoding
from ktl_lsp.lsp import helm_editing
from ktl_lsp.lsp.checker import Checker, to_lsp_range
from ktl_lsp.lsp.feature import Feature, handles

if TYPE_CHECKING:
    from pathlib import Path

    from ktl_lsp.checks import Workspace
    from ktl_lsp.checks.references import Location


def _definition(
    workspace: Workspace, path: Path, text: str, where: Position, encoding: PositionEncoding
) -> list[Location]:
    from ktl_lsp.checks.references import definition_at

    return definition_at(workspace, path, text, where, encoding)


def _references(
    workspace: Workspace,
    path: Path,
    text: str,
    where: Position,
    encoding: PositionEncoding,
    declaration: bool,
) -> list[Location]:
    from ktl_lsp.checks.references import references_at

    return references_at(workspace, path, text, where, encoding, declaration)


class Navigation(Feature):
    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    def _asked(
        self, uri: str, position: lsp.Position
    ) -> tuple[Workspace, Path, str, Position, PositionEncoding] | None:
        """What a request is about: the workspace, the open document's file, its current text
        and the position (None for a document that is not open)."""
        source = self.checker.source(uri)
        if source is None:
            return None
        where = Position(position.line, position.character)
        return self.checker.workspace, *source, where, self.checker.encoding()

    def _locations(self, found: list[Location]) -> list[lsp.Location]:
        return [
            lsp.Location(uri=self.checker.uri_for(f.path), range=to_lsp_range(f.range))
            for f in found
        ]

    @handles(lsp.TEXT_DOCUMENT_DEFINITION)
    async def definition(self, params: lsp.DefinitionParams) -> list[lsp.Location]:
        asked = self._asked(params.text_document.uri, params.position)
        if asked is None:
            return []
        if helm_editing.helm_kind(asked[1], asked[2]) is not None:
            found = await asyncio.to_thread(helm_editing.definition, *asked)
            return found or []
        return self._locations(await asyncio.to_thread(_definition, *asked))

    @handles(lsp.TEXT_DOCUMENT_REFERENCES)
    async def references(self, params: lsp.ReferenceParams) -> list[lsp.Location]:
        asked = self._asked(params.text_document.uri, params.position)
        if asked is None:
            return []
        declaration = params.context.include_declaration
        if helm_editing.helm_kind(asked[1], asked[2]) is not None:
            found = await asyncio.to_thread(helm_editing.references, *asked, declaration)
            return found or []
        return self._locations(await asyncio.to_thread(_references, *asked, declaration))
