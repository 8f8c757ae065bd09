"""Document symbols (hierarchical): Kubernetes documents as `Kind/name` with their top-level
keys and containers, stack releases and plan nodes; and workspace symbols: every Kubernetes
object, stack release and plan node of the workspace, fuzzy matched. Computed in a worker
thread."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from ktl_lsp.documents.positions import PositionEncoding
from ktl_lsp.lsp.checker import Checker, to_lsp_range
from ktl_lsp.lsp.feature import Feature, handles

if TYPE_CHECKING:
    from pathlib import Path

    from ktl_lsp.checks import Workspace
    from ktl_lsp.checks.symbols import Symbol, WorkspaceSymbol

SYMBOL_KINDS: dict[str, lsp.SymbolKind] = {
    "object": lsp.SymbolKind.Object,
    "key": lsp.SymbolKind.Property,
    "container": lsp.SymbolKind.Struct,
    "release": lsp.SymbolKind.Module,
    "node": lsp.SymbolKind.Function,
}


def to_document_symbol(symbol: Symbol) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(
        name=symbol.name,
        detail=symbol.detail or None,
        kind=SYMBOL_KINDS[symbol.kind],
        range=to_lsp_range(symbol.range),
        selection_range=to_lsp_range(symbol.selection),
        children=[to_document_symbol(c) for c in symbol.children] or None,
    )


def _symbols(
    workspace: Workspace, path: Path, text: str, encoding: PositionEncoding
) -> list[Symbol]:
    from ktl_lsp.checks.symbols import symbols_of

    kind, parsed = workspace.parsed_for(path, text)
    return symbols_of(kind, parsed, encoding) if parsed is not None else []


def _workspace_symbols(
    workspace: Workspace, query: str, roots: list[Path]
) -> list[WorkspaceSymbol]:
    from ktl_lsp.checks.references import workspace_items
    from ktl_lsp.checks.symbols import workspace_symbols

    resolved = [r.resolve() for r in roots]
    items = workspace_items(workspace)
    return workspace_symbols(workspace.all_objects(), query, items=items, roots=resolved)


class DocumentSymbols(Feature):
    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    @handles(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbols(self, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        source = self.checker.source(params.text_document.uri)
        if source is None:
            return []
        path, text = source
        workspace, encoding = self.checker.workspace, self.checker.encoding()
        symbols = await asyncio.to_thread(_symbols, workspace, path, text, encoding)
        return [to_document_symbol(s) for s in symbols]

    @handles(lsp.WORKSPACE_SYMBOL)
    async def workspace_symbols(
        self, params: lsp.WorkspaceSymbolParams
    ) -> list[lsp.SymbolInformation]:
        workspace, roots = self.checker.workspace, self.checker.folder_roots()
        found = await asyncio.to_thread(_workspace_symbols, workspace, params.query, roots)
        return [
            lsp.SymbolInformation(
                name=symbol.name,
                kind=SYMBOL_KINDS[symbol.kind],
                location=lsp.Location(
                    uri=self.checker.uri_for(symbol.path), range=to_lsp_range(symbol.range)
                ),
                container_name=symbol.container,
            )
            for symbol in found
        ]
