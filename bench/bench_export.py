"""Export figures: 1,000,000 frames to NDJSON and to asciicast, frames/s and peak RSS.

Baselines from the same run and the same store:
- ``read``: a bare ``for f in store.iter_frames(id): pass`` (the floor for any exporter);
- ``dumps-list``: ``json.dumps`` of the same frames built as one in-memory list (what a
  non-streaming exporter costs in memory).

Each case runs in a fresh process so its peak RSS (ru_maxrss) is its own ("start" is the
process after imports and opening the store); "flat" means the peak at N frames is the same as
at N/10 frames (exporters stream; the list baseline grows).

    .venv/bin/python bench/bench_export.py [--frames 1000000] [--html]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ktl_lsp.sessions.model import Frame, FrameType, Session, State, event_data
from ktl_lsp.sessions.store import Store

CASES = ("read", "ndjson", "asciicast", "dumps-list")
LINE = b"\x1b[32mINFO\x1b[0m 2026-01-01T00:00:00Z pod/web-7d4b9c-x2x9z ready " + b"x" * 20 + b"\r\n"


def build(store: Store, session_id: str, frames: int) -> None:
    t0 = 1_750_000_000_000_000_000
    s = Session(id=session_id, kind="pty", title="bench", created_ns=t0)
    store.save_session(s)
    store.append(Frame(session_id, 1, t0, FrameType.EVENT, event_data(state="running")))
    store.append(Frame(session_id, 2, t0 + 1, FrameType.RESIZE, event_data(cols=120, rows=40)))
    for seq in range(3, frames + 1):
        if seq % 10_000 == 0:
            store.append(
                Frame(
                    session_id,
                    seq,
                    t0 + seq * 1000,
                    FrameType.RESIZE,
                    event_data(cols=120, rows=40),
                )
            )
        else:
            store.append(Frame(session_id, seq, t0 + seq * 1000, FrameType.OUTPUT, LINE))
        if seq % 100_000 == 0:
            store.flush_sync(timeout=600)
    s.state, s.exit_code, s.ended_ns, s.last_seq = State.DONE, 0, t0 + frames * 1000 + 1, frames
    store.save_session(s)
    store.flush_sync(timeout=600)


def child(case: str, db: Path, session_id: str, out: Path) -> None:
    from ktl_lsp.sessions.export import export_session

    store = Store(db)
    store.open()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = 0
    t = time.perf_counter()
    if case == "read":
        for _ in store.iter_frames(session_id):
            n += 1
    elif case == "dumps-list":
        rows = [
            {
                "sequence": str(f.seq),
                "received_unix_nano": str(f.ts_ns),
                "raw": base64.b64encode(f.data).decode(),
            }
            for f in store.iter_frames(session_id)
        ]
        n = len(rows)
        out.write_text(json.dumps(rows))
    else:
        with out.open("wb") as fh:
            export_session(store, session_id, case, fh)
        n = store.get_session(session_id).last_seq  # type: ignore[union-attr]
    elapsed = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = out.stat().st_size if out.exists() else 0
    store.close()
    print(json.dumps({"frames": n, "s": elapsed, "rss0_kb": rss0, "peak_kb": peak, "bytes": size}))


def run_case(case: str, db: Path, session_id: str, tmp: Path) -> dict[str, float]:
    out = tmp / f"{session_id}.{case}.out"
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            case,
            "--db",
            str(db),
            "--session",
            session_id,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out.unlink(missing_ok=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--html", action="store_true", help="also time the HTML export")
    ap.add_argument("--child")
    ap.add_argument("--db")
    ap.add_argument("--session")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.db), args.session, Path(args.out))
        return
    cases = (*CASES, "html") if args.html else CASES
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        db = tmp / "bench.db"
        store = Store(db)
        store.open()
        small = max(1000, args.frames // 10)
        t = time.perf_counter()
        build(store, "big", args.frames)
        build(store, "small", small)
        print(
            f"setup: {args.frames + small:,} frames written in {time.perf_counter() - t:.1f} s "
            f"(store {db.stat().st_size / 1e6:.0f} MB)"
        )
        store.close()
        print(
            f"{'case':<12}{'frames':>11}{'seconds':>9}{'frames/s':>12}{'out MB':>9}"
            f"{'peak RSS MB':>13}{'at N/10':>9}"
        )
        for case in cases:
            big = run_case(case, db, "big", tmp)
            little = run_case(case, db, "small", tmp)
            print(
                f"{case:<12}{big['frames']:>11,}{big['s']:>9.2f}{big['frames'] / big['s']:>12,.0f}"
                f"{big['bytes'] / 1e6:>9.1f}{big['peak_kb'] / 1024:>13.1f}{little['peak_kb'] / 1024:>9.1f}"
                f"{big['rss0_kb'] / 1024:>7.1f}"
            )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
