"""Go to definition and find references in Helm charts: a `.Values` path to its keys in the
values files, `include "x"` to its define, a values key to the templates reading it. The
answers come from `ktl_lsp.lsp.helm_editing`; other files get no answer here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lsprotocol import types as lsp

from ktl_lsp.documents.positions import Position
from ktl_lsp.lsp import helm_editing
from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import Feature, handles


class HelmNavigation(Feature):
    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    @handles(lsp.TEXT_DOCUMENT_DEFINITION)
    async def definition(self, params: lsp.DefinitionParams) -> list[lsp.Location] | None:
        return await self._answer(params, helm_editing.definition)

    @handles(lsp.TEXT_DOCUMENT_REFERENCES)
    async def references(self, params: lsp.ReferenceParams) -> list[lsp.Location] | None:
        declaration = params.context.include_declaration
        return await self._answer(params, helm_editing.references, declaration)

    async def _answer(
        self,
        params: lsp.DefinitionParams | lsp.ReferenceParams,
        ask: Callable[..., Any],
        *extra: object,
    ) -> list[lsp.Location] | None:
        source = self.checker.source(params.text_document.uri)
        if source is None or helm_editing.helm_kind(*source) is None:
            return None
        where = Position(params.position.line, params.position.character)
        workspace, encoding = self.checker.workspace, self.checker.encoding()
        found: list[lsp.Location] | None = await asyncio.to_thread(
            ask, workspace, *source, where, encoding, *extra
        )
        return found
