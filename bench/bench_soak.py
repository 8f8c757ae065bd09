"""Soak at full size: 1,000 short + 20 long sessions, 20 plans and 1,000 edits in one server.

Runs the same scenario as ``tests/reliability/test_soak.py`` (a real server process driven over
stdio) at ``KTL_SOAK_SCALE`` (default 10, the issue's size) and prints the deltas of open fds,
threads, RSS and children between the warmed-up baseline and the end, and the peak in between.

    .venv/bin/python bench/bench_soak.py [--scale 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=float(os.environ.get("KTL_SOAK_SCALE", "10")))
    args = ap.parse_args()
    env = {**os.environ, "KTL_SOAK_SCALE": str(args.scale)}
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
        str(REPO / "tests" / "reliability" / "test_soak.py"),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("soak:")), None)
    if start is None:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        return 1
    print("\n".join(lines[start : start + 6]))
    print("result:", "ok" if done.returncode == 0 else f"FAILED (pytest exit {done.returncode})")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
