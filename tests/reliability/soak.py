"""The soak scenario, shared by ``test_soak.py`` (small) and ``bench/bench_soak.py`` (full size).

One server process runs, twice over, ``short`` short PTY sessions (a few at a time), ``long`` streaming
sessions that print for the whole soak and are then cancelled, as many Kubernetes log follows
(``ktl.logs`` against the loopback API server, whose pods keep logging), ``plans`` plan runs
(three nodes each, in a DAG), while a manifest is opened and edited (valid and broken in turn). Then
everything is stopped and the server's own figures (``ktl.server.stats``) are compared with
a baseline taken after a warm-up of the same shape (thread pools, import caches and SQLite
page caches are filled by then).
"""

from __future__ import annotations

import asyncio
import gc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.helpers import children, server_pid

LONG = 'i=0; while :; do echo "tick $i $(date +%s%N)"; i=$((i+1)); sleep 0.05; done'
GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm{i}}}\ndata: {{k: v{i}}}\n"
BAD = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d{i}}}\nspec: {{replicas: x{i}}}\n"
PLAN = """\
name: soak
concurrency: 2
nodes:
  - {id: a, run: "echo a"}
  - {id: b, run: "echo b", deps: [a]}
  - {id: c, run: "echo c", deps: [a]}
"""


def scale() -> float:
    return float(os.environ.get("KTL_SOAK_SCALE", "1"))


@dataclass
class SoakSize:
    short: int
    long: int
    plans: int
    edits: int
    parallel: int = 4

    @classmethod
    def at(cls, factor: float) -> SoakSize:
        return cls(
            short=max(10, int(100 * factor)),
            long=max(2, int(2 * factor)),
            plans=max(2, int(2 * factor)),
            edits=max(20, int(100 * factor)),
        )


@dataclass
class SoakResult:
    baseline: dict[str, Any]
    after: dict[str, Any]  #: after the second round
    peak: dict[str, Any]
    size: SoakSize
    states: dict[str, int] = field(default_factory=dict)
    children_after: list[tuple[int, str]] = field(default_factory=list)
    #: after the first round: the second one must not move the figures further (a leak
    #: grows with every round; pools and caches fill once).
    middle: dict[str, Any] = field(default_factory=dict)

    def delta(self, key: str) -> int:
        return int(self.after[key]) - int(self.baseline[key])

    def growth(self, key: str) -> int:
        """What the second round added on top of the first."""
        return int(self.after[key]) - int(self.middle[key])

    def report(self) -> str:
        mb = 1024 * 1024
        return (
            f"soak: {self.size.short} short + {self.size.long} long sessions, "
            f"{self.size.plans} plans, {self.size.edits} edits; states {self.states}\n"
            f"  (baseline -> after round 1 -> after round 2; peak)\n"
            f"  fds      {self.baseline['openFds']} -> {self.middle['openFds']} -> "
            f"{self.after['openFds']}; peak {self.peak['openFds']} "
            f"(delta {self.delta('openFds'):+d}, round 2 {self.growth('openFds'):+d})\n"
            f"  threads  {self.baseline['threads']} -> {self.middle['threads']} -> "
            f"{self.after['threads']}; peak {self.peak['threads']} "
            f"(delta {self.delta('threads'):+d}, round 2 {self.growth('threads'):+d})\n"
            f"  rss MB   {self.baseline['rssBytes'] / mb:.1f} -> "
            f"{self.middle['rssBytes'] / mb:.1f} -> {self.after['rssBytes'] / mb:.1f}; "
            f"peak {self.peak['rssBytes'] / mb:.1f} (delta {self.delta('rssBytes') / mb:+.1f}, "
            f"round 2 {self.growth('rssBytes') / mb:+.1f})\n"
            f"  children after: {len(self.children_after)}; live sessions "
            f"{self.after['liveSessions']}; progress tokens {self.baseline['progressTokens']} "
            f"-> {self.after['progressTokens']}"
        )


async def stats(ktl: Ktl) -> dict[str, Any]:
    out: dict[str, Any] = await ktl.cmd("ktl.server.stats", {})
    return out


