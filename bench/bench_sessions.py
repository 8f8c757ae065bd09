"""Session figures for the server core, each against a baseline measured in the same run.

1. Throughput: `cat` of a prepared file of 100 MB of 77-byte lines through ktl.run (recording
   on, a client that takes ktl/sessionData, every byte in the store and at the client) vs a bare
   PTY read loop of the same `cat`: the PTY's own ceiling (a `yes | head` pipeline tops out
   well below it, ~35 MB/s, and flattered the ratio).
2. Latency: ktl.run -> first ktl/sessionData for `echo hi` (median); the first `ktl.run` and
   the first `ktl.plan.run` (request -> its first node running) of a warm server vs the second.
   Start-up: time from spawn to the answer of `initialize` (with VS Code's capabilities, as
   pytest-lsp recorded them) vs a bare pygls server: a first start (empty code cache), later
   starts, and later starts with the code cache off.
3. Stalls: 20 sessions streaming at once: the worst event-loop stall (and the part of it the
   kernel kept the loop waiting for a CPU), a bare asyncio process's worst stall alongside, RSS.

    .venv/bin/python bench/bench_sessions.py [--mb 100]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lspclient import RawClient

LINE = "x" * 76


def lines_file(mb: int, where: Path) -> Path:
    """``mb`` MB of 77-byte lines, written once: ``cat`` of it is what the PTY can carry."""
    path = where / f"lines-{mb}mb.txt"
    if not path.exists():
        block = f"{LINE}\n".encode() * 13_000  # ~1 MB
        with path.open("wb") as fh:
            for _ in range(mb):
                fh.write(block)
    return path


def gen_command(path: Path) -> list[str]:
    return ["cat", str(path)]


def raw_pty(path: Path) -> tuple[float, int]:
    from ptyprocess import PtyProcess

    def default_sigpipe() -> None:
        # As a terminal starts programs (and as ktl does).
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)

    t0 = time.perf_counter()
    proc = PtyProcess.spawn(gen_command(path), dimensions=(30, 120), preexec_fn=default_sigpipe)
    total = 0
    while True:
        try:
            data = os.read(proc.fd, 65536)
        except OSError:
            break
        if not data:
            break
        total += len(data)
    elapsed = time.perf_counter() - t0
    proc.wait()
    return elapsed, total


def server_argv(store: Path) -> list[str]:
    return [sys.executable, "-m", "ktl_lsp", "--store", str(store)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: The language server's options that run sessions in the session host (``ktl-lsp host``).
PERSIST = {"sessions": {"persist": True, "hostIdleTimeout": 30}}


def through_ktl(
    path: Path,
    store: Path,
    options: dict | None = None,  # type: ignore[type-arg]
) -> tuple[float, int, int, float, float]:
    """Seconds, bytes the client got, bytes stored, and the CPU seconds of the server and
    of the client's reading while streaming (steadier than the rate on a busy machine).
    With ``PERSIST`` the session runs in the session host (whose CPU is not counted)."""
    received = [0]
    last_seq = [0]
    done = threading.Event()

    def on_notify(method: str, params: dict) -> None:  # type: ignore[type-arg]
        if method == "ktl/sessionData":
            # In order: each notification carries the frames after the previous one's.
            assert params["seq"] > last_seq[0], (params["seq"], last_seq[0])
            last_seq[0] = params["seq"]
            received[0] += len(params["data"])
        elif method == "ktl/sessionState" and params["state"] != "running":
            done.set()

    client = RawClient(server_argv(store), on_notify)
    client.initialize({"sessionData": True, **(options or {})})
    # Steady state: the replay gateway starts with the first session (its imports take ~300 ms
    # of CPU in a thread); timing a stream across it measures start-up, not streaming.
    client.command("ktl.run", {"argv": ["true"]})
    time.sleep(1.5)
    done.clear()
    t0 = time.perf_counter()
    last_seq[0] = 0
    server_cpu, client_cpu = cpu_seconds(client.proc.pid), time.process_time()
    result = client.command("ktl.run", {"argv": gen_command(path)})
    done.wait(60)
    elapsed = time.perf_counter() - t0
    server_cpu = cpu_seconds(client.proc.pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    stored = client.command("ktl.session.get", {"sessionId": result["sessionId"]})
    client.close()
    if options is not None:
        subprocess.run([*server_argv(store), "host", "--stop"], capture_output=True, check=True)
    import sqlite3

    db = sqlite3.connect(store)
    (stored_bytes,) = db.execute(
        "SELECT COALESCE(SUM(LENGTH(data)),0) FROM frames WHERE session_id=? AND type='output'",
        (stored["sessionId"],),
    ).fetchone()
    return elapsed, received[0], stored_bytes, server_cpu, client_cpu


def first_command(store: Path) -> tuple[float, float]:
    """The answer to the first `ktl.run` of a server's life and to the second (ms); the server
    is given a second after `initialized` to settle, as an editor gives it while the user reads."""
    client = RawClient(server_argv(store), lambda method, params: None)
    client.initialize({"sessionData": True})
    time.sleep(1.0)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        client.command("ktl.run", {"argv": ["printf", "hello"]})
        times.append((time.perf_counter() - t0) * 1000)
    client.close()
    return times[0], times[1]


def first_plan(where: Path) -> tuple[float, float, float]:
    """ms from a `ktl.plan.run` request to its first node's process running, for the first
    plan of a warm server (a second after `initialized`) and the second; and the same command
    spawned bare (the floor)."""
    stamp = where / "plan-stamp"
    plan = where / "first.plan.yaml"
    node = f"date +%s%N > {stamp}"
    plan.write_text(f"name: first\nnodes:\n  - {{id: a, run: [sh, -c, '{node}']}}\n")
    client = RawClient(server_argv(where / "plan.db"), lambda method, params: None)
    client.initialize({"sessionData": True})
    time.sleep(1.0)
    times = []
    for _ in range(2):
        stamp.unlink(missing_ok=True)
        t0 = time.time_ns()
        client.command("ktl.plan.run", {"uri": plan.as_uri()})
        times.append((int(stamp.read_text()) - t0) / 1e6)
    client.close()
    t0 = time.time_ns()
    subprocess.run(["sh", "-c", node], check=True)
    bare = (int(stamp.read_text()) - t0) / 1e6
    return times[0], times[1], bare


def latency(store: Path, runs: int = 30) -> tuple[float, float]:
    first: dict[str, float] = {}
    ev = threading.Event()

    def on_notify(method: str, params: dict) -> None:  # type: ignore[type-arg]
        if method == "ktl/sessionData" and "hi" in params["data"]:
            first.setdefault("t", time.perf_counter())
            ev.set()

    client = RawClient(server_argv(store), on_notify)
    client.initialize({"sessionData": True})
    client.command("ktl.run", {"argv": ["true"]})  # warm the store
    samples = []
    for _ in range(runs):
        first.clear()
        ev.clear()
        t0 = time.perf_counter()
        client.command("ktl.run", {"argv": ["echo", "hi"]})
        ev.wait(5)
        samples.append((first["t"] - t0) * 1000)
    # Baseline: the same spawn + first read, without LSP or recording.
    from ptyprocess import PtyProcess

    base = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = PtyProcess.spawn(["echo", "hi"])
        os.read(p.fd, 1024)
        base.append((time.perf_counter() - t0) * 1000)
        p.wait()
        # Else the object's __del__ sleeps 100 ms in close() while the next spawn is timed.
        p.delayafterclose = 0
        p.close()
    client.close()
    return statistics.median(samples), statistics.median(base)


def vscode_initialize() -> dict:  # type: ignore[type-arg]
    import json

    import pytest_lsp

    recorded = Path(pytest_lsp.__file__).parent / "clients" / "visual_studio_code_v1.65.2.json"
    params = json.loads(recorded.read_text())
    return {"processId": os.getpid(), "rootUri": None, **params}


def init_time(argv: list[str], runs: int = 5, env: dict[str, str] | None = None) -> float:
    params = vscode_initialize()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        c = RawClient(argv, env=env)
        c.request("initialize", params)
        samples.append((time.perf_counter() - t0) * 1000)
        # The rest of a session's life, as an editor lives it (the server keeps its cache then).
        c.notify("initialized", {})
        time.sleep(0.3)  # let the server's requests after `initialized` be answered
        c.request("shutdown", None)
        c.notify("exit", None)
        try:
            c.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
    return statistics.median(samples)


#: A bare asyncio loop with the same 5 ms ticker as ``ktl.server.stats``: the stalls any process
#: on this machine sees at the same moment (the baseline for ours).
BARE_TICKER = """
import asyncio, sys, time
async def main():
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()
    loop.add_reader(0, lambda: sys.stdin.buffer.raw.read(4096) or closed.set())
    worst = 0.0
    while not closed.is_set():
        due = loop.time() + 0.005
        await asyncio.sleep(0.005)
        worst = max(worst, (loop.time() - due) * 1000)
    print(round(worst, 2), flush=True)
