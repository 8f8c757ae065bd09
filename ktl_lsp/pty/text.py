"""Terminal text helpers: strip escape sequences and find what a person would read as the last line."""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST), DCS/SOS/PM/APC strings, two-byte escapes, C1 CSI.
_ANSI = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]
  | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?
  | \x1b[PX^_][^\x1b]*(?:\x1b\\)?
  | \x1b[@-Z\\-_]
  | \x1b[ -/]+[0-~]
  | \x9b[0-?]*[ -/]*[@-~]
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """Text with escape sequences and stray control characters removed (newlines and \\r kept)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def visible_line(line: str) -> str:
    """What a terminal shows for one line that may redraw itself with \\r (progress bars)."""
    if "\r" in line:
        parts = [p for p in line.split("\r") if p.strip()]
        line = parts[-1] if parts else ""
    return line


class LineSplitter:
    """Splits a text stream into plain lines, keeping the unfinished one for later."""

    def __init__(self) -> None:
        self.partial = ""

    def feed(self, text: str) -> list[str]:
        text = self.partial + strip_ansi(text)
        lines = text.split("\n")
        self.partial = lines.pop()
        if len(self.partial) > 65536:  # a flood without newlines still reaches the reader
            lines.append(self.partial)
            self.partial = ""
        return [visible_line(line).rstrip() for line in lines]

    def current(self) -> str:
        return visible_line(self.partial).rstrip()


def newest_line(text: str) -> str:
    """The line a person reads last at the end of ``text``: the unfinished one if it shows anything."""
    lines = strip_ansi(text).split("\n")
    for line in reversed(lines):
        shown = visible_line(line).strip()
        if shown:
            return shown
    return ""
