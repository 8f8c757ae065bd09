"""Soak: one server, many short and long sessions, plans and edits; then back to baseline.

The scenario runs twice after a warm-up; a leak grows with each round, pools and caches fill
once. Asserted: no child or zombie, no live session, no progress token left; fds, threads
and RSS within a small slack of the baseline, and the second round adds (almost) nothing.

Size: ``KTL_SOAK_SCALE`` (default 1: 100 short + 2 long sessions + 2 Kubernetes log follows,
2 plans, 100 edits; 10 is the issue's 1,000 + 20, see ``bench/bench_soak.py``). The figures are printed (``-s``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import StartKtl
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.reliability.soak import SoakSize, scale, soak

MB = 1024 * 1024


@pytest.mark.slow
async def test_soak_returns_to_baseline(start_ktl: StartKtl, tmp_path: Path) -> None:
    async with FakeApi() as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api)
        ktl = await start_ktl(
            options={"gateway": {"enabled": True}}, env={"KUBECONFIG": str(kubeconfig)}
        )
        size = SoakSize.at(scale())
        result = await soak(ktl, tmp_path, size, api)
    print("\n" + result.report())
    assert result.states.get("done") == 2 * size.short, result.states
    assert result.states.get("plan:done") == 2 * size.plans, result.states
    assert result.states.get("long:cancelled") == 2 * size.long, result.states
    assert result.states.get("logs:cancelled") == 2 * size.long, result.states
    assert result.states.get("logs:streamed") == 2 * size.long, result.states
    assert result.after["liveSessions"] == 0
    assert result.children_after == [], "children (or zombies) left behind"
    assert result.after["progressTokens"] == 0, "work-done progress tokens leaked"
    # Back to baseline: nothing per session is kept. The first round may fill the thread
    # pool (each pool thread has its own SQLite reader: +1 thread, +2 fds) and caches (the
    # 200 most recent sessions stay in memory); the second round must not grow fds or RSS
    # like the first (threads: the pool grows lazily, so only its ceiling is checked).
    assert result.delta("openFds") <= 8, result.report()
    # asyncio's default executor starts threads lazily, up to min(32, cpus + 4), and keeps them.
    pool = min(32, (os.cpu_count() or 1) + 4)
    assert result.delta("threads") <= pool, result.report()
    # A pool thread that reads the store for the first time in the second round opens its
    # reader then (2 fds): those are counted apart, so any other fd kept still shows.
    assert result.after["storeReaders"] <= pool + 2, result.report()
    assert result.growth("openFds") - 2 * result.growth("storeReaders") <= 2, result.report()
    assert result.delta("rssBytes") <= 40 * MB * max(1.0, scale()), result.report()
    assert result.growth("rssBytes") <= max(8 * MB, result.delta("rssBytes") // 2), result.report()
