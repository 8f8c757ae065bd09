"""Port-forward figures against the loopback API server, with same-run baselines.

1. Throughput: a 100 MB HTTP download through ``ktl.portForward`` (local listener -> ktl-lsp ->
   the API server's port-forward websocket -> the pod's port) vs the same download straight from
   the pod's port on loopback. The API server (and the "pod") runs in a child process, ktl-lsp in
   another, the downloader here: three processes, as on a developer's machine.
2. Reconnection: the forwarded Deployment's pod is deleted; how long until a request through the
   forward is answered by the replacement, vs how long the cluster itself took to make the
   replacement (the part ktl cannot shorten).

    .venv/bin/python bench/bench_forward.py [--mb 100] [--rounds 3] [--replacements 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lspclient import RawClient

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 8080}]
"""


# -- the cluster, in a child process -------------------------------------------------------------
def serve() -> None:
    """Commands on stdin: "pod" (current pod + its direct local port), "replace" (delete the pod;
    answers at once with the time), "ready" (when the replacement appeared, running)."""
    import aiohttp

    from tests.k8s_api import FakeApi, write_kubeconfig
    from tests.k8s_api.server import TOKEN
    from tests.k8s_api.streams import _PodNet

    async def main() -> None:
        async with FakeApi() as api:
            async with aiohttp.ClientSession() as http:
                url = f"{api.url}/apis/apps/v1/namespaces/default/deployments/web"
                async with http.patch(
                    url,
                    params={"fieldManager": "bench"},
                    data=DEPLOYMENT,
                    headers={
                        "Authorization": f"Bearer {TOKEN}",
                        "Content-Type": "application/apply-patch+yaml",
                    },
                ) as r:
                    assert r.status in (200, 201), await r.text()

            def pods() -> list[dict[str, Any]]:
                return [
                    r.obj
                    for k, r in api.objects.items()
                    if k[1] == "pods" and r.obj.get("status", {}).get("phase") == "Running"
                ]

            while not pods():
                await asyncio.sleep(0.01)
            with tempfile.TemporaryDirectory() as tmp:
                kc = write_kubeconfig(Path(tmp) / "kc", api)
                print(json.dumps({"kubeconfig": str(kc)}), flush=True)
                loop = asyncio.get_running_loop()
                replaced_at: dict[str, float] = {}
                while cmd := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
                    if cmd == "pod":
                        pod = pods()[0]
                        meta = pod["metadata"]
                        net = api.streams.nets.get(meta["uid"])
                        if net is None:
                            net = api.streams.nets[meta["uid"]] = _PodNet(
                                "default", meta["name"], meta["uid"]
                            )
                        port = await net._local_port(8080)
                        print(json.dumps({"pod": meta["name"], "direct": port}), flush=True)
                    elif cmd == "replace":
                        old = pods()[0]["metadata"]["name"]
                        t0 = time.time()
                        api.delete_pod(old)
                        print(json.dumps({"deleted": t0, "old": old}), flush=True)

                        async def watch(old: str = old) -> None:
                            while True:
                                new = [p for p in pods() if p["metadata"]["name"] != old]
                                if new:
                                    replaced_at["t"] = time.time()
                                    return
                                await asyncio.sleep(0.002)

                        await watch()
                    elif cmd == "ready":
                        print(json.dumps({"ready": replaced_at["t"]}), flush=True)

    asyncio.run(main())


# -- measuring ---------------------------------------------------------------------------------
def download(port: int, nbytes: int) -> float:
    """Seconds to GET /bytes/N over a plain socket (no HTTP library cost on either side)."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET /bytes/{nbytes} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        got = 0
        head = b""
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while True:
            n = s.recv_into(view)
            if not n:
                break
            if not head:
                head = bytes(view[:n])
                cut = head.find(b"\r\n\r\n")
                got += n - (cut + 4)
            else:
                got += n
    elapsed = time.perf_counter() - t0
    assert got == nbytes, f"short download: {got} of {nbytes}"
    return elapsed


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pod_of(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"x-pod:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replacements", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.serve:
        serve()
        return
    root = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    assert child.stdin is not None and child.stdout is not None

    def ask(cmd: str) -> dict[str, Any]:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(cmd + "\n")
        child.stdin.flush()
        return dict(json.loads(child.stdout.readline()))

    kubeconfig = json.loads(child.stdout.readline())["kubeconfig"]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KUBECONFIG"] = kubeconfig
        client = RawClient([sys.executable, "-m", "ktl_lsp", "--store", f"{tmp}/s.db"])
        try:
            client.initialize({"sessionData": True})
            result = client.command(
                "ktl.portForward", {"workload": "deployment/web", "ports": [":8080"]}
            )
            local = result["forwards"][0]["local"]
            pod = ask("pod")
            nbytes = a.mb * 1024 * 1024
            download(local, 1 << 20)  # warm both paths
            download(pod["direct"], 1 << 20)
            direct, forward = [], []
            cpu = {"ktl-lsp": 0.0, "API server": 0.0}
            pids = {"ktl-lsp": client.proc.pid, "API server": child.pid}
            for _ in range(a.rounds):
                direct.append(download(pod["direct"], nbytes))
                before = {k: cpu_s(p) for k, p in pids.items()}
                forward.append(download(local, nbytes))
                for k, p in pids.items():
                    cpu[k] += cpu_s(p) - before[k]
            d, f = statistics.median(direct), statistics.median(forward)
            print(f"throughput, {a.mb} MB download (median of {a.rounds}):")
            print(f"  direct loopback      {d * 1000:8.0f} ms  {a.mb / d:8.0f} MB/s")
            print(f"  through ktl forward  {f * 1000:8.0f} ms  {a.mb / f:8.0f} MB/s")
            print(f"  ratio forward/direct {f / d:.2f}x time ({d / f:.2f} of direct throughput)")
            for k, v in cpu.items():
                print(f"  CPU of {k:<10} {v / a.rounds * 1000:8.0f} ms per download")

            reconnect, cluster = [], []
            for _ in range(a.replacements):
                gone = ask("replace")
                while (name := pod_of(local)) in (gone["old"], ""):
                    pass  # a request that raced the deletion; the next goes to the new pod
                t_ok = time.time()
                ready = ask("ready")["ready"]
                reconnect.append((t_ok - gone["deleted"]) * 1000)
                cluster.append((ready - gone["deleted"]) * 1000)
                assert name
            r, c = statistics.median(reconnect), statistics.median(cluster)
            print(f"reconnection after the pod is replaced (median of {a.replacements}):")
            print(f"  cluster makes a ready replacement  {c:7.1f} ms (baseline)")
            print(f"  first answer through the forward   {r:7.1f} ms")
            print(f"  ktl's own share                    {r - c:7.1f} ms  ({r / c:.2f}x)")
            print(f"  samples ms: {', '.join(f'{x:.0f}' for x in reconnect)}")
            client.command("ktl.session.cancel", {"sessionId": result["sessionId"]})
        finally:
            client.close()
            child.stdin.close()
            child.wait(10)


if __name__ == "__main__":
    main()
