"""Faults at random moments: kill -9 of the server, of a session's child, of a gateway client.

Seeded: the seed is printed; ``KTL_FAULT_SEED=<n>`` replays a run, ``KTL_FAULT_ROUNDS`` sets how
many faults are injected (default 6; every kind at least once). After each fault:

- the store passes ``PRAGMA integrity_check`` and ``foreign_key_check``;
- every session is in a truthful state: a session whose server was killed is ``interrupted``
  (once a server opens the store again), a session whose child was killed is ``error`` with
  signal KILL and exit code 137, untouched sessions are ``done``;
- frames are contiguous from 1, and every numbered line the generator printed before the fault
  is there in order, each once, up to the last commit: nothing acknowledged before the fault
  (read back with ``ktl.session.output``, which flushes) is lost. The documented window
  (docs/security.md, "Durability under faults") is what the writer had queued but not committed;
- after a killed server, its sessions' process groups are gone (SIGHUP from the closed PTY);
- after a killed SSE client, the server keeps serving: the session ends normally, its fds return
  to what they were, and a new tail gets every frame.

Stdin closed mid-request (tests/test_server.py) and a full disk
(tests/lsp/features/test_bad_input.py) are covered elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import Ktl, StartKtl
from tests.lsp.features.helpers import children, pid_alive, server_pid, wait_gone

# Numbered lines at a random pace; the shell's pid first, so the test can check it is gone.
GEN = 'echo "pid $$"; i=0; while [ $i -lt {n} ]; do echo "n $i"; i=$((i+1)); {pause}; done'


def fd_targets(pid: int) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return out


def connections(pid: int) -> list[str]:
    return [t for t in fd_targets(pid) if t.startswith(("socket:", "/dev/pts", "/dev/ptmx"))]


def seed() -> int:
    found = os.environ.get("KTL_FAULT_SEED")
    return int(found) if found else random.SystemRandom().randrange(2**32)


def check_store(store: Path) -> None:
    db = sqlite3.connect(store)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()


async def out_frames(ktl: Ktl, sid: str) -> list[dict[str, Any]]:
    out = await ktl.cmd("ktl.session.output", {"sessionId": sid})
    return list(out["frames"])


def numbers(frames: list[dict[str, Any]]) -> list[int]:
    text = "".join(f["data"] for f in frames if f["type"] == "output")
    return [int(n) for n in re.findall(r"^n (\d+)\r?$", text, flags=re.M)]


def assert_contiguous(frames: list[dict[str, Any]], at_least: int = 0) -> None:
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(1, len(seqs) + 1)), "frames must be contiguous from 1"
    assert len(seqs) >= at_least, f"{len(seqs)} frames after the fault, {at_least} acknowledged"
    nums = numbers(frames)
    assert nums == list(range(len(nums))), "a numbered line was lost or repeated"


def gen(rng: random.Random) -> str:
    pause = rng.choice([":", "sleep 0.01", "sleep 0.002"])
    return GEN.format(n=rng.choice([2000, 20000]), pause=pause)


async def kill_server(start_ktl: StartKtl, store: Path, rng: random.Random, log: list[str]) -> None:
    ktl = await start_ktl(store=store)
    finished = await ktl.cmd("ktl.run", {"command": "echo before; echo n 0"})
    running = [
        (await ktl.cmd("ktl.run", {"command": gen(rng), "detach": True}))["sessionId"]
        for _ in range(rng.randint(1, 3))
    ]
    await asyncio.sleep(rng.uniform(0.05, 0.8))
    acked = {sid: len(await out_frames(ktl, sid)) for sid in running}
    shells: list[int] = []
    for sid in running:
        m = re.search(r"pid (\d+)", "".join(f["data"] for f in await out_frames(ktl, sid)))
        if m:
            shells.append(int(m.group(1)))
    await asyncio.sleep(rng.uniform(0, 0.3))
    os.kill(server_pid(ktl), signal.SIGKILL)
    log.append(f"kill -9 server with {len(running)} running sessions")
    for pid in shells:
        assert await wait_gone(pid, 10), f"session process {pid} outlived its server"
    after = await start_ktl(store=store)
    check_store(store)
    for sid in running:
        s = await after.cmd("ktl.session.get", {"sessionId": sid})
        frames = await out_frames(after, sid)
        assert s["state"] in ("interrupted", "done"), s  # done: it finished before the kill
        assert_contiguous(frames, acked[sid])
    done = await after.cmd("ktl.session.get", {"sessionId": finished["sessionId"]})
    assert done["state"] == "done" and done["exitCode"] == 0


async def kill_child(start_ktl: StartKtl, store: Path, rng: random.Random, log: list[str]) -> None:
    ktl = await start_ktl(store=store)
    sid = (await ktl.cmd("ktl.run", {"command": gen(rng), "detach": True}))["sessionId"]
    pid = 0
    for _ in range(200):
        m = re.search(r"pid (\d+)", "".join(f["data"] for f in await out_frames(ktl, sid)))
        if m:
            pid = int(m.group(1))
            break
        await asyncio.sleep(0.02)
    assert pid
    await asyncio.sleep(rng.uniform(0, 0.5))
    with contextlib.suppress(ProcessLookupError):  # it may have finished already
        os.kill(pid, signal.SIGKILL)
    log.append("kill -9 a session's child")
    s = await ktl.cmd("ktl.session.wait", {"sessionId": sid, "timeoutS": 10})
    if s["state"] != "done":  # it may have finished first
        assert s["state"] == "error" and s["exitCode"] == 137 and s["signal"] == "KILL", s
    assert_contiguous(await out_frames(ktl, sid))
    assert not [c for c in children(server_pid(ktl)) if c[0] == pid]
    check_store(store)


CLIENT = """
import sys, httpx
url, token = sys.argv[1], sys.argv[2]
with httpx.stream("GET", url, headers={"Authorization": "Bearer " + token}, timeout=None) as r:
    for chunk in r.iter_bytes():
        sys.stdout.buffer.write(chunk[:1]); sys.stdout.flush()
