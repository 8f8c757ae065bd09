"""libFuzzer target: any text as a manifest never crashes a check, and every finding's range
lies inside the document."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from ktl_lsp.checks import Workspace
    from ktl_lsp.documents import LineIndex

ROOT = Path(tempfile.mkdtemp(prefix="ktl-atheris-"))
PATH = ROOT / "fuzz.yaml"
WORKSPACE = Workspace()


def one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    WORKSPACE.update(PATH, text)
    lines = LineIndex(text)
    count = len(re.split(r"\r\n|\r|\n", text))  # LSP's line breaks, CR alone included
    for finding in WORKSPACE.findings_for(PATH):
        r = finding.range
        if not (0 <= r.start.line <= r.end.line < count + 1):
            raise AssertionError(f"range {r} outside {count} lines: {text!r}")
        if r.start.line == r.end.line and r.start.character > r.end.character:
            raise AssertionError(f"reversed range {r}: {text!r}")
    _ = lines


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
