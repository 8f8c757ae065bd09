"""Gateway figures (issue 5), loopback only, bounded in time.

1. Fan-out: ``--clients`` SSE clients (``--procs`` processes x asyncio clients) tail one
   session that produces ``--rate`` bytes/s for ``--seconds`` s (a real PTY process). The
   stream starts once every client has reported in (its first bytes of the SSE response have
   arrived): client processes take seconds to start on a busy machine, and a client that
   connects late gets the frames before it as backfill from the store, which is not delivery
   lag. Every client must get every frame in order; we report the p50/p99/max delivery lag of
   live frames (client receive time - the frame's ``received_unix_nano``), backfilled frames
   (made before the client connected) apart, the server's RSS, and what a deliberately stalled
   client (a raw socket with a small receive buffer that reads nothing until the stream has
   ended) gets afterwards. Baseline, same run, same clients: a bare aiohttp fan-out of
   pre-encoded frames of the same size and rate. The goal is checked at the end (``goal``):
   live p99 < 100 ms, every client every frame in order, the stalled client costs the others
   nothing (they all still meet the goal) and gets every frame once it reads.
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
async def _client(url: str, headers: dict[str, str], deadline: float, ready: Any) -> dict[str, Any]:
    lags: list[float] = []
    backfill_lags: list[float] = []
    seqs: list[int] = []
    backfilled = 0
    dropped = 0
    ended = False
    connected = 0
    timeout = ClientTimeout(total=None, sock_read=60)
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
            if not connected:
                connected = now
                ready.put(1)  # the stream may start: this client is subscribed
            buf += chunk
            *events, buf = buf.split(b"\n\n")
            for ev in events:
                if ev.startswith(b"id: "):
                    eol = ev.find(b"\n")
                    seq = int(ev[4:eol])
                    if ev.startswith(b"event: frame", eol + 1):
                        m = TS.search(ev, 0, 500)
                        if m and b'"raw"' in ev[:500]:  # terminal output
                            lag = (now - int(m.group(1))) / 1e6
                            # Made before this client connected: it came from the store.
                            early = int(m.group(1)) < connected
                            backfilled += early
                            (backfill_lags if early else lags).append(lag)
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
        "backfilled": backfilled,
        "backfill_lags": backfill_lags,
    }


def _client_proc(
    url: str, headers: dict[str, str], n: int, seconds: float, out: Any, ready: Any
) -> None:
    async def main() -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        return list(
            await asyncio.gather(*(_client(url, headers, deadline, ready) for _ in range(n)))
        )

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


def _stalled_proc(
    host: str, port: int, path: str, token: str, stall: float, out: Any, ready: Any, go_on: Any
) -> None:
    """Asks for the tail, reads its first bytes and reports in, then reads nothing (16 KiB
    receive buffer) until ``go_on`` is set (the stream has ended) or ``stall`` s, then drains."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect((host, port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    buf = bytearray(sock.recv(1024))
    ready.put(1)
    go_on.wait(stall)
    t0 = time.monotonic()
    sock.settimeout(20)
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