"""


async def kill_sse_client(
    start_ktl: StartKtl, store: Path, rng: random.Random, log: list[str]
) -> None:
    ktl = await start_ktl(store=store)
    await ktl.cmd("ktl.run", {"command": "true"})
    command = GEN.format(n=rng.choice([200, 400]), pause=rng.choice([":", "sleep 0.005"]))
    sid = (await ktl.cmd("ktl.run", {"command": command, "detach": True}))["sessionId"]
    url = (await ktl.cmd("ktl.session.replay", {"sessionId": sid}))["url"]
    base = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    token = (store.parent / (store.name + ".gateway-token")).read_text().strip()
    # Sockets and terminals: a new executor thread may open its own SQLite reader, not a leak.
    before_fds = fd_targets(server_pid(ktl))
    connections_before = connections(server_pid(ktl))
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, f"{base}/api/v1/mirror/sessions/{sid}/tail", token],
            stdout=subprocess.PIPE,
        )
        for _ in range(rng.randint(1, 3))
    ]
    try:
        await asyncio.sleep(rng.uniform(0.05, 1.0))
        for c in clients:
            c.kill()
            c.wait()
        log.append(f"kill -9 {len(clients)} SSE clients")
        s = await ktl.cmd("ktl.session.wait", {"sessionId": sid, "timeoutS": 60})
        assert s["state"] == "done", s
        frames = await out_frames(ktl, sid)
        assert_contiguous(frames)
        import httpx

        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            r = await http.get(f"/api/v1/mirror/sessions/{sid}/tail")
            ids = [int(x) for x in re.findall(r"^id: (\d+)$", r.text, flags=re.M)]
            assert ids == list(range(1, len(frames) + 1))
        for _ in range(100):
            if len(connections(server_pid(ktl))) <= len(connections_before):
                break
            await asyncio.sleep(0.05)
        after_fds = fd_targets(server_pid(ktl))
        assert len(connections(server_pid(ktl))) <= len(connections_before), (
            "a killed client's connection leaked",
            sorted(set(after_fds) - set(before_fds)),
        )
        assert pid_alive(server_pid(ktl))
        check_store(store)
    finally:
        for c in clients:
            with contextlib.suppress(OSError):
                c.kill()
            c.wait()
            if c.stdout:
                c.stdout.close()


FAULTS = [kill_server, kill_child, kill_sse_client]


async def test_random_faults_keep_the_store_and_the_truth(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    s = seed()
    rounds = int(os.environ.get("KTL_FAULT_ROUNDS", "6"))
    print(f"\nfault injection seed {s} (replay: KTL_FAULT_SEED={s}), {rounds} faults")
    rng = random.Random(s)
    kinds = [*FAULTS, *(rng.choice(FAULTS) for _ in range(max(0, rounds - len(FAULTS))))]
    rng.shuffle(kinds)
    log: list[str] = []
    store = tmp_path / "faults.db"
    for kind in kinds[:rounds]:
        await kind(start_ktl, store, rng, log)
    print(f"faults survived / injected: {len(log)} / {rounds}")
    print("\n".join("  " + line for line in log))
    assert len(log) == rounds
