"""Reliability tests: example counts are collected here and printed at the end of the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

#: target -> examples run (each fuzz test bumps its own counter once per example).
EXAMPLES: Counter[str] = Counter()


def count(target: str) -> None:
    EXAMPLES[target] += 1


@pytest.fixture(scope="session", autouse=True)
def _report_examples() -> Iterator[None]:
    yield
    if EXAMPLES:
        lines = [f"  {name}: {n}" for name, n in sorted(EXAMPLES.items())]
        print("\nfuzz examples run per target:\n" + "\n".join(lines))