class Clients:
    """The client processes of one fan-out, and how they report back."""

    def __init__(
        self, url: str, token: str, procs: int, per: int, seconds: float, stall_path: str | None
    ) -> None:
        ctx = mp.get_context("spawn")
        self.results: Any = ctx.Queue()
        self.stall_results: Any = ctx.Queue()
        #: One item per client once the first bytes of its response have arrived.
        self.ready: Any = ctx.Queue()
        #: Set when the stream has ended: the stalled client starts reading.
        self.go_on: Any = ctx.Event()
        self.expected = procs * per + (1 if stall_path else 0)
        headers = {"Authorization": f"Bearer {token}"}
        self.ps = [
            ctx.Process(
                target=_client_proc, args=(url, headers, per, seconds, self.results, self.ready)
            )
            for _ in range(procs)
        ]
        self.stalled = None
        if stall_path:
            host, port = url.split("//")[1].split("/")[0].split(":")
            self.stalled = ctx.Process(
                target=_stalled_proc,
                args=(
                    host,
                    int(port),
                    stall_path,
                    token,
                    seconds,
                    self.stall_results,
                    self.ready,
                    self.go_on,
                ),
            )
        self.spawned = time.monotonic()
        for p in [*self.ps, *([self.stalled] if self.stalled else [])]:
            p.start()

    def wait_connected(self, timeout: float = 300) -> float:
        """Blocks until every client has reported in; the seconds that took."""
        for _ in range(self.expected):
            self.ready.get(timeout=timeout)
        return time.monotonic() - self.spawned

    def collect(self, timeout: float) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        self.go_on.set()
        results: list[dict[str, Any]] = []
        for _ in self.ps:
            results.extend(self.results.get(timeout=timeout))
        st = self.stall_results.get(timeout=timeout) if self.stalled else None
        for p in [*self.ps, *([self.stalled] if self.stalled else [])]:
            p.join(10)
            if p.is_alive():
                p.kill()
        return results, st


PRODUCER = r"""
import os, sys, time
rate, seconds, go, chunk = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], 8192
line = (b"\x1b[32mINFO\x1b[0m " + b"x" * 90 + b"\r\n")
block = (line * (chunk // len(line) + 1))[:chunk]
n = int(rate * seconds / chunk)
while not os.path.exists(go):  # made once every client has connected
    time.sleep(0.002)
t0 = time.monotonic()
for i in range(n):
    target = t0 + i * chunk / rate
    d = target - time.monotonic()
    if d > 0:
        time.sleep(d)
    os.write(1, block)
"""


def lag_figures(good: list[dict[str, Any]]) -> dict[str, Any]:
    """Delivery lag of live frames; backfilled frames (made before their client connected)
    counted and timed apart."""
    lags = [x for r in good for x in r["lags"]]
    late = [x for r in good for x in r["backfill_lags"]]
    return {
        "lag_ms_p50": round(pct(lags, 50), 1),
        "lag_ms_p99": round(pct(lags, 99), 1),
        "lag_ms_max": round(max(lags), 1) if lags else None,
        "live_frames": len(lags),
        "backfilled_frames": sum(r["backfilled"] for r in good),
        "backfilled_lag_ms_p99": round(pct(late, 99), 1) if late else None,
    }


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="ktl-bench-gw-"))
    store = tmp / "sessions.db"
    go = tmp / "go"
    manager = SessionManager.open(store)
    gateway = Gateway(manager, store, GatewayOptions())
    await gateway.start()
    token = gateway.auth.token or ""
    per = args.clients // args.procs
    try:
        live = manager.start(
            RunSpec(
                argv=[sys.executable, "-c", PRODUCER, str(args.rate), str(args.seconds), str(go)],
                command="producer",
            )
        )
        path = f"/api/v1/mirror/sessions/{live.id}/tail?heartbeat_ms=5000"
        url = gateway.base_url + path
        clients = await asyncio.to_thread(
            Clients, url, token, args.procs, per, args.seconds + 120, path
        )
        connect_s = await asyncio.to_thread(clients.wait_connected)
        rss0 = rss_mb()
        cpu0, wall0 = time.process_time(), time.monotonic()
        go.touch()
        peak = rss0
        while not live.done.done():
            await asyncio.sleep(0.2)
            peak = max(peak, rss_mb())
        session = await live.done
        cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        results, st = await asyncio.to_thread(clients.collect, args.seconds + 60)
        errors = [r["error"] for r in results if "error" in r]
        good = [r for r in results if "error" not in r]
        complete = [
            r for r in good if r["first"] == 1 and r["last"] == session.last_seq and r["in_order"]
        ]
        out["ours"] = {
            "clients": len(results),
            "clients_connected_after_s": round(connect_s, 1),
            "errors": errors[:3],
            "frames_per_client": statistics.median([r["frames"] for r in good]) if good else 0,
            "session_frames": session.last_seq,
            "bytes": session.bytes_out,
            "clients_complete_in_order": len(complete),
            "clients_with_dropped": sum(1 for r in good if r["dropped"]),
            "per_client_p99_lag_ms": sorted(round(pct(r["lags"], 99)) for r in good),
            **lag_figures(good),
            "server_rss_mb_start": round(rss0, 1),
            "server_rss_mb_peak": round(peak, 1),
            "server_cpu_share": round(cpu, 2),
            "stalled_client": st,
        }
    finally:
        await gateway.stop()
        manager.close()
    out["baseline"] = await bare_fanout(args, per)
    out["goal"] = goal(out["ours"], args.clients)
    return out


