"""Gateway figures (issue 5), loopback only, bounded in time.

1. Fan-out: ``--clients`` SSE clients (``--procs`` processes x asyncio clients) tail one
   session that produces ``--rate`` bytes/s for ``--seconds`` s (a real PTY process). Every
   client must get every frame in order; we report the p50/p99/max delivery lag (client
   receive time - the frame's ``received_unix_nano``), the server's RSS, and what a
   deliberately stalled client (a raw socket with a small receive buffer that reads nothing
   for the whole run) gets afterwards. Baseline, same run, same clients: a bare aiohttp
   fan-out of pre-encoded frames of the same size and rate.
2. A large session (``--mb``, default 100) in headless Chromium (tests/web/ui): time to the
   first screen of /ui/s/<id> (navigation start -> screen parsed) and the time of seeks to
   random points (seekTo -> screen parsed and painted).

    .venv/bin/python bench/bench_gateway.py [--only fanout|replay] [--mb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import multiprocessing as mp
import random
import re
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, ClientTimeout, web  # noqa: E402

from ktl_lsp.gateway import Gateway  # noqa: E402
from ktl_lsp.gateway.options import GatewayOptions  # noqa: E402
from ktl_lsp.sessions.manager import RunSpec, SessionManager  # noqa: E402

TS = re.compile(rb'"received_unix_nano":"(\d+)"')


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


# clients (in other processes) ----------------------------------------------------------------
async def _client(url: str, headers: dict[str, str], deadline: float) -> dict[str, Any]:
    lags: list[float] = []
    seqs: list[int] = []
    dropped = 0
    ended = False
    timeout = ClientTimeout(total=None, sock_read=30)
    async with (
        ClientSession(timeout=timeout, read_bufsize=1 << 20) as http,
        http.get(url, headers=headers) as resp,
    ):
        buf = b""
        while not ended and time.monotonic() < deadline:
            chunk = await resp.content.readany()
            if not chunk:
                break
            now = time.time_ns()
            buf += chunk
            *events, buf = buf.split(b"\n\n")
            for ev in events:
                if ev.startswith(b"id: "):
                    eol = ev.find(b"\n")
                    seq = int(ev[4:eol])
                    if ev.startswith(b"event: frame", eol + 1):
                        m = TS.search(ev, 0, 500)
                        if m and b'"raw"' in ev[:500]:
                            lags.append((now - int(m.group(1))) / 1e6)
                        seqs.append(seq)
                    elif ev.startswith(b"event: dropped", eol + 1):
                        dropped += 1
                elif ev.startswith(b"event: end"):
                    ended = True
                    break
    in_order = all(b == a + 1 for a, b in itertools.pairwise(seqs))
    return {
        "frames": len(seqs),
        "first": seqs[0] if seqs else 0,
        "last": seqs[-1] if seqs else 0,
        "in_order": in_order,
        "dropped": dropped,
        "ended": ended,
        "lags": lags,
    }


def _client_proc(url: str, headers: dict[str, str], n: int, seconds: float, out: Any) -> None:
    async def main() -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        return list(await asyncio.gather(*(_client(url, headers, deadline) for _ in range(n))))

    try:
        out.put(asyncio.run(main()))
    except Exception as exc:  # reported by the parent
        out.put([{"error": repr(exc)}])


def _dechunk(raw: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"chunked" not in head.lower():
        return body
    out = bytearray()
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            break
        size = int(body[pos:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += body[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2
    return bytes(out)


def _stalled_proc(host: str, port: int, path: str, token: str, stall: float, out: Any) -> None:
    """Asks for the tail, reads nothing for `stall` s (16 KiB receive buffer), then drains."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect((host, port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    time.sleep(stall)
    t0 = time.monotonic()
    sock.settimeout(20)
    buf = bytearray()
    with contextlib.suppress(TimeoutError, OSError):
        while not buf.endswith(b"\r\n0\r\n\r\n") and time.monotonic() - t0 < 60:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    sock.close()
    text = _dechunk(bytes(buf))
    ids = [int(x) for x in re.findall(rb"^id: (\d+)\nevent: frame", text, re.M)]
    out.put(
        {
            "frames": len(ids),
            "in_order": all(b == a + 1 for a, b in itertools.pairwise(ids)),
            "dropped_events": text.count(b"event: dropped"),
            "ended": b"event: end" in text,
            "drain_s": round(time.monotonic() - t0, 2),
        }
    )