async def settle(ktl: Ktl, timeout: float = 30) -> dict[str, Any]:
    """Stats once no session is live, no child is left and the token count stops moving."""
    pid = server_pid(ktl)
    deadline = asyncio.get_running_loop().time() + timeout
    last: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        last = await stats(ktl)
        if last["liveSessions"] == 0 and not children(pid) and last["progressTokens"] == 0:
            await asyncio.sleep(0.3)  # writer flushes, fds of reaped PTYs closed
            return await stats(ktl)
        await asyncio.sleep(0.1)
    return last


def edit(ktl: Ktl, uri: str, version: int, i: int) -> None:
    text = (BAD if i % 3 == 0 else GOOD).format(i=i)
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def round_of_work(
    ktl: Ktl, root: Path, size: SoakSize, states: dict[str, int], api: FakeApi | None = None
) -> None:
    plan = root / "soak.plan.yaml"
    plan.write_text(PLAN)
    doc = root / "soak-manifest.yaml"
    uri = doc.as_uri()
    ktl.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri, language_id="yaml", version=0, text=GOOD.format(i=0)
            )
        )
    )
    longs = [
        await ktl.cmd("ktl.run", {"command": LONG, "detach": True, "title": f"long{i}"})
        for i in range(size.long)
    ]
    follows: list[dict[str, Any]] = []
    feeder: asyncio.Future[None] | None = None
    if api is not None:
        pods = [f"soak-{i}" for i in range(size.long)]
        for pod in pods:
            if api.get("v1", "Pod", pod, "default") is None:
                api.add_pod(pod, labels={"app": "soak"})
        follows = [
            await ktl.cmd("ktl.logs", {"pod": pod, "follow": True, "detach": True}) for pod in pods
        ]

        async def feed() -> None:
            n = 0
            while True:
                for pod in pods:
                    api.log(pod, "app", f"{pod} line {n}")
                n += 1
                await asyncio.sleep(0.05)

        feeder = asyncio.ensure_future(feed())
    sem = asyncio.Semaphore(size.parallel)

    async def short(i: int) -> None:
        async with sem:
            r = await ktl.cmd("ktl.run", {"argv": ["sh", "-c", f"echo short {i}; printf 'é\\r'"]})
            states[r["state"]] = states.get(r["state"], 0) + 1

    async def plans() -> None:
        for _ in range(size.plans):
            r = await ktl.cmd("ktl.plan.run", {"uri": plan.as_uri()})
            states["plan:" + r["state"]] = states.get("plan:" + r["state"], 0) + 1

    async def edits() -> None:
        for v in range(1, size.edits + 1):
            edit(ktl, uri, v, v)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(short(i) for i in range(size.short)), plans(), edits())
    for r in longs:
        c = await ktl.cmd("ktl.session.cancel", {"sessionId": r["sessionId"]})
        states["long:" + c["state"]] = states.get("long:" + c["state"], 0) + 1
    for r in follows:
        # From memory (the live session), not the store: reading the store here would open a
        # reader connection in each pool thread and blur the fd figures.
        live = await ktl.cmd("ktl.session.get", {"sessionId": r["sessionId"]})
        if live["lastSeq"] >= 10:  # the pod's lines kept arriving
            states["logs:streamed"] = states.get("logs:streamed", 0) + 1
        c = await ktl.cmd("ktl.session.cancel", {"sessionId": r["sessionId"]})
        states["logs:" + c["state"]] = states.get("logs:" + c["state"], 0) + 1
    if feeder is not None:
        feeder.cancel()
    ktl.client.text_document_did_close(
        lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )


async def soak(ktl: Ktl, root: Path, size: SoakSize, api: FakeApi | None = None) -> SoakResult:
    warm = SoakSize(short=2 * size.parallel, long=1, plans=1, edits=5, parallel=size.parallel)
    await round_of_work(ktl, root, warm, {}, api)
    gc.collect()
    baseline = await settle(ktl)
    states: dict[str, int] = {}
    peak = dict(baseline)

    async def watch() -> None:
        while True:
            s = await stats(ktl)
            for key in ("openFds", "threads", "rssBytes"):
                peak[key] = max(peak[key], s[key])
            await asyncio.sleep(0.5)

    watcher = asyncio.ensure_future(watch())
    try:
        await round_of_work(ktl, root, size, states, api)
        gc.collect()
        middle = await settle(ktl)
        await round_of_work(ktl, root, size, states, api)
    finally:
        watcher.cancel()
    after = await settle(ktl)
    return SoakResult(baseline, after, peak, size, states, children(server_pid(ktl)), middle)
