"""Coverage-guided fuzzing with atheris (libFuzzer) where it fits: the SSE parser's chunking and
the checkers on arbitrary text. Each target runs in its own process (libFuzzer exits when done)
for a bounded number of inputs, seeded so a failure can be replayed."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.needs import unavailable
from tests.reliability.conftest import count

TARGETS = Path(__file__).parent / "atheris_targets"
RUNS = {"sse_chunking.py": 30_000, "yaml_ranges.py": 3_000}


@pytest.mark.parametrize("target", sorted(RUNS))
def test_atheris_target(target: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        unavailable("atheris is not installed (the test extra, Linux x86_64)")
    runs = RUNS[target]
    done = subprocess.run(
        [sys.executable, str(TARGETS / target), f"-atheris_runs={runs}", "-seed=20261126",
         "-max_total_time=60", f"-artifact_prefix={tmp_path}/"],
        cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ran = re.search(r"Done (\d+) (?:runs )?in ", done.stderr)
    assert ran, done.stderr[-2000:]
    for _ in range(int(ran.group(1))):
        count(f"atheris {target}")
    # libFuzzer stops at -max_total_time too, and says "Done" all the same
    assert int(ran.group(1)) >= runs, f"the fuzzer stopped early: {ran.group(0)} of {runs} asked"
