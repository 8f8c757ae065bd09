"""Store figures, each against a baseline measured in the same run.

1. Ingest: frames/s the real batched writer sustains (4 KB output frames), vs a bare
   executemany of the same rows into an empty SQLite file; bytes on disk per MB of output.
2. Listing 10,000 sessions with a filter (target < 50 ms), vs an unfiltered count(*).
3. Crash window: kill -9 of a server streaming output; how much of what the editor had
   already been shown is missing from the store afterwards (target <= 250 ms of output).

    .venv/bin/python bench/bench_store.py
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lspclient import RawClient

from ktl_lsp.sessions.model import Frame, FrameType, Session, SessionFilter, State
from ktl_lsp.sessions.store import Store


def ingest(tmp: Path, frames: int = 100_000, size: int = 4096) -> None:
    payload = os.urandom(size // 2).hex().encode()[:size]
    store = Store(tmp / "ingest.db")
    store.open()
    s = Session(id="ingest", kind="pty", title="ingest")
    store.save_session(s)
    t0 = time.perf_counter()
    for seq in range(1, frames + 1):
        store.append(Frame(s.id, seq, seq, FrameType.OUTPUT, payload))
    store.flush_sync(600)
    elapsed = time.perf_counter() - t0
    store.checkpoint()
    disk = store.file_size()
    store.close()

    base = sqlite3.connect(tmp / "bare.db", isolation_level=None)
    base.execute("PRAGMA journal_mode=WAL")
    base.execute(
        "CREATE TABLE f (sid TEXT, seq INTEGER, ts INTEGER, type TEXT, data BLOB, PRIMARY KEY (sid, seq))"
    )
    rows = [("ingest", seq, seq, "output", payload) for seq in range(1, frames + 1)]
    t0 = time.perf_counter()
    base.execute("BEGIN")
    base.executemany("INSERT INTO f VALUES (?,?,?,?,?)", rows)
    base.execute("COMMIT")
    bare = time.perf_counter() - t0
    mb = frames * size / 1e6
    print(
        f"ingest                 : {frames / elapsed:9.0f} frames/s ({mb / elapsed:.0f} MB/s) "
        f"vs bare executemany {frames / bare:.0f} frames/s, ratio {bare / elapsed:.2f}; "
        f"{disk / 1e6 / mb:.2f} MB on disk per MB of output"
    )


def listing(tmp: Path, n: int = 10_000) -> None:
    store = Store(tmp / "list.db")
    store.open()
    for i in range(n):
        store.save_session(
            Session(
                id=f"s{i:06d}",
                kind="pty" if i % 3 else "k8s",
                title=f"run {i}",
                state=State.DONE if i % 5 else State.ERROR,
                created_ns=1_700_000_000_000_000_000 + i,
                meta={"command": f"make target{i % 50}", "namespace": f"ns{i % 7}"},
                tags={"team": f"t{i % 4}"},
            )
        )
    store.flush_sync(600)
    flt = SessionFilter(
        state="error", kind="k8s", meta={"namespace": "ns3"}, tags={"team": "t1"}, limit=50
    )
    samples, base = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        found = store.list_sessions(flt)
        samples.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        store.reader().execute("SELECT COUNT(*) FROM sessions").fetchone()
        base.append((time.perf_counter() - t0) * 1000)
    full = []
    for _ in range(20):
        t0 = time.perf_counter()
        store.list_sessions(SessionFilter(limit=50))
        full.append((time.perf_counter() - t0) * 1000)
    print(
        f"list 10k, filtered     : {statistics.median(samples):6.2f} ms median ({len(found)} hits; target < 50 ms); "
        f"newest 50 unfiltered {statistics.median(full):.2f} ms; count(*) {statistics.median(base):.2f} ms"
    )
    store.close()


GEN = (
    "import sys, time\n"
    "w = sys.stdout.write\n"
    "for i in range(10_000_000):\n"
    "    w(f'{time.time_ns()} ' + 'x' * 40 + '\\n')\n"
)


def crash_window(tmp: Path) -> None:
    seen = {"max": 0}
    pattern = re.compile(r"(\d{19}) x{40}")
    enough = threading.Event()
    total = [0]

    def on_notify(method: str, params: dict) -> None:  # type: ignore[type-arg]
        if method == "ktl/sessionData":
            total[0] += len(params["data"])
            stamps = pattern.findall(params["data"])
            if stamps:
                seen["max"] = max(seen["max"], int(stamps[-1]))
            if total[0] > 50_000_000:
                enough.set()

    store = tmp / "crash.db"
    client = RawClient([sys.executable, "-m", "ktl_lsp", "--store", str(store)], on_notify)
    client.initialize({"sessionData": True})
    client.request_async(
        "workspace/executeCommand",
        {"command": "ktl.run", "arguments": [{"argv": ["python3", "-u", "-c", GEN]}]},
    )
    enough.wait(120)
    killed_at = time.time_ns()
    os.kill(client.proc.pid, signal.SIGKILL)
    client.proc.wait()
    time.sleep(0.2)
    shown = seen["max"]
    db = sqlite3.connect(store)
    (sid,) = db.execute("SELECT id FROM sessions ORDER BY created_ns DESC LIMIT 1").fetchone()
    last = db.execute(
        "SELECT data FROM frames WHERE session_id=? AND type='output' ORDER BY seq DESC LIMIT 3",
        (sid,),
    ).fetchall()
    stored = max(
        int(m) for (d,) in last for m in pattern.findall(bytes(d).decode(errors="replace"))
    )
    ok = db.execute("PRAGMA integrity_check").fetchone()[0]
    window = max(0, shown - stored) / 1e6
    print(
        f"crash (kill -9 at {total[0] / 1e6:.0f} MB): store is {window:6.1f} ms behind what the editor was shown "
        f"(target <= 250 ms); newest stored line is {(killed_at - stored) / 1e6:.0f} ms before the kill; integrity {ok}"
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ktl-bench-store-"))
    print(
        f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}"
    )
    ingest(tmp)
    listing(tmp)
    crash_window(tmp)


if __name__ == "__main__":
    main()
