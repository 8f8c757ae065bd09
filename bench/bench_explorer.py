"""Cluster explorer figures against the loopback API server, with a same-run baseline.

5,000 pods across 50 namespaces (the API server in a child process, so it does not share the
language server's CPU); once the watch's snapshot is in, 100 pod updates a second (a container
restart each) for 60 s. ktl-lsp watches everything (``ktl.k8s.watch``) and pushes
``ktl/resources`` to this process, which reads them as an editor would. Reported: the server's
worst event-loop stall (``ktl.server.stats``, with the run-queue waits of a busy machine taken
out), notifications a second per watch and their bytes a second, the server's RSS after the
first list and at the end, and the time from an update at the API server to the notification
carrying it (p50/p99, matched by resourceVersion). Baseline: a bare ``kubernetes.aio`` watch
of all pods in this process, consuming the same updates in the same run.

    .venv/bin/python bench/bench_explorer.py [--pods 5000] [--namespaces 50] [--rate 100]
                                             [--seconds 60] [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lspclient import RawClient
from tests.k8s_api import FakeApi, write_kubeconfig


# -- the API server (child process) ----------------------------------------------------------------
def serve(pods: int, namespaces: int) -> None:
    """Commands on stdin: "updates <rate> <seconds>" answers {rv: wall time of the update}."""

    async def main() -> None:
        async with FakeApi() as api:
            api.controllers = False
            api.history = type(api.history)(maxlen=50_000)
            names = []
            for n in range(namespaces):
                api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{n}"}})
            for p in range(pods):
                ns = f"ns-{p % namespaces}"
                api.add_pod(f"pod-{p}", namespace=ns, labels={"app": f"app-{p % 7}"})
                names.append((f"pod-{p}", ns))
            with tempfile.TemporaryDirectory() as tmp:
                kc = write_kubeconfig(Path(tmp) / "kc", api)
                print(json.dumps({"kubeconfig": str(kc)}), flush=True)
                loop = asyncio.get_running_loop()
                while command := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
                    _, rate, seconds = command.split()
                    sent = await updates(api, names, int(rate), float(seconds))
                    print(json.dumps(sent), flush=True)

    asyncio.run(main())


async def updates(
    api: FakeApi, names: list[tuple[str, str]], rate: int, seconds: float
) -> dict[str, float]:
    sent: dict[str, float] = {}
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        name, ns = names[(i * 7919) % len(names)]
        api.restart_pod(name, ns)
        sent[str(api.rv)] = time.time()
        i += 1
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
    return sent


# -- the measurements ------------------------------------------------------------------------------
class Received:
    """What the editor side got: notifications with their arrival, size and pods' versions."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, int]] = []  #: (wall time, bytes)
        self.seen: dict[str, float] = {}  #: resourceVersion -> wall time it arrived
        self.snapshot = threading.Event()
        self.snapshot_size = 0

    def on_notify(self, method: str, params: Any) -> None:
        if method != "ktl/resources":
            return
        now = time.time()
        size = len(json.dumps(params))
        with self.lock:
            if params["event"] == "snapshot":
                self.snapshot_size = size
                self.snapshot.set()
                return
            self.arrivals.append((now, size))
            for n in params.get("updated", []) + params.get("added", []):
                rv = n.get("resourceVersion")
                if rv and rv not in self.seen:
                    self.seen[rv] = now


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bare_watch(
    kubeconfig: str, seen: dict[str, float], ready: asyncio.Event, stop: asyncio.Event
) -> int:
    """The baseline: ``kubernetes.aio``'s own watch of all pods; returns the events read."""
    from kubernetes.aio import client, config, watch

    await config.load_kube_config(config_file=kubeconfig)
    events = 0
    async with client.ApiClient() as api:
        core = client.CoreV1Api(api)
        listed = await core.list_pod_for_all_namespaces_without_preload_content()
        body = json.loads(await listed.read())
        rv = body["metadata"]["resourceVersion"]
        ready.set()
        w = watch.Watch()
        stream = w.stream(
            core.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=3600
        )
        async with w:
            async for event in stream:
                events += 1
                got = event["raw_object"]["metadata"]["resourceVersion"]
                seen.setdefault(str(got), time.time())
                if stop.is_set():
                    break
    return events


