"""Kubernetes figures against the loopback API server (tests/k8s_api), with same-run baselines.

1. Apply of a 200-document file (1 Namespace, ConfigMaps, Services, Deployments): wall time and
   requests, first apply (creates) and second (all unchanged). Baseline: the same server-side
   apply PATCHes sent straight through the same kubernetes ApiClient, one after the other, with
   no parsing, discovery, ordering or reporting; the difference is our client-side overhead.
2. A log follow of 50 pods x 1,000 lines/s recorded as a session (SQLite store) and counted
   back from the store: every line must be there exactly once. The API server runs in a child
   process so it does not share the follower's CPU.

    .venv/bin/python bench/bench_k8s.py [--docs 200] [--pods 50] [--rate 1000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ktl_lsp.k8s import ops
from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from ktl_lsp.k8s.logs import LogFollower, LogRequest
from ktl_lsp.k8s.manifests import load
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, TaskOutcome
from ktl_lsp.sessions.model import FrameType, State
from tests.k8s_api import FakeApi, write_kubeconfig


class Sink:
    def write(self, text: str) -> None:
        pass

    def event(self, **fields: Any) -> None:
        pass


def manifest(docs: int) -> str:
    parts = ["apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n"]
    for i in range(docs - 1):
        kind = i % 3
        if kind == 0:
            parts.append(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-{i}\n  namespace: bench\n"
                f"data:\n  key: value-{i}\n  other: '{i}'\n"
            )
        elif kind == 1:
            parts.append(
                f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: bench\n"
                f"spec:\n  selector: {{app: app-{i}}}\n  ports:\n  - name: http\n    port: 80\n"
            )
        else:
            parts.append(
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: bench\n"
                f"spec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n"
                f"    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n"
                f"      - name: app\n        image: nginx:1.27\n        ports:\n        - containerPort: 8080\n"
            )
    return "---\n".join(parts)


class Child:
    """The API server in a child process (so it does not share our CPU), driven over stdin."""

    def __init__(self, pods: int = 0, rate: int = 0, seconds: float = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(pods), str(rate), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    async def ask(self, command: str | None = None) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(await asyncio.to_thread(self.proc.stdout.readline))
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(10)


async def _timed(coro: Any) -> tuple[Any, float, float]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = await coro
    return result, time.perf_counter() - t0, time.process_time() - cpu0


async def bench_apply(docs: int) -> None:
    text = manifest(docs)
    child = Child()
    try:
        config = load_kubeconfig({"KUBECONFIG": (await child.ask())["kubeconfig"]})
        base = Cluster(config)
        _, manifests = load(text)
        bodies = []
        for m in manifests:
            res = await base.resource_for(m.api_version, m.kind)
            assert res is not None and m.obj is not None
            bodies.append((res.path("bench" if res.namespaced else None, m.name), m.obj))

        async def bare() -> None:
            for path, body in bodies:
                await base.request(
                    "PATCH",
                    path,
                    [("fieldManager", "ktl-lsp")],
                    body=body,
                    content_type="application/apply-patch+yaml",
                )

        baseline = {}
        for phase in ("creates", "unchanged"):
            base.requests = 0
            _, wall, cpu = await _timed(bare())
            baseline[phase] = (wall, cpu, base.requests)
        await base.close()
        await child.ask("reset")
        for phase in ("creates", "unchanged"):
            cluster = Cluster(config)

            async def ours(cluster: Cluster = cluster) -> list[ops.Outcome]:
                _, parsed = load(text)
                return await ops.apply(cluster, parsed, ops.Options(), Sink())

            outcomes, wall, cpu = await _timed(ours())
            actions: dict[str, int] = {}
            for o in outcomes:
                actions[o.action] = actions.get(o.action, 0) + 1
            b_wall, b_cpu, b_req = baseline[phase]
            print(
                f"apply {docs} docs ({phase}): {wall * 1000:6.0f} ms wall, {cluster.requests} requests, "
                f"client CPU {cpu / docs * 1000:.2f} ms/doc {actions}"
            )
            print(
                f"  baseline bare serial PATCHes: {b_wall * 1000:6.0f} ms wall, {b_req} requests, "
                f"client CPU {b_cpu / docs * 1000:.2f} ms/doc -> ours/baseline wall {wall / b_wall:.2f}x, "
                f"our client-side overhead {(cpu - b_cpu) / docs * 1000:.2f} ms CPU/doc"
            )
            await cluster.close()
    finally:
        child.close()


# -- log follow ---------------------------------------------------------------------------------
def serve(pods: int, rate: int, seconds: float) -> None:
    """Child process: the API server with ``pods`` pods; commands on stdin: "logs" (each pod logs
    ``rate`` lines/s for ``seconds``), "reset" (forget the bench namespace's objects)."""

    async def main() -> None:
        async with FakeApi() as api:
            api.controllers = False
            for p in range(pods):
                api.add_pod(f"pod-{p}", labels={"app": "flood"})
            with tempfile.TemporaryDirectory() as tmp:
                kc = write_kubeconfig(Path(tmp) / "kc", api)
                print(json.dumps({"kubeconfig": str(kc)}), flush=True)
                loop = asyncio.get_running_loop()
                while command := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
                    if command == "reset":
                        api.objects = {
                            k: v
                            for k, v in api.objects.items()
                            if k[2] != "bench" and k[3] != "bench"
                        }
                        print(json.dumps({}), flush=True)
                    elif command == "logs":
                        print(json.dumps(await produce(api, pods, rate, seconds)), flush=True)

    asyncio.run(main())


async def produce(api: FakeApi, pods: int, rate: int, seconds: float) -> dict[str, Any]:
    tick = 0.05
    per_tick = max(1, int(rate * tick))
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        for p in range(pods):
            api.log(f"pod-{p}", "app", *(f"pod-{p} line {n + i}" for i in range(per_tick)))
        n += per_tick
        await asyncio.sleep(max(0.0, start + (n / per_tick) * tick - time.monotonic()))
    return {"sent": n * pods, "per_pod": n, "seconds": time.monotonic() - start}


async def bench_logs(pods: int, rate: int, seconds: float) -> None:
    child = Child(pods, rate, seconds)
    try:
        config = load_kubeconfig({"KUBECONFIG": (await child.ask())["kubeconfig"]})
        with tempfile.TemporaryDirectory() as tmp:
            manager = SessionManager.open(Path(tmp) / "sessions.db")
            cluster = Cluster(config)
            follower: LogFollower | None = None

            async def work(live: LiveSession) -> TaskOutcome:
                nonlocal follower
                follower = LogFollower(
                    cluster, LogRequest("default", selector="app=flood", tail_lines=0), live
                )
                await follower.run()
                return TaskOutcome()

            live = manager.start_task(RunSpec(argv=[], command="ktl logs", kind="k8s"), work)
            while follower is None or len(follower.streams) < pods:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # every stream is open
            cpu0, t0 = time.process_time(), time.perf_counter()
            produced = await child.ask("logs")
            expected = produced["sent"]
            while follower.lines < expected and time.perf_counter() - t0 < seconds + 30:
                await asyncio.sleep(0.05)
            t_all, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            manager.cancel(live.id)
            await live.done
            frames, _ = await manager.frames(live.id)
            text = "".join(
                f.data.decode("utf-8", "replace") for f in frames if f.type is FrameType.OUTPUT
            )
            lines = re.findall(r"(pod-\d+) line (\d+)\r\n", text)
            unique = set(lines)
            missing = pods * produced["per_pod"] - len(unique)
            print(
                f"log follow {pods} pods x {rate} lines/s for {produced['seconds']:.1f}s: {expected} lines produced, "
                f"{len(unique)} recorded in the store ({missing} missing, {len(lines) - len(unique)} duplicated), "
                f"all in {t_all:.1f}s; {len(frames)} frames; follower CPU {cpu / max(t_all, 1e-9) * 100:.0f}% of one core"
            )
            assert live.session.state in (State.CANCELLED, State.DONE)
            await cluster.close()
            manager.close()
    finally:
        child.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--serve", nargs=3, metavar=("PODS", "RATE", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]), float(args.serve[2]))
        return
    asyncio.run(bench_apply(args.docs))
    asyncio.run(bench_logs(args.pods, args.rate, args.seconds))


if __name__ == "__main__":
    main()
