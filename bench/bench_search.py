"""Search figures (sessions/search.py), each against a baseline measured in the same run.

1. Indexing: 100 MB of terminal output (log lines, colours, progress bars, in 4 KB frames)
   written through the store with the index on and off, until it is all committed (and, on,
   indexed: a burst is indexed once the writer is quiet); the indexing rate is the output size
   over the extra time the writer took (target >= 30 MB/s).
2. Recording: ktl.run throughput of bench_sessions (100 MB of `yes` lines through a real
   server) with KTL_LSP_SEARCH_INDEX=1 and =0, interleaved rounds (target: the ratio to a bare
   PTY stays >= 0.6, as bench_sessions asks).
3. Query: over --gb GB of indexed output (default 1; --gb 0.1 for a quick run), the median
   and worst time of `store.search` for a rare word, a common word, a phrase and a prefix, 50
   matches at most (target <= 100 ms).
4. Size: the index's pages (dbstat) over the output's bytes (target <= 0.5).

    .venv/bin/python bench/bench_search.py [--mb 100] [--gb 1] [--skip recording]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ktl_lsp.sessions.model import Frame, FrameType, Session, State
from ktl_lsp.sessions.search import Query, index_bytes
from ktl_lsp.sessions.store import Store

FRAME = 4096
SESSION_MB = 10


def _vocabulary(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(n)]


def output(rng: random.Random, nbytes: int, words: list[str]) -> Iterator[bytes]:
    """Terminal output: timestamped log lines with ids and numbers, some in colour, now and
    then a progress bar redrawn with \\r; in frames of about 4 KB."""
    buf = bytearray()
    made = 0
    t = 1_700_000_000
    while made < nbytes:
        t += rng.randint(0, 3)
        level = rng.choice(("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"))
        text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 12)))
        pod = f"{rng.choice(words)}-{rng.randrange(16**5):05x}"
        line = f"{t} {level} pod/{pod} {text} took={rng.randint(1, 999)}ms"
        if level == "ERROR":
            line = f"\x1b[31m{line}\x1b[0m"
        if rng.random() < 0.01:
            line = "".join(f"\rpulling {p}%" for p in range(0, 101, 10)) + "\r\n" + line
        buf += line.encode() + b"\r\n"
        while len(buf) >= FRAME:
            made += FRAME
            yield bytes(buf[:FRAME])
            del buf[:FRAME]
    if buf:
        yield bytes(buf)


def sessions_of(total: int, seed: int, words: list[str]) -> Iterator[list[bytes]]:
    """``total`` bytes of output as the frames of sessions of SESSION_MB each."""
    rng = random.Random(seed)
    made = 0
    while made < total:
        size = min(SESSION_MB * 1_000_000, total - made)
        frames = list(output(rng, size, words))
        made += sum(len(f) for f in frames)
        yield frames


def fill(store: Store, sessions: Iterator[list[bytes]], seed: int) -> int:
    """Writes each session's frames through the store; returns the output bytes written."""
    written = 0
    for n, frames in enumerate(sessions):
        s = Session(id=f"bench{seed:03d}{n:08d}", kind="pty", title="bench", state=State.RUNNING)
        store.save_session(s)
        for seq, data in enumerate(frames, 1):
            store.append(Frame(s.id, seq, time.time_ns(), FrameType.OUTPUT, data))
            written += len(data)
            while store.pending_bytes > 64 << 20:  # as the manager's high water does
                store.flush_sync()
        s.state, s.last_seq = State.DONE, len(frames)
        store.save_session(s)
    store.flush_sync(600)
    if store.indexer is not None:  # until what the writer put off is indexed too
        store.call(lambda conn: None).result(3600)
    return written


def indexing(tmp: Path, mb: int, words: list[str]) -> None:
    times: dict[bool, float] = {}
    cpus: dict[bool, float] = {}
    made = list(sessions_of(mb * 1_000_000, 1, words))  # generated before the clock starts
    for on in (False, True, False, True):
        path = tmp / f"index-{on}.db"
        store = Store(path, index_output=on)
        store.open()
        t0, c0 = time.perf_counter(), time.process_time()
        written = fill(store, iter(made), 1)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        store.close()
        times[on] = min(times.get(on, elapsed), elapsed)
        cpus[on] = min(cpus.get(on, cpu), cpu)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    extra = max(1e-9, times[True] - times[False])
    extra_cpu = max(1e-9, cpus[True] - cpus[False])
    print(
        f"store ingest, index off  : {written / times[False] / 1e6:7.1f} MB/s ({mb} MB, best of 2)"
    )
    print(f"store ingest, index on   : {written / times[True] / 1e6:7.1f} MB/s")
    print(
        f"indexing rate            : {written / extra / 1e6:7.1f} MB/s "
        f"(output over the writer's extra time; target >= 30 MB/s)"
    )
    # The process's CPU (writer and feeder): steadier than the wall clock on a busy machine.
    print(
        f"indexing rate, CPU       : {written / extra_cpu / 1e6:7.1f} MB/s "
        f"(output over the extra CPU time, {extra_cpu:.2f} s)"
    )


