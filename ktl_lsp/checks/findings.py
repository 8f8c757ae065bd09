"""The one result type of every checker: a finding at an exact range, with a stable rule id.

Checkers never talk LSP; the server turns findings into diagnostics and `ktl-lsp check` into
text, JSON or SARIF. Ranges are 0-based lines and code-point columns until `in_encoding`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from ktl_lsp.documents.edits import Edit, Fix
from ktl_lsp.documents.positions import LineIndex, Position, PositionEncoding, Range

if TYPE_CHECKING:
    from ktl_lsp.documents.yaml_parse import YamlProblem

Severity = Literal["error", "warning", "information", "hint"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "information": 2, "hint": 3}


@dataclass(frozen=True, slots=True)
class Related:
    """Another place involved in a finding (the first duplicate, the other end of a cycle)."""

    range: Range
    message: str
    path: str | None = None
    """Absolute path of another file; None means the finding's own file."""


@dataclass(frozen=True, slots=True)
class Finding:
    range: Range
    severity: Severity
    code: str
    message: str
    related: tuple[Related, ...] = ()
    source: str = "ktl"
    fixes: tuple[Fix, ...] = ()
    """Quick fixes, edits of the finding's own file (code actions in the editor)."""
    tags: tuple[str, ...] = ()
    """"unnecessary" (code nothing uses: editors fade it), "deprecated"."""

    def shifted(self, lines: int) -> Finding:
        """The same finding moved down by `lines` (a cached document that moved in its file)."""
        if not lines:
            return self
        related = tuple(
            replace(r, range=r.range.shifted(lines)) if r.path is None else r for r in self.related
        )
        return replace(
            self,
            range=self.range.shifted(lines),
            related=related,
            fixes=tuple(f.shifted(lines) for f in self.fixes),
        )

    def to_json(self, path: str) -> dict[str, Any]:
        """The `ktl-lsp check --format json` shape (docs/cli.md), plus `related`."""
        data: dict[str, Any] = {
            "path": path,
            "range": _range_json(self.range),
            "severity": self.severity,
            "code": self.code,
            "source": self.source,
            "message": self.message,
        }
        if self.related:
            data["related"] = [
                {"path": r.path or path, "range": _range_json(r.range), "message": r.message}
                for r in self.related
            ]
        return data


def _range_json(rng: Range) -> dict[str, dict[str, int]]:
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }


def from_problem(problem: YamlProblem, line_offset: int = 0) -> Finding:
    """A parse problem as a finding, placed in the file."""
    return Finding(
        problem.range.shifted(line_offset),
        problem.severity,
        problem.code,
        problem.message,
        tuple(Related(r.shifted(line_offset), m) for r, m in problem.related),
        fixes=tuple(f.shifted(line_offset) for f in problem.fixes),
    )


def in_encoding(
    findings: list[Finding],
    lines: LineIndex,
    encoding: PositionEncoding = "utf-16",
    other_files: dict[str, LineIndex] | None = None,
) -> list[Finding]:
    """Findings with characters counted in the client's encoding (related ranges and fixes
    too; a fix's edit past the end of the text is clamped to it)."""
    out: list[Finding] = []
    for finding in findings:
        fixes = tuple(_fix_in_encoding(f, lines, encoding) for f in finding.fixes)
        if encoding == "utf-32":
            out.append(replace(finding, fixes=fixes) if fixes else finding)
            continue
        related = tuple(
            replace(r, range=_convert(r, lines, encoding, other_files)) for r in finding.related
        )
        out.append(
            replace(
                finding,
                range=lines.range_to_client(finding.range, encoding),
                related=related,
                fixes=fixes,
            )
        )
    return out


def _fix_in_encoding(fix: Fix, lines: LineIndex, encoding: PositionEncoding) -> Fix:
    edits = tuple(
        Edit(lines.range_to_client(_clamped(e.range, lines), encoding), e.new_text)
        for e in fix.edits
    )
    return replace(fix, edits=edits)


def _clamped(rng: Range, lines: LineIndex) -> Range:
    last = lines.line_count() - 1

    def clamp(position: Position) -> Position:
        if position.line > last:
            return Position(last, len(lines.line_text(last)))
        return position

    return Range(clamp(rng.start), clamp(rng.end))


def _convert(
    related: Related,
    lines: LineIndex,
    encoding: PositionEncoding,
    other_files: dict[str, LineIndex] | None,
) -> Range:
    if related.path is None:
        return lines.range_to_client(related.range, encoding)
    index = (other_files or {}).get(related.path)
    return index.range_to_client(related.range, encoding) if index else related.range


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.range.start, SEVERITY_ORDER[f.severity], f.code))