#: The regression guard: live frames reach every client within this (p99).
GOAL_P99_MS = 100.0


def goal(ours: dict[str, Any], clients: int) -> dict[str, Any]:
    """The fan-out goal, each part checked: a ``false`` is a regression."""
    st = ours["stalled_client"] or {}
    checks = {
        f"live p99 < {GOAL_P99_MS:.0f} ms": ours["lag_ms_p99"] < GOAL_P99_MS,
        "every client every frame in order": ours["clients_complete_in_order"] == clients
        and not ours["errors"],
        # The others met the goal with it there; and it got everything once it read.
        "a stalled client costs the others nothing": ours["lag_ms_p99"] < GOAL_P99_MS
        and ours["clients_complete_in_order"] == clients
        and st.get("frames") == ours["session_frames"]
        and bool(st.get("in_order"))
        and bool(st.get("ended")),
    }
    return {**checks, "met": all(checks.values())}


async def bare_fanout(args: argparse.Namespace, per: int) -> dict[str, Any]:
    """A bare aiohttp SSE fan-out: each frame encoded once, written to every client."""
    queues: list[asyncio.Queue[bytes | None]] = []

    async def tail(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        queues.append(q)
        await resp.write(b"retry: 1000\n\n")  # as ours does: the client's first bytes
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
    clients = await asyncio.to_thread(Clients, url, "", args.procs, per, args.seconds + 120, None)
    connect_s = await asyncio.to_thread(clients.wait_connected)
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
        for q in queues:
            q.put_nowait(data)
        if i % 50 == 0:
            peak = max(peak, rss_mb())
    end = b'event: end\ndata: {"state":"done"}\n\n'
    for q in queues:
        q.put_nowait(end)
        q.put_nowait(None)
    results, _ = await asyncio.to_thread(clients.collect, args.seconds + 60)
    await runner.cleanup()
    good = [r for r in results if "error" not in r]
    return {
        "clients": len(results),
        "clients_connected_after_s": round(connect_s, 1),
        "clients_complete_in_order": sum(
            1 for r in good if r["first"] == 1 and r["last"] == n and r["in_order"]
        ),
        "frames_per_client": n,
        **lag_figures(good),
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
        report["fanout"] = f = asyncio.run(fanout(args))
        print(json.dumps({"fanout": f}, indent=2), flush=True)
        ours, bare = f["ours"], f["baseline"]
        print(
            f"fan-out {args.clients} clients x {args.rate / 1e6:g} MB/s: live lag p99 "
            f"{ours['lag_ms_p99']} ms (bare aiohttp {bare['lag_ms_p99']} ms), p50 "
            f"{ours['lag_ms_p50']} ms (bare {bare['lag_ms_p50']} ms); backfilled frames "
            f"{ours['backfilled_frames']} (bare {bare['backfilled_frames']}); "
            f"goal {'met' if f['goal']['met'] else 'NOT met'}: "
            + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in f["goal"].items() if k != "met"),
            flush=True,
        )
    if args.only in (None, "replay"):
        report["replay"] = asyncio.run(replay(args))
        print(json.dumps({"replay": report["replay"]}, indent=2), flush=True)


if __name__ == "__main__":
    main()