async def main(args: argparse.Namespace) -> None:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.pods), str(args.namespaces)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    kubeconfig = json.loads(child.stdout.readline())["kubeconfig"]
    received = Received()
    store = Path(tempfile.mkdtemp()) / "sessions.db"
    server = RawClient(
        [sys.executable, "-m", "ktl_lsp", "--store", str(store)],
        on_notify=received.on_notify,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )
    try:
        server.initialize({"resources": True, "gateway": {"enabled": False}})
        stats = server.command("ktl.server.stats", {"watchLoop": True})
        pid = stats["pid"]
        t0 = time.perf_counter()
        started = server.command("ktl.k8s.watch", {})
        if not received.snapshot.wait(120):
            raise TimeoutError("no snapshot")
        first_list = time.perf_counter() - t0
        await asyncio.sleep(1)
        rss_listed = rss_of(pid)
        server.command("ktl.server.stats", {"reset": True})

        baseline_seen: dict[str, float] = {}
        ready, stop = asyncio.Event(), asyncio.Event()
        bare = asyncio.ensure_future(bare_watch(kubeconfig, baseline_seen, ready, stop))
        await asyncio.wait_for(ready.wait(), 120)

        rss_samples = []
        child.stdin.write(f"updates {args.rate} {args.seconds}\n")
        child.stdin.flush()
        answer = asyncio.ensure_future(asyncio.to_thread(child.stdout.readline))
        began = time.time()
        while not answer.done():
            await asyncio.sleep(1)
            rss_samples.append(rss_of(pid))
        sent: dict[str, float] = json.loads(answer.result())
        await asyncio.sleep(1)  # the last batch
        stop.set()
        bare.cancel()
        ended = time.time()
        stats = server.command("ktl.server.stats", {})

        with received.lock:
            arrivals = [a for a in received.arrivals if began <= a[0] <= ended]
            seen = dict(received.seen)
        window = ended - began
        per_s: dict[int, int] = {}
        for at, _ in arrivals:
            per_s[int(at - began)] = per_s.get(int(at - began), 0) + 1
        latencies = [(seen[rv] - t) * 1000 for rv, t in sent.items() if rv in seen]
        base_lat = [(baseline_seen[rv] - t) * 1000 for rv, t in sent.items() if rv in baseline_seen]
        print(
            f"explorer bench: {args.pods} pods in {args.namespaces} namespaces, "
            f"{len(sent)} updates at {args.rate}/s for {args.seconds:g}s"
        )
        print(
            f"  first list -> snapshot: {first_list * 1000:.0f} ms, {received.snapshot_size / 1e6:.1f} MB"
        )
        print(
            f"  loop: worst stall {stats['loopMaxLagMs']:.1f} ms "
            f"(own, run-queue waits taken out: {stats['loopMaxOwnLagMs']:.1f} ms; "
            f"stalls over 20 ms: {stats['loopOwnStallsOver20Ms']})"
        )
        print(
            f"  notifications: {len(arrivals) / window:.1f}/s per watch (max {max(per_s.values(), default=0)} "
            f"in one second), {sum(b for _, b in arrivals) / window / 1000:.1f} KB/s"
        )
        print(
            f"  RSS: {rss_listed / 1e6:.0f} MB after the first list, "
            f"{min(rss_samples, default=0) / 1e6:.0f}-{max(rss_samples, default=0) / 1e6:.0f} MB during the run"
        )
        print(
            f"  update -> notification: p50 {percentile(latencies, 50):.0f} ms, "
            f"p99 {percentile(latencies, 99):.0f} ms ({len(latencies)}/{len(sent)} updates seen)"
        )
        print(
            f"  baseline bare kubernetes.aio watch: p50 {percentile(base_lat, 50):.0f} ms, "
            f"p99 {percentile(base_lat, 99):.0f} ms ({len(base_lat)}/{len(sent)} updates seen, "
            "one event per update, no pacing)"
        )
        server.command("ktl.session.cancel", {"sessionId": started["watchId"]})
    finally:
        server.close()
        child.stdin.close()
        child.wait(10)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--short", action="store_true", help="10 s of updates instead of 60")
    parsed = parser.parse_args()
    if parsed.short:
        parsed.seconds = min(parsed.seconds, 10)
    asyncio.run(main(parsed))
