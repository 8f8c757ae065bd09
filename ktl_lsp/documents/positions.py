"""Positions and ranges, and the conversion between Python string columns and LSP encodings.

Parsers and checkers count columns in code points (Python string indices). LSP clients count
in UTF-16 code units unless another encoding was negotiated, so the conversion happens once, at
the boundary, and only for lines that hold non-ASCII text.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Literal

_LONE_CR = re.compile(r"\r(?!\n)")

PositionEncoding = Literal["utf-8", "utf-16", "utf-32"]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A 0-based line and character, like LSP's Position."""

    line: int
    character: int

    def shifted(self, lines: int) -> Position:
        return Position(self.line + lines, self.character) if lines else self


@dataclass(frozen=True, slots=True)
class Range:
    """A half-open span between two positions."""

    start: Position
    end: Position

    @staticmethod
    def of(line: int, character: int, end_line: int, end_character: int) -> Range:
        return Range(Position(line, character), Position(end_line, end_character))

    def shifted(self, lines: int) -> Range:
        return Range(self.start.shifted(lines), self.end.shifted(lines)) if lines else self

    def contains(self, position: Position) -> bool:
        return self.start <= position <= self.end


def _units(text: str, encoding: PositionEncoding) -> int:
    if encoding == "utf-32" or text.isascii():
        return len(text)
    if encoding == "utf-16":
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
    return len(text.encode("utf-8", errors="surrogatepass"))


class LineIndex:
    """Line starts of one text, for converting between code points and another encoding.

    Built lazily because most texts are ASCII, where every encoding agrees with Python indices.
    """

    def __init__(self, text: str) -> None:
        self._text = _LONE_CR.sub("\n", text) if "\r" in text else text
        self._ascii = text.isascii()
        self._starts: list[int] | None = None

    @property
    def text(self) -> str:
        return self._text

    def _line_starts(self) -> list[int]:
        if self._starts is None:
            starts = [0]
            text = self._text
            find = text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._starts = starts
        return self._starts

    def line_count(self) -> int:
        return len(self._line_starts())

    def line_text(self, line: int) -> str:
        """The text of one line without its line break ("" past the end)."""
        starts = self._line_starts()
        if line < 0 or line >= len(starts):
            return ""
        end = starts[line + 1] - 1 if line + 1 < len(starts) else len(self._text)
        text = self._text[starts[line] : end]
        return text[:-1] if text.endswith("\r") else text

    def offset_to_position(self, offset: int) -> Position:
        """Code-point offset in the text to a code-point position."""
        starts = self._line_starts()
        line = bisect.bisect_right(starts, offset) - 1
        return Position(line, offset - starts[line])

    def to_client(self, position: Position, encoding: PositionEncoding = "utf-16") -> Position:
        """Code-point position to the client's encoding."""
        if self._ascii or encoding == "utf-32":
            return position
        line_text = self.line_text(position.line)
        prefix = line_text[: position.character]
        if prefix.isascii():
            return position
        extra = position.character - len(prefix)  # past the end of the line: keep the excess
        return Position(position.line, _units(prefix, encoding) + max(extra, 0))

    def from_client(self, position: Position, encoding: PositionEncoding = "utf-16") -> Position:
        """Client-encoded position to code points (clamped to the line)."""
        if self._ascii or encoding == "utf-32":
            return position
        line_text = self.line_text(position.line)
        units = 0
        for index, ch in enumerate(line_text):
            if units >= position.character:
                return Position(position.line, index)
            units += _units(ch, encoding)
        return Position(position.line, len(line_text))

    def range_to_client(self, rng: Range, encoding: PositionEncoding = "utf-16") -> Range:
        if self._ascii or encoding == "utf-32":
            return rng
        return Range(self.to_client(rng.start, encoding), self.to_client(rng.end, encoding))
