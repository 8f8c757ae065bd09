from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ktl_lsp.checks import Finding, check_paths

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"

Check = Callable[..., list[Finding]]


@pytest.fixture
def check(tmp_path: Path) -> Check:
    """Write one file (dedented) and return its findings."""

    def run(name: str, text: str, k8s_version: str | None = None) -> list[Finding]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return check_paths([path], k8s_version)[path.resolve()]

    return run


def brief(findings: list[Finding]) -> list[tuple[str, int, int, int, int, str]]:
    return [
        (
            f.code,
            f.range.start.line,
            f.range.start.character,
            f.range.end.line,
            f.range.end.character,
            f.severity,
        )
        for f in findings
    ]
