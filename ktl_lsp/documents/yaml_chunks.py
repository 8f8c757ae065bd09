"""Split a multi-document YAML text into per-document chunks by its marker lines.

YAML forbids `---` and `...` at the start of a line inside any scalar, so these lines are always
document boundaries: splitting on them is exact, cheap (one regex pass) and lets an edit
re-parse only the chunk it touched. Each chunk starts at column 0 of its first line, so a node's
position in the file is its position in the chunk plus the chunk's first line.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

_MARKER = re.compile(r"\n(?:(---|\.\.\.)(?=[ \t\r\n]|$)|(%))")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One document's text and where it sits in the file."""

    text: str
    start_line: int
    explicit: bool
    """Starts with `---` or a directive: a document even when it holds no content."""


def split_documents(text: str) -> list[Chunk]:
    cuts: list[int] = [0]
    after_end = True  # at the stream start or right after `...`: directives may follow
    in_directives = False  # a chunk opened by a directive, waiting for its `---`
    for match in _MARKER.finditer("\n" + text):  # a leading LF: markers on line 0 match too
        pos = match.start()  # in `text`: the LF we matched stands for the previous line's end
        marker = match.group(1)
        if marker == "---":
            if in_directives:
                in_directives = False
            elif pos != cuts[-1]:
                cuts.append(pos)
            after_end = False
        elif marker == "...":
            eol = text.find("\n", pos)
            after = len(text) if eol < 0 else eol + 1
            if after != cuts[-1]:
                cuts.append(after)
            after_end = True
            in_directives = False
        elif after_end and not in_directives:
            if pos != cuts[-1]:
                cuts.append(pos)
            in_directives = True
    cuts.append(len(text))

    chunks: list[Chunk] = []
    line = 0
    for start, end in itertools.pairwise(cuts):
        if end <= start:
            continue
        piece = text[start:end]
        chunks.append(Chunk(piece, line, piece.startswith(("---", "%"))))
        line += piece.count("\n")
    if not chunks:
        chunks.append(Chunk("", 0, False))
    return chunks


def _is_marker(text: str, at: int) -> bool:
    return text.startswith("---", at) and (at + 3 == len(text) or text[at + 3] in " \t\r\n")


def document_around(text: str, line: int) -> tuple[int, str] | None:
    """(first line, text) of the document holding `line`, found from the `---` lines next to
    it without splitting the whole text (what one position needs in a large file). None past
    the end, or where `...`, a directive or a lone CR make it a matter for `split_documents`."""
    if text.startswith(("...", "%")) or "\n..." in text or "\n%" in text:
        return None
    if text.count("\r") != text.count("\r\n"):
        return None  # a lone CR breaks lines for the editor, not for this count
    offset = 0
    for _ in range(line):
        offset = text.find("\n", offset) + 1
        if offset == 0:
            return None
    start = offset
    while not _is_marker(text, start):
        found = text.rfind("\n---", 0, start)
        if found < 0:
            start = 0
            break
        start = found + 1
    end = text.find("\n---", offset)
    while end >= 0 and not _is_marker(text, end + 1):
        end = text.find("\n---", end + 1)
    end = len(text) if end < 0 else end + 1
    return line - text.count("\n", start, offset), text[start:end]
