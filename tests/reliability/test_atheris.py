"""Coverage-guided fuzzing with atheris (libFuzzer) where it fits: the SSE parser's chunking and
the checkers on arbitrary text. Each target runs in its own process (libFuzzer exits when done)
for a bounded number of inputs, seeded so a failure can be replayed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.conftest import count

TARGETS = Path(__file__).parent / "atheris_targets"
RUNS = {"sse_chunking.py": 30_000, "yaml_ranges.py": 3_000}


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
@pytest.mark.parametrize("target", sorted(RUNS))
def test_atheris_target(target: str, tmp_path: Path) -> None:
    runs = RUNS[target]
    done = subprocess.run(
        [sys.executable, str(TARGETS / target), f"-atheris_runs={runs}", "-seed=20261126",
         "-max_total_time=60", f"-artifact_prefix={tmp_path}/"],
        cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr, done.stderr[-2000:]
    for _ in range(runs):
        count(f"atheris {target}")
