"""Soak at full size: 1,000 short + 20 long sessions, 20 plans and 1,000 edits in one server.

Runs the same scenario as ``tests/reliability/test_soak.py`` (a real server process driven over
stdio) at ``KTL_SOAK_SCALE`` (default 10, the issue's size) and prints the deltas of open fds,
threads, RSS and children between the warmed-up baseline and the end, and the peak in between.

Then large editor buffers, in another server: after a warm-up buffer, two rounds each open,
check and close ``scale`` different one-line flow mappings of ``0.77 * scale`` MB (10 of
7.7 MB at the default: about 340 MB of parse each while open), with the same figures.

Then a stalled editor, in a third server: ``scale`` rounds of a session streaming 20 MB to an
editor that takes ``ktl/sessionData`` and stops reading for 2 s of it (its pipe full), then
reads everything; the same figures after a warm-up round and after all of them.

    .venv/bin/python bench/bench_soak.py [--scale 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_buffers import BufferServer, parses
from lspclient import RawClient

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def buffers_soak(scale: float) -> bool:
    """Large buffers opened and closed: prints the figures; True when they stayed flat."""
    count, size = max(2, int(scale)), int(0.77e6 * max(1.0, scale))
    with tempfile.TemporaryDirectory() as tmp:
        server = BufferServer(Path(tmp) / "sessions.db", Path(tmp))
        try:
            server.big_round(1, size, "warm")
            baseline = server.settle()
            server.peak = {}
            server.big_round(count, size, "a")
            middle = server.settle()
            server.big_round(count, size, "b")
            after = server.settle()
        finally:
            server.close()
    peak = server.peak
    rows: list[tuple[str, str, float]] = [
        ("fds", "openFds", 1), ("threads", "threads", 1), ("rss MB", "rssBytes", MB)
    ]  # fmt: skip

    def figures(key: str, unit: float) -> tuple[str, float, float]:
        b, m, a = (s[key] / unit for s in (baseline, middle, after))
        text = (
            f"{b:.1f} -> {m:.1f} -> {a:.1f}; peak {peak[key] / unit:.1f} "
            f"(delta {a - b:+.1f}, round 2 {a - m:+.1f})"
        )
        return text, a - b, a - m

    print(
        f"soak buffers: 2 rounds of {count} different flow mappings of {size / 1e6:.1f} MB "
        "opened, checked and closed\n  (baseline -> after round 1 -> after round 2; peak)"
    )
    # The soak's own bounds (tests/reliability/test_soak.py): a leak grows with every round,
    # while pools, caches and allocator arenas fill once (round 2 adds at most half of it all).
    pool = min(32, (os.cpu_count() or 1) + 4)
    limits = {"openFds": (8, 2), "threads": (pool, pool), "rssBytes": (40 * max(1.0, scale), None)}
    flat = True
    for label, key, unit in rows:
        text, delta, growth = figures(key, unit)
        print(f"  {label:<8} {text}")
        limit, round_limit = limits[key]
        if round_limit is None:
            round_limit = max(8.0, delta / 2)
        flat = flat and delta <= limit and growth <= round_limit
    print(f"  parses held after: {parses(after)}")
    return flat


def stalled_soak(scale: float) -> bool:
    """An editor that stops reading while a session streams, round after round: True when the
    server's fds, threads and RSS stayed flat and every byte reached the editor."""
    rounds, size = max(2, int(scale)), 20_000_000
    with tempfile.TemporaryDirectory() as tmp:
        got: dict[str, int] = {}
        ended: dict[str, threading.Event] = {}

        def on_notify(method: str, params: Any) -> None:
            sid = params.get("sessionId") if isinstance(params, dict) else None
            if method == "ktl/sessionData" and sid:
                got[sid] = got.get(sid, 0) + len(params["data"])
            elif method == "ktl/sessionState" and sid and params["state"] != "running":
                ended.setdefault(sid, threading.Event()).set()

        argv = [sys.executable, "-m", "ktl_lsp", "--store", str(Path(tmp) / "s.db")]
        client = RawClient(argv, on_notify, env={**os.environ, "XDG_CACHE_HOME": tmp})
        client.initialize({"sessionData": True})

        def one_round() -> bool:
            command = f"yes 0123456789012345678901234567890123456789 | head -c {size}"
            started = client.command("ktl.run", {"command": command, "detach": True})
            sid = started["sessionId"]
            ended.setdefault(sid, threading.Event())
            client.reading.clear()  # the editor stalls: its pipe fills
            time.sleep(2)
            client.reading.set()
            ok = ended[sid].wait(120)
            return ok and got.get(sid, 0) >= size  # \n -> \r\n: never fewer characters

        def stats() -> dict[str, Any]:
            result: dict[str, Any] = client.command("ktl.server.stats", {})
            return result

        try:
            complete = one_round()
            baseline = stats()
            for _ in range(rounds):
                complete = one_round() and complete
            after = stats()
        finally:
            client.request("shutdown", None, timeout=30)
            client.notify("exit", None)
            client.proc.wait(30)
    pool = min(32, (os.cpu_count() or 1) + 4)
    fds = after["openFds"] - baseline["openFds"]
    threads = after["threads"] - baseline["threads"]
    rss = (after["rssBytes"] - baseline["rssBytes"]) / MB
    print(
        f"soak stalled editor: {rounds} rounds of {size / 1e6:.0f} MB streamed to an editor that "
        f"stopped reading for 2 s\n  fds {baseline['openFds']} -> {after['openFds']}, threads "
        f"{baseline['threads']} -> {after['threads']}, rss {baseline['rssBytes'] / MB:.1f} -> "
        f"{after['rssBytes'] / MB:.1f} MB; every byte delivered: {complete}"
    )
    return complete and fds <= 8 and threads <= pool and rss <= 40 * max(1.0, scale)


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
    flat = buffers_soak(args.scale)
    steady = stalled_soak(args.scale)
    failed = [f"pytest exit {done.returncode}"] if done.returncode else []
    failed += [] if flat else ["large buffers: figures not flat"]
    failed += [] if steady else ["stalled editor: figures not flat or bytes missing"]
    print("result:", f"FAILED ({'; '.join(failed)})" if failed else "ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