def run_clients(
    url: str, token: str, procs: int, per: int, seconds: float, stall_path: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[Any]]:
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    headers = {"Authorization": f"Bearer {token}"}
    ps = [
        ctx.Process(target=_client_proc, args=(url, headers, per, seconds, q)) for _ in range(procs)
    ]
    stall_q: Any = ctx.Queue()
    stalled = None
    if stall_path:
        host, port = url.split("//")[1].split("/")[0].split(":")
        stalled = ctx.Process(
            target=_stalled_proc, args=(host, int(port), stall_path, token, seconds, stall_q)
        )
    for p in ps:
        p.start()
    if stalled:
        stalled.start()
    return ps, stalled, [q, stall_q]


def collect(
    ps: list[Any], stalled: Any, queues: list[Any], timeout: float
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    results: list[dict[str, Any]] = []
    for _ in ps:
        results.extend(queues[0].get(timeout=timeout))
    st = queues[1].get(timeout=timeout) if stalled else None
    for p in [*ps, *([stalled] if stalled else [])]:
        p.join(10)
        if p.is_alive():
            p.kill()
    return results, st


PRODUCER = r"""
import os, sys, time
rate, seconds, chunk = int(sys.argv[1]), float(sys.argv[2]), 8192
line = (b"\x1b[32mINFO\x1b[0m " + b"x" * 90 + b"\r\n")
block = (line * (chunk // len(line) + 1))[:chunk]
n = int(rate * seconds / chunk)
time.sleep(3)  # the clients (other processes) connect
t0 = time.monotonic()
for i in range(n):
    target = t0 + i * chunk / rate
    d = target - time.monotonic()
    if d > 0:
        time.sleep(d)
    os.write(1, block)
"""


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="ktl-bench-gw-"))
    store = tmp / "sessions.db"
    manager = SessionManager.open(store)
    gateway = Gateway(manager, store, GatewayOptions())
    await gateway.start()
    token = gateway.auth.token or ""
    per = args.clients // args.procs
    try:
        live = manager.start(
            RunSpec(
                argv=[sys.executable, "-c", PRODUCER, str(args.rate), str(args.seconds)],
                command="producer",
            )
        )
        path = f"/api/v1/mirror/sessions/{live.id}/tail?heartbeat_ms=5000"
        url = gateway.base_url + path
        rss0 = rss_mb()
        cpu0, wall0 = time.process_time(), time.monotonic()
        ps, stalled, qs = await asyncio.to_thread(
            run_clients, url, token, args.procs, per, args.seconds + 30, path
        )
        peak = rss0
        while not live.done.done():
            await asyncio.sleep(0.2)
            peak = max(peak, rss_mb())
        session = await live.done
        cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        results, st = await asyncio.to_thread(collect, ps, stalled, qs, args.seconds + 60)
        errors = [r["error"] for r in results if "error" in r]
        good = [r for r in results if "error" not in r]
        lags = [x for r in good for x in r["lags"]]
        complete = [
            r for r in good if r["first"] == 1 and r["last"] == session.last_seq and r["in_order"]
        ]
        out["ours"] = {
            "clients": len(results),
            "errors": errors[:3],
            "frames_per_client": statistics.median([r["frames"] for r in good]) if good else 0,
            "session_frames": session.last_seq,
            "bytes": session.bytes_out,
            "clients_complete_in_order": len(complete),
            "clients_with_dropped": sum(1 for r in good if r["dropped"]),
            "per_client_p99_lag_ms": sorted(round(pct(r["lags"], 99)) for r in good),
            "lag_ms_p50": round(pct(lags, 50), 1),
            "lag_ms_p99": round(pct(lags, 99), 1),
            "lag_ms_max": round(max(lags), 1) if lags else None,
            "server_rss_mb_start": round(rss0, 1),
            "server_rss_mb_peak": round(peak, 1),
            "server_cpu_share": round(cpu, 2),
            "stalled_client": st,
        }
    finally:
        await gateway.stop()
        manager.close()
    out["baseline"] = await bare_fanout(args, per)
    return out


