"""Comparing two runs: what changed, not what merely differs from run to run.

Output is reduced to the lines a person saw (escape sequences gone, ``\\r`` redraws resolved),
then volatile tokens (timestamps, durations, pod hash suffixes, ids, addresses) are replaced
by placeholders before a unified diff.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ktl_lsp.pty.text import strip_ansi, visible_line
from ktl_lsp.sessions.model import Session

MAX_LINES = 20_000

_VOLATILE: list[tuple[re.Pattern[str], str]] = [
    # 2026-11-26T15:04:05.123Z, 2026-11-26 15:04:05,123 +0000
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (re.compile(r"\b\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?"), "<time>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"), "<time>"),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    # Deployment pods: name-<replicaset hash 5-10>-<pod suffix 5>; other pods: name-<suffix 5>
    (re.compile(r"\b([a-z0-9]+(?:-[a-z0-9]+)*?)-[a-z0-9]{8,10}-[a-z0-9]{5}\b"), r"\1-<hash>-<id>"),
    (re.compile(r"\b([a-z][a-z0-9]*(?:-[a-z0-9]+)*)-(?=[a-z0-9]*\d)[a-z0-9]{5}\b"), r"\1-<id>"),
    (re.compile(r"\b(?:sha256:)?[0-9a-f]{12,64}\b"), "<hex>"),
    (re.compile(r"\b\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h)\b"), "<dur>"),
    (re.compile(r"\b(?:\d+h)?(?:\d+m)?\d+(?:\.\d+)?s\b"), "<dur>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<addr>"),
    (re.compile(r"\b1[5-9]\d{8}(?:\d{3}|\d{6}|\d{9})?\b"), "<epoch>"),
]


def normalize_line(line: str) -> str:
    for pattern, repl in _VOLATILE:
        line = pattern.sub(repl, line)
    return line


def visible_lines(chunks: Iterable[str]) -> list[str]:
    """The lines of terminal output as a reader saw them, at most MAX_LINES."""
    text = strip_ansi("".join(chunks)).replace("\r\n", "\n")
    lines = [visible_line(line).rstrip() for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines[:MAX_LINES]


@dataclass
class Comparison:
    a: Session
    b: Session
    output_diff: str
    truncated: bool

    def to_lsp(self) -> dict[str, object]:
        return {
            "a": self.a.to_lsp(),
            "b": self.b.to_lsp(),
            "durationDeltaMs": self.b.duration_ms - self.a.duration_ms,
            "exitCodes": [self.a.exit_code, self.b.exit_code],
            "outputDiff": self.output_diff,
            "truncated": self.truncated,
        }


def compare(a: Session, a_lines: list[str], b: Session, b_lines: list[str]) -> Comparison:
    truncated = len(a_lines) >= MAX_LINES or len(b_lines) >= MAX_LINES
    diff = difflib.unified_diff(
        [normalize_line(x) for x in a_lines],
        [normalize_line(x) for x in b_lines],
        fromfile=f"{a.id} ({a.title})",
        tofile=f"{b.id} ({b.title})",
        lineterm="",
    )
    return Comparison(a, b, "\n".join(diff), truncated)
