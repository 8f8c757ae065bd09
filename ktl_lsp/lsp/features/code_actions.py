"""Quick fixes: the fixes the checkers attach to their findings, as code actions.

Answers from the findings of the document's current text (the Checker brings the workspace up
to it first, off the loop); a finding overlapping the requested range offers its fixes, each a
`WorkspaceEdit` on the document, naming the diagnostic it fixes. Anything that cannot be
answered (a document never opened, a range past the end) is an empty list.
"""

from __future__ import annotations

from collections.abc import Callable

from lsprotocol import types as lsp

from ktl_lsp.checks.findings import Finding
from ktl_lsp.documents.edits import Fix
from ktl_lsp.lsp.checker import Checker, to_diagnostic, to_lsp_range
from ktl_lsp.lsp.feature import Feature, handles


def _overlaps(finding: Finding, rng: lsp.Range) -> bool:
    start = (rng.start.line, rng.start.character)
    end = (rng.end.line, rng.end.character)
    f_start = (finding.range.start.line, finding.range.start.character)
    f_end = (finding.range.end.line, finding.range.end.character)
    return f_start <= end and start <= f_end


def _action(fix: Fix, uri: str, diagnostic: lsp.Diagnostic) -> lsp.CodeAction:
    edits = [lsp.TextEdit(range=to_lsp_range(e.range), new_text=e.new_text) for e in fix.edits]
    return lsp.CodeAction(
        title=fix.title,
        kind=lsp.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        is_preferred=fix.preferred or None,
        edit=lsp.WorkspaceEdit(changes={uri: edits}),
    )


class CodeActions(Feature):
    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        #: Other features' actions, plain commands (not edits), given the uri and the range.
        self.extra: list[Callable[[str, lsp.Range], list[lsp.Command]]] = []

    @handles(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
    )
    async def code_action(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction | lsp.Command]:
        only = params.context.only
        if only is not None and not any(
            lsp.CodeActionKind.QuickFix.value.startswith(str(getattr(k, "value", k))) for k in only
        ):
            return []
        uri = params.text_document.uri
        findings = await self.checker.current_findings(uri)
        uri_for = {str(p): u for p, u in self.checker.open_uris().items()}
        actions: list[lsp.CodeAction | lsp.Command] = []
        for finding in findings:
            if finding.fixes and _overlaps(finding, params.range):
                diagnostic = to_diagnostic(finding, uri, uri_for)
                actions.extend(_action(fix, uri, diagnostic) for fix in finding.fixes)
        for extra in self.extra:
            actions += extra(uri, params.range)
        return actions