async def bare_fanout(args: argparse.Namespace, per: int) -> dict[str, Any]:
    """A bare aiohttp SSE fan-out: each frame encoded once, written to every client."""
    clients: list[asyncio.Queue[bytes | None]] = []
    started = asyncio.Event()

    async def tail(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        clients.append(q)
        if len(clients) >= args.clients:
            started.set()
        while (item := await q.get()) is not None:
            await resp.write(item)
        return resp

    app = web.Application()
    app.router.add_get("/tail", tail)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/tail"
    ps, _, qs = await asyncio.to_thread(
        run_clients, url, "", args.procs, per, args.seconds + 30, None
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(started.wait(), 30)
    chunk = 8192
    block = base64.b64encode(b"x" * chunk).decode()
    n = int(args.rate * args.seconds / chunk)
    t0 = time.monotonic()
    rss0 = peak = rss_mb()
    for i in range(1, n + 1):
        delay = t0 + i * chunk / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = (
            f'id: {i}\nevent: frame\ndata: {{"sequence":"{i}","received_unix_nano":'
            f'"{time.time_ns()}","raw":"{block}"}}\n\n'
        ).encode()
        for q in clients:
            q.put_nowait(data)
        if i % 50 == 0:
            peak = max(peak, rss_mb())
    end = b'event: end\ndata: {"state":"done"}\n\n'
    for q in clients:
        q.put_nowait(end)
        q.put_nowait(None)
    results, _ = await asyncio.to_thread(collect, ps, None, qs, args.seconds + 60)
    await runner.cleanup()
    good = [r for r in results if "error" not in r]
    lags = [x for r in good for x in r["lags"]]
    return {
        "clients": len(results),
        "clients_complete_in_order": sum(
            1 for r in good if r["first"] == 1 and r["last"] == n and r["in_order"]
        ),
        "frames_per_client": n,
        "lag_ms_p50": round(pct(lags, 50), 1),
        "lag_ms_p99": round(pct(lags, 99), 1),
        "lag_ms_max": round(max(lags), 1) if lags else None,
        "server_rss_mb_start": round(rss0, 1),
        "server_rss_mb_peak": round(peak, 1),
    }


# a large session in the browser -------------------------------------------------------------
def make_large_session(store_path: Path, mb: int) -> str:
    """A synthetic session: colored log lines, \\r progress bars, and every ~10 MB a
    full-screen program (alternate screen, cursor addressing) that redraws for a while."""
    from ktl_lsp.sessions import ids
    from ktl_lsp.sessions.model import Frame, FrameType, Session, State, event_data
    from ktl_lsp.sessions.store import Store

    store = Store(store_path)
    store.open()
    sid = ids.new_id()
    t0 = time.time_ns() - 3600 * 10**9
    session = Session(sid, "pty", f"synthetic {mb} MB", created_ns=t0, meta={"command": "bench"})
    rng = random.Random(5)
    seq = 0
    ts = t0
    total = 0
    target = mb * 1_000_000

    store.save_session(session)  # before its frames (foreign key)

    def emit(ftype: FrameType, data: bytes) -> None:
        nonlocal seq, ts
        seq += 1
        ts += rng.randint(1, 60) * 1_000_000
        store.append(Frame(sid, seq, ts, ftype, data))

    emit(FrameType.EVENT, event_data(state="running"))
    emit(FrameType.RESIZE, json.dumps({"cols": 120, "rows": 30}).encode())
    line_no = 0
    next_fullscreen = 10_000_000
    while total < target:
        if total >= next_fullscreen:
            # a top-like program: 300 redraws (~0.4 MB), one of them 1500 (~2 MB, more than
            # the seek budget: those seeks are approximate)
            redraws = 1500 if next_fullscreen == 50_000_000 else 300
            next_fullscreen += 10_000_000
            emit(FrameType.OUTPUT, b"\x1b[?1049h\x1b[H\x1b[2J")
            for _ in range(redraws):
                parts = [b"\x1b[H"]
                for row in range(1, 29):
                    parts.append(
                        b"\x1b[%d;1H\x1b[7m %3d \x1b[0m cpu %5.1f%% pid %d\x1b[K"
                        % (row, row, rng.random() * 100, rng.randint(1, 99999))
                    )
                data = b"".join(parts)
                emit(FrameType.OUTPUT, data)
                total += len(data)
            emit(FrameType.OUTPUT, b"\x1b[?1049l")
            continue
        parts = []
        size = 0
        while size < 8000:
            line_no += 1
            if line_no % 500 == 0:
                bar = b"".join(
                    b"\rprogress [%-40s] %3d%%" % (b"#" * (p * 40 // 100), p)
                    for p in range(0, 101, 5)
                )
                piece = bar + b"\r\n"
            else:
                piece = (
                    b"2026-11-26T10:%02d:%02d \x1b[32mINFO\x1b[0m line %d \x1b[2mcomponent=%s\x1b[0m %s\r\n"
                    % (
                        line_no // 60 % 60,
                        line_no % 60,
                        line_no,
                        b"gateway",
                        b"y" * rng.randint(10, 60),
                    )
                )
            parts.append(piece)
            size += len(piece)
        data = b"".join(parts)
        emit(FrameType.OUTPUT, data)
        total += len(data)
    session.state = State.DONE
    session.exit_code = 0
    session.ended_ns = ts
    session.last_seq = seq
    session.bytes_out = total
    store.save_session(session)
    store.flush_sync(600)
    store.close()
    return sid


async def replay(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.web.ui_driver import Browser, missing

    why = missing()
    if why:
        return {"skipped": why}
    tmp = Path(tempfile.mkdtemp(prefix="ktl-bench-replay-"))
    store = tmp / "sessions.db"
    t0 = time.perf_counter()
    sid = await asyncio.to_thread(make_large_session, store, args.mb)
    made = time.perf_counter() - t0
    manager = SessionManager.open(store)
    gateway = Gateway(manager, store, GatewayOptions())
    await gateway.start()
    browser = await Browser.start()
    out: dict[str, Any] = {
        "mb": args.mb,
        "make_s": round(made, 1),
        "store_mb": round(store.stat().st_size / 1e6, 1),
    }
    try:
        # Sign in on the list page first (the browser's own cold start is not the page's).
        code = gateway.auth.mint_code()
        await browser.call("goto", url=f"{gateway.base_url}/ui/login?code={code}&next=/ui/")
        await browser.wait("document.body.dataset.rows === '1'", timeout=30)
        opens = []
        for i in range(args.opens):
            await browser.call("goto", url=f"{gateway.base_url}/ui/s/{sid}")
            await browser.wait(
                "window.ktlPlayer && ktlPlayer.root.dataset.ready === '1'", timeout=30
            )
            ready = float(await browser.eval("+ktlPlayer.root.dataset.readyMs"))
            opens.append(ready)
            if i == 0:
                shot = tmp / "large-first-screen.png"
                await browser.call("screenshot", path=str(shot))
                out["screenshot"] = str(shot)
        out["open_ms"] = {
            "first (server index cold)": round(opens[0]),
            "median of the rest": round(statistics.median(opens[1:])) if len(opens) > 1 else None,
            "max": round(max(opens)),
        }
        duration = float(await browser.eval("ktlPlayer.duration"))
        rng = random.Random(7)
        times = []
        reasons: dict[str, list[float]] = {}
        for _ in range(args.seeks):
            t = rng.random() * duration
            ms = await browser.eval(
                "(async () => { const t0 = performance.now(); await ktlPlayer.seekTo("
                + repr(t)
                + "); await new Promise(r => requestAnimationFrame(() => r()));"
                " return performance.now() - t0; })()"
            )
            times.append(float(ms))
            reason = await browser.eval(
                "ktlPlayer.lastSeek ? ktlPlayer.lastSeek.reason : 'forward'"
            )
            reasons.setdefault(reason, []).append(float(ms))
        out["seek_ms"] = {
            "n": len(times),
            "p50": round(pct(times, 50), 1),
            "p90": round(pct(times, 90), 1),
            "max": round(max(times), 1),
        }
        out["seek_ms_by_start_reason"] = {
            k: {"n": len(v), "p50": round(pct(v, 50), 1), "max": round(max(v), 1)}
            for k, v in reasons.items()
        }
        # Play at 8x from the middle for 2 s: frames are paged in ahead of the clock.
        await browser.eval(f"ktlPlayer.seekTo({duration / 2!r})")
        seq0 = int(await browser.eval("+ktlPlayer.root.dataset.seq"))
        await browser.eval("ktlPlayer.setSpeed(8), ktlPlayer.play()")
        stalls = 0
        for _ in range(20):
            await asyncio.sleep(0.1)
            stalls += bool(await browser.eval("!!ktlPlayer.stalled"))
        await browser.eval("ktlPlayer.pause()")
        seq1 = int(await browser.eval("+ktlPlayer.root.dataset.seq"))
        mb = await browser.eval(
            "ktlPlayer.win.slice(0, ktlPlayer.wi).reduce((n, f) => n + f[3].length, 0) * 0.75 / 1e6"
        )
        out["play_8x_2s"] = {
            "frames_written": seq1 - seq0,
            "samples_waiting_for_data": f"{stalls}/20",
            "window_written_mb": round(float(mb), 2),
        }
        shot = tmp / "large-after-seeks.png"
        await browser.call("screenshot", path=str(shot))
        out["errors"] = await browser.call("errors")
    finally:
        await browser.close()
        await gateway.stop()
        manager.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", choices=["fanout", "replay"])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rate", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--seeks", type=int, default=50)
    ap.add_argument("--opens", type=int, default=3)
    args = ap.parse_args()
    report: dict[str, Any] = {}
    if args.only in (None, "fanout"):
        report["fanout"] = asyncio.run(fanout(args))
        print(json.dumps({"fanout": report["fanout"]}, indent=2), flush=True)
    if args.only in (None, "replay"):
        report["replay"] = asyncio.run(replay(args))
        print(json.dumps({"replay": report["replay"]}, indent=2), flush=True)


if __name__ == "__main__":
    main()