def recording(tmp: Path, mb: int, rounds: int) -> None:
    import bench_sessions

    lines = bench_sessions.lines_file(mb, tmp)
    rates: dict[str, list[float]] = {"1": [], "0": []}
    ratios: dict[str, list[float]] = {"1": [], "0": []}
    cpu: dict[str, list[float]] = {"1": [], "0": []}
    for r in range(rounds):
        for flag in ("1", "0"):
            os.environ["KTL_LSP_SEARCH_INDEX"] = flag
            raw_s, raw_bytes = bench_sessions.raw_pty(lines)
            db = tmp / f"rec{r}{flag}.db"
            ktl_s, _, stored, server_cpu, _ = bench_sessions.through_ktl(lines, db)
            assert stored == raw_bytes, f"store lost bytes: {stored} != {raw_bytes}"
            rates[flag].append(stored / ktl_s / 1e6)
            ratios[flag].append(rates[flag][-1] / (raw_bytes / raw_s / 1e6))
            cpu[flag].append(server_cpu / (stored / 1e6) * 1000)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.environ.pop("KTL_LSP_SEARCH_INDEX", None)
    for flag, label in (("1", "on "), ("0", "off")):
        print(
            f"ktl.run, index {label}       : {statistics.median(rates[flag]):7.1f} MB/s median of "
            f"{rounds}, ratio to raw pty {statistics.median(ratios[flag]):.2f} "
            f"(rounds {', '.join(f'{x:.2f}' for x in ratios[flag])}; target >= 0.6), "
            f"server {statistics.median(cpu[flag]):.1f} ms CPU/MB while streaming"
        )


def querying(tmp: Path, gb: float, words: list[str]) -> None:
    path = tmp / "query.db"
    store = Store(path, index_output=True)
    store.open()
    t0 = time.perf_counter()
    written = fill(store, sessions_of(int(gb * 1e9), 2, words), 2)
    built = time.perf_counter() - t0
    store.checkpoint()
    rng = random.Random(3)
    conn = store.reader()
    # A word of the vocabulary (every word is common at this size), a made-up rare one
    # planted once, a phrase and a prefix.
    rare = "zqxjkrare"
    sid = "bench00299999999"
    store.save_session(Session(id=sid, kind="pty", title="rare", state=State.DONE))
    store.append(Frame(sid, 1, time.time_ns(), FrameType.OUTPUT, f"found {rare} here\r\n".encode()))
    store.flush_sync()
    queries = {
        "rare word": rare,
        "common word": rng.choice(words),
        "phrase": f'"{rng.choice(words)} {rng.choice(words)}"',
        "prefix": rng.choice(words)[:3] + "*",
        "two words": f"ERROR {rng.choice(words)}",
    }
    for label, text in queries.items():
        times = []
        found = 0
        for _ in range(7):
            t = time.perf_counter()
            found = len(store.search(Query.parse(text), 50))
            times.append((time.perf_counter() - t) * 1000)
        print(
            f"query {label:12}       : {statistics.median(times):7.1f} ms median, "
            f"{max(times):.1f} ms worst, {found} matches (over {written / 1e9:.2f} GB; "
            "target <= 100 ms)"
        )
    size = index_bytes(conn)
    print(
        f"index size               : {size / 1e6:7.1f} MB for {written / 1e6:.0f} MB of output "
        f"= {size / written:.2f}x (target <= 0.5); store file {store.file_size() / 1e6:.0f} MB; "
        f"built at {written / built / 1e6:.1f} MB/s"
    )
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100, help="output indexed and recorded (MB)")
    ap.add_argument("--gb", type=float, default=1.0, help="output searched (GB)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], choices=["indexing", "recording", "query"])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ktl-bench-search-"))
    os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
    words = _vocabulary(random.Random(0), 5000)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    try:
        if "indexing" not in args.skip:
            indexing(tmp, args.mb, words)
        if "recording" not in args.skip:
            recording(tmp, args.mb, args.rounds)
        if "query" not in args.skip:
            querying(tmp, args.gb, words)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
