"""Helm templates in the editor: `ktl_lsp.helm.editing`'s answers as LSP completion items,
hovers, locations. Positions arrive and leave in the client's encoding; the analysis counts
code points. Each function runs in a worker thread and answers None/[] when it has nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as lsp
from pygls.uris import from_fs_path

from ktl_lsp.documents.file_kinds import FileKind, detect_file_kind
from ktl_lsp.documents.positions import LineIndex, Position, PositionEncoding, Range
from ktl_lsp.lsp.checker import to_lsp_range

if TYPE_CHECKING:
    from ktl_lsp.checks import Workspace
    from ktl_lsp.helm.chart_text import ChartText
    from ktl_lsp.helm.editing import Place

_KINDS: dict[str, lsp.CompletionItemKind] = {
    "value": lsp.CompletionItemKind.Property,
    "field": lsp.CompletionItemKind.Field,
    "template": lsp.CompletionItemKind.Reference,
    "function": lsp.CompletionItemKind.Function,
    "keyword": lsp.CompletionItemKind.Keyword,
}


def helm_kind(path: Path, text: str) -> FileKind | None:
    """HELM_TEMPLATE or HELM_VALUES when the file is one, else None."""
    kind = detect_file_kind(path, text)
    return kind if kind in (FileKind.HELM_TEMPLATE, FileKind.HELM_VALUES) else None


def _chart(
    workspace: Workspace, path: Path, text: str, where: Position, encoding: PositionEncoding
) -> tuple[ChartText, Path, LineIndex, Position] | None:
    from ktl_lsp.documents.yaml_parse import text_problem

    if text_problem(text) is not None:
        return None  # binary or too large: checked as such, no help
    path = path.resolve()
    chart = workspace.helm_chart(path, text)
    if chart is None:
        return None
    lines = LineIndex(text)
    return chart, path, lines, lines.from_client(where, encoding)


def completions(
    workspace: Workspace,
    path: Path,
    text: str,
    where: Position,
    encoding: PositionEncoding,
    markdown: bool = True,
) -> list[lsp.CompletionItem]:
    from ktl_lsp.helm.editing import complete

    found = _chart(workspace, path, text, where, encoding)
    if found is None:
        return []
    chart, path, lines, position = found
    items = []
    for c in complete(chart, path, text, position):
        rng = to_lsp_range(lines.range_to_client(c.range, encoding))
        items.append(
            lsp.CompletionItem(
                label=c.label,
                kind=_KINDS[c.kind],
                detail=c.detail or None,
                documentation=(
                    lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=c.documentation)
                    if markdown
                    else c.documentation
                )
                if c.documentation
                else None,
                sort_text=c.sort_text or None,
                text_edit=lsp.TextEdit(range=rng, new_text=c.label),
            )
        )
    return items


def hover(
    workspace: Workspace, path: Path, text: str, where: Position, encoding: PositionEncoding
) -> lsp.Hover | None:
    from ktl_lsp.helm.editing import hover as hover_at

    found = _chart(workspace, path, text, where, encoding)
    if found is None:
        return None
    chart, path, lines, position = found
    answer = hover_at(chart, path, text, position)
    if answer is None:
        return None
    return lsp.Hover(
        contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=answer.markdown),
        range=to_lsp_range(lines.range_to_client(answer.range, encoding)),
    )


def definition(
    workspace: Workspace, path: Path, text: str, where: Position, encoding: PositionEncoding
) -> list[lsp.Location] | None:
    """A `.Values` path -> its key in each values file; `include "x"` -> its define."""
    from ktl_lsp.helm.editing import definition as definition_at

    found = _chart(workspace, path, text, where, encoding)
    if found is None:
        return None
    chart, path, lines, position = found
    return _locations(chart, path, lines, definition_at(chart, path, text, position), encoding)


def references(
    workspace: Workspace,
    path: Path,
    text: str,
    where: Position,
    encoding: PositionEncoding,
    declaration: bool = True,
) -> list[lsp.Location] | None:
    """Every template that reads a values key (cursor in a values file), or the other uses of
    a values path or named template (cursor in a template)."""
    from ktl_lsp.helm.editing import references as references_at

    found = _chart(workspace, path, text, where, encoding)
    if found is None:
        return None
    chart, path, lines, position = found
    places = references_at(chart, path, text, position, declaration)
    return _locations(chart, path, lines, places, encoding)


def _locations(
    chart: ChartText, path: Path, lines: LineIndex, places: list[Place], encoding: PositionEncoding
) -> list[lsp.Location]:
    from ktl_lsp.helm.editing import lines_of

    out = []
    for place in places:
        index = lines if place.path == path else lines_of(chart, place.path)
        rng: Range = index.range_to_client(place.range, encoding) if index else place.range
        uri = from_fs_path(str(place.path)) or place.path.as_uri()
        out.append(lsp.Location(uri=uri, range=to_lsp_range(rng)))
    return out
