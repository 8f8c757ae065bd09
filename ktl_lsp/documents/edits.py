"""Quick fixes as plain data: text edits with ranges, and a title that says what they do.

Checkers attach them to their findings; the language server turns them into code actions and
applies nothing itself. Ranges count code points (like every range below `lsp/`) and are in the
same file as the finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from ktl_lsp.documents.positions import Range


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace `range` with `new_text` (an empty range inserts, empty text deletes)."""

    range: Range
    new_text: str

    def shifted(self, lines: int) -> Edit:
        return Edit(self.range.shifted(lines), self.new_text) if lines else self


@dataclass(frozen=True, slots=True)
class Fix:
    """One way to fix a finding: edits applied together."""

    title: str
    edits: tuple[Edit, ...]
    preferred: bool = False
    """The one obvious fix (an editor may apply it with a single key)."""

    def shifted(self, lines: int) -> Fix:
        if not lines:
            return self
        return Fix(self.title, tuple(e.shifted(lines) for e in self.edits), self.preferred)


def replace_with(rng: Range, new_text: str, title: str, preferred: bool = True) -> Fix:
    """The common fix: one range replaced."""
    return Fix(title, (Edit(rng, new_text),), preferred)