asyncio.run(main())
"""

#: One process per session, 10 KB of 77-byte lines every 2 ms: a chatty build, no fork per line.
STREAMER = (
    "import sys, time\n"
    "chunk = (('x' * 76 + '\\n') * 130).encode()\n"
    "for _ in range({n}):\n"
    "    sys.stdout.buffer.write(chunk); sys.stdout.flush(); time.sleep(0.002)\n"
)


def stalls(store: Path, workload: str, n: int = 20, mb_each: int = 5) -> dict[str, float]:
    import subprocess

    done = threading.Semaphore(0)

    def on_notify(method: str, params: dict) -> None:  # type: ignore[type-arg]
        if method == "ktl/sessionState" and params["state"] != "running":
            done.release()

    client = RawClient(server_argv(store), on_notify)
    client.initialize({"sessionData": True})
    client.command("ktl.run", {"argv": ["true"]})
    done.acquire()
    before = client.command("ktl.server.stats", {"watchLoop": True, "reset": True})
    time.sleep(0.2)
    idle = client.command("ktl.server.stats", {})
    bare = subprocess.Popen(
        [sys.executable, "-c", BARE_TICKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)
    client.command("ktl.server.stats", {"reset": True})
    run: dict[str, object]
    if workload == "forks":
        # A shell that forks `yes | head` and `sleep` for every 10 KB: 20 of them saturate 2 cores.
        run = {
            "command": f"for i in $(seq 1 {mb_each * 100}); do yes '{LINE}' | head -c 10000; sleep 0.002; done"
        }
    else:
        run = {"argv": [sys.executable, "-c", STREAMER.format(n=mb_each * 100)]}
    t0 = time.perf_counter()
    for _ in range(n):
        client.command("ktl.run", {**run, "detach": True})
    for _ in range(n):
        done.acquire(timeout=120)
    elapsed = time.perf_counter() - t0
    after = client.command("ktl.server.stats", {})
    bare_out, _ = bare.communicate("", timeout=10)
    client.close()
    return {
        "elapsed_s": elapsed,
        "idle_max_lag_ms": idle["loopMaxLagMs"],
        "max_lag_ms": after["loopMaxLagMs"],
        "own_lag_ms": after["loopMaxOwnLagMs"],
        "bare_lag_ms": float(bare_out.strip() or "nan"),
        "rss_before_mb": before["rssBytes"] / 1e6,
        "rss_after_mb": after["rssBytes"] / 1e6,
        "fds_before": before["openFds"],
        "fds_after": after["openFds"],
        "threads_after": after["threads"],
        "gc_pause_ms": after.get("gcMaxPauseMs", float("nan")),
        "over_20": after.get("loopOwnStallsOver20Ms", 0),
        "ticks": after.get("loopTicks", 0),
        "gc_runs": after.get("gcRuns", 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--init-pairs", type=int, default=9)
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["throughput", "host", "latency", "startup", "stalls"],
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ktl-bench-"))
    # The servers' code cache lives with the bench, not in the user's home.
    os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
    os.environ["KTL_LSP_HOST_DIR"] = str(tmp / "host")
    # Time an installed server: compiled, as pip leaves it (not recompiling edited modules).
    import compileall

    compileall.compile_dir(Path(__file__).resolve().parent.parent / "ktl_lsp", quiet=1)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    if "throughput" not in args.skip:
        # Interleaved rounds: the machine's load drifts, so each ratio pairs neighbours.
        ratios, raw_rates, ktl_rates, cpu = [], [], [], []
        host_rates, host_ratios = [], []
        lines = lines_file(args.mb, tmp)
        for round_ in range(args.rounds):
            raw_s, raw_bytes = raw_pty(lines)
            db = tmp / f"tp{round_}.db"
            ktl_s, got, stored, server_cpu, client_cpu = through_ktl(lines, db)
            cpu.append((server_cpu * 100 / args.mb, client_cpu * 100 / args.mb))
            assert stored == raw_bytes, f"store lost bytes: {stored} != {raw_bytes}"
            assert got == raw_bytes, f"client got {got} of {raw_bytes} bytes"
            raw_rates.append(raw_bytes / raw_s / 1e6)
            ktl_rates.append(stored / ktl_s / 1e6)
            ratios.append(ktl_rates[-1] / raw_rates[-1])
            if "host" not in args.skip:
                hdb = tmp / f"host{round_}.db"
                host_s, hgot, hstored, _, _ = through_ktl(lines, hdb, PERSIST)
                assert hstored == raw_bytes, f"host's store lost bytes: {hstored} != {raw_bytes}"
                assert hgot == raw_bytes, f"client got {hgot} of {raw_bytes} bytes via the host"
                host_rates.append(hstored / host_s / 1e6)
                host_ratios.append(host_rates[-1] / ktl_rates[-1])
            for d in (db, tmp / f"host{round_}.db"):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{d}{suffix}").unlink(missing_ok=True)
        lines.unlink()
        print(
            f"throughput raw pty      : {statistics.median(raw_rates):7.1f} MB/s median of {args.rounds} (`cat` of {args.mb} MB of 77-byte lines)"
        )
        print(
            f"throughput ktl.run      : {statistics.median(ktl_rates):7.1f} MB/s median (recording on, sessionData client, every byte stored and received)"
        )
        print(
            f"ratio ktl/raw           : {statistics.median(ratios):.2f} median, {max(ratios):.2f} best "
            f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.6, aim 0.8)"
        )
        if host_rates:
            print(
                f"throughput via host     : {statistics.median(host_rates):7.1f} MB/s median (sessions.persist: the session host records, the server relays)"
            )
            print(
                f"ratio host/in-process   : {statistics.median(host_ratios):.2f} median "
                f"(rounds: {', '.join(f'{r:.2f}' for r in host_ratios)})"
            )
        print(
            f"cpu per 100 MB          : server {statistics.median(c[0] for c in cpu):.2f} s, "
            f"client {statistics.median(c[1] for c in cpu):.2f} s (median)"
        )
    if "latency" not in args.skip:
        one, two = first_command(tmp / "first.db")
        print(
            f"first ktl.run answered  : {one:6.1f} ms (the second: {two:.1f} ms; target: as fast)"
        )
        plan_one, plan_two, plan_bare = first_plan(tmp)
        print(
            f"first plan node started : {plan_one:6.1f} ms after ktl.plan.run (the second plan: "
            f"{plan_two:.1f} ms; the node's command spawned bare: {plan_bare:.1f} ms; target <= 50 ms)"
        )
        med, base = latency(tmp / "lat.db")
        print(
            f"latency run->first data : {med:6.1f} ms median (bare spawn+read {base:.1f} ms; target <= 15 ms)"
        )
    if "startup" not in args.skip:
        bare = tmp / "bare.py"
        bare.write_text(
            "from pygls.lsp.server import LanguageServer\nLanguageServer('bare','0').start_io()\n"
        )
        argv = server_argv(tmp / "init.db")
        first = []
        for i in range(3):  # a first start each time: an empty cache directory
            env = {**os.environ, "XDG_CACHE_HOME": str(tmp / f"cold{i}")}
            first.append(init_time(argv, runs=1, env=env))
        # Pairs, ours then bare, each warm start with the cache of the earlier runs: the
        # machine's load drifts, so each ratio compares neighbours and the median is taken.
        ours_ms, theirs_ms, pair_ratios = [], [], []
        for _ in range(args.init_pairs):
            ours_ms.append(init_time(argv, runs=1))
            theirs_ms.append(init_time([sys.executable, str(bare)], runs=1))
            pair_ratios.append(ours_ms[-1] / theirs_ms[-1])
        off = init_time(argv, env={**os.environ, "KTL_LSP_CODE_CACHE": "0"})
        print(
            f"initialize answered     : {statistics.median(ours_ms):6.0f} ms median (bare pygls server "
            f"{statistics.median(theirs_ms):.0f} ms; ratio {statistics.median(pair_ratios):.2f} median of "
            f"{len(pair_ratios)} interleaved pairs, {min(pair_ratios):.2f}-{max(pair_ratios):.2f}; target <= 0.7)"
        )
        print(
            f"  first start           : {statistics.median(first):6.0f} ms (empty code cache); code cache off {off:.0f} ms"
        )
    if "stalls" not in args.skip:
        for workload, label in (("streams", "one process each"), ("forks", "a fork per 10 KB")):
            s = stalls(tmp / f"stall-{workload}.db", workload)
            print(
                f"20 sessions ({label:16}): loop stall max {s['max_lag_ms']:.1f} ms, "
                f"{s['own_lag_ms']:.1f} ms not waiting for a CPU (target <= 20 ms; {s['over_20']} of {s['ticks']} ticks over); "
                f"bare asyncio process alongside {s['bare_lag_ms']:.1f} ms; longest gc pause {s['gc_pause_ms']:.1f} ms of {s['gc_runs']}; idle {s['idle_max_lag_ms']:.1f} ms; "
                f"rss {s['rss_before_mb']:.0f} -> {s['rss_after_mb']:.0f} MB, fds {s['fds_before']} -> {s['fds_after']}, "
                f"{s['elapsed_s']:.1f}s"
            )


if __name__ == "__main__":
    main()
