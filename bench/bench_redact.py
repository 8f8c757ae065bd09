"""Redaction cost on the 100 MB session (log lines with colours in 4 KB frames, a few secrets).

Rates in MB/s of output, each case over the same frames, best of ``--rounds``:

- ``copy`` / ``decode``: the baseline, the same bytes copied / decoded as UTF-8 with no redaction;
- ``old-list``: the home-grown pattern list this replaced, each frame scanned on its own;
- ``frame``: detect-secrets' plugins and ours, each frame on its own (``Redactor.scan``);
- ``stream``: the same rules over the frames as one stream (``sessions/scrub.py``: what exports,
  the gateway's pages and SSE do), each frame with 4 KB of context on either side;
- ``export-reveal`` / ``export-old-list`` / ``export``: an NDJSON export of the session from a
  real store, as is, redacted with the old list, and redacted;
- ``sse-reveal`` / ``sse``: a whole SSE tail of it from a real gateway on loopback, as is and
  redacted (``--no-export`` skips these: they write the 100 MB store first).

    .venv/bin/python bench/bench_redact.py [--mb 100] [--rounds 3] [--no-export]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ktl_lsp.sessions.model import Frame, FrameType, Session, State
from ktl_lsp.sessions.redact import Redaction, Redactor, Rule, well_known
from ktl_lsp.sessions.scrub import scrub_frames

FRAME = 4096
SECRETS = [
    b"key=AKIAIOSFODNN7EXAMPLE",
    b"token ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    b"Authorization: Bearer abcdefghijklmnop0123456789",
    b"    token: c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1Ng==",
]

#: The home-grown list before detect-secrets (name -> pattern, group, hints), for comparison.
OLD: dict[str, tuple[str, int, tuple[bytes, ...]]] = {
    "aws-access-key-id": (r"(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0, (b"akia", b"asia")),
    "aws-secret-access-key": (
        r"(?i:aws_secret_access_key|secretaccesskey)[\"']?\s*[=:]\s*[\"']?([A-Za-z0-9/+=]{40})\b",
        1,
        (b"secret",),
    ),
    "github-token": (
        r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})\b",
        0,
        (b"gh",),
    ),
    "gitlab-token": (r"glpat-[A-Za-z0-9_\-]{20,}", 0, (b"glpat-",)),
    "slack-token": (r"xox[abposr]-[A-Za-z0-9\-]{10,}", 0, (b"xox",)),
    "jwt": (r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", 0, (b"eyj",)),
    "bearer-token": (r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)", 1, (b"bearer",)),
    "kubeconfig-token": (
        r"(?:token|client-key-data|password):[ \t]*[\"']?([A-Za-z0-9\-._~+/]{16,}=*)",
        1,
        (b"token:", b"password:", b"key-data:"),
    ),
}


def old_rules() -> list[Rule]:
    return [
        Rule(n, re.compile(p.encode()), g, h, n == "kubeconfig-token")
        for n, (p, g, h) in OLD.items()
    ]


def output(mb: int, seed: int = 7) -> list[bytes]:
    """``mb`` MB of kubectl-like log lines in frames of about 4 KB; a secret every ~1 MB."""
    rng = random.Random(seed)
    words = [b"deployment", b"pod/web-7d4b9c", b"ready", b"Running", b"--namespace", b"status"]
    frames: list[bytes] = []
    buf = bytearray()
    total = mb << 20
    made = 0
    while made < total:
        line = b"\x1b[32mINFO\x1b[0m 2026-01-01T00:00:%02dZ " % rng.randrange(60)
        line += b" ".join(rng.choice(words) for _ in range(8)) + b"\r\n"
        if rng.random() < 0.0001:
            line = rng.choice(SECRETS) + b"\r\n"
        buf += line
        if len(buf) >= FRAME:
            frames.append(bytes(buf))
            made += len(buf)
            buf.clear()
    return frames


def rate(frames: list[bytes], run: Callable[[list[bytes]], object], rounds: int) -> float:
    size = sum(map(len, frames)) / (1 << 20)
    best = min(_timed(run, frames) for _ in range(rounds))
    return size / best


def _timed(run: Callable[[list[bytes]], object], frames: list[bytes]) -> float:
    t = time.perf_counter()
    run(frames)
    return time.perf_counter() - t


def as_frames(chunks: list[bytes]) -> Iterator[Frame]:
    return (Frame("s", i, i, FrameType.OUTPUT, c) for i, c in enumerate(chunks, 1))


class OldRedaction(Redaction):
    """The old list through today's pipeline (the export's cost of the list alone)."""

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(old_rules())


def store_rates(chunks: list[bytes], rounds: int) -> dict[str, float]:
    """NDJSON exports and SSE tails (a real gateway on loopback) of the session in a store."""
    from ktl_lsp.sessions.export import iter_export
    from ktl_lsp.sessions.ids import new_id
    from ktl_lsp.sessions.store import Store

    out: dict[str, float] = {}
    sid = new_id()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.db"
        store = Store(db)
        store.open()
        s = Session(id=sid, kind="pty", title="bench", created_ns=1)
        store.save_session(s)
        for i, c in enumerate(chunks, 1):
            store.append(Frame(sid, i, i, FrameType.OUTPUT, c))
        s.state, s.last_seq, s.ended_ns = State.DONE, len(chunks), len(chunks) + 1
        store.save_session(s)
        store.flush_sync(timeout=600)

        def export(redaction: Redaction | None) -> Callable[[list[bytes]], object]:
            return lambda _: sum(
                len(p) for p in iter_export(store, sid, "ndjson", redaction=redaction)
            )

        out["export-reveal"] = rate(chunks, export(None), rounds)
        out["export-old-list"] = rate(chunks, export(OldRedaction()), rounds)
        out["export"] = rate(chunks, export(Redaction.default()), rounds)
        store.close()

        def tail(reveal: bool) -> Callable[[list[bytes]], object]:
            return lambda _: asyncio.run(_sse(db, sid, reveal))

        out["sse-reveal"] = rate(chunks, tail(True), rounds)
        out["sse"] = rate(chunks, tail(False), rounds)
    return out


async def _sse(db: Path, sid: str, reveal: bool) -> int:
    """Bytes of a whole tail of the finished session (replayed from the store)."""
    import httpx

    from ktl_lsp.gateway import Gateway
    from ktl_lsp.gateway.options import GatewayOptions
    from ktl_lsp.sessions.manager import SessionManager

    manager = SessionManager.open(db)
    gateway = Gateway(manager, db, GatewayOptions())
    await gateway.start()
    got = 0
    try:
        auth = {"Authorization": f"Bearer {gateway.auth.token}"}
        async with httpx.AsyncClient(base_url=gateway.base_url, headers=auth, timeout=None) as c:
            url = f"/api/v1/mirror/sessions/{sid}/tail?reveal={int(reveal)}"
            async with c.stream("GET", url) as r:
                async for chunk in r.aiter_bytes():
                    got += len(chunk)
    finally:
        await gateway.stop()
        manager.close()
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-export", action="store_true")
    args = ap.parse_args()
    chunks = output(args.mb)
    well_known()  # compiled once per process: not part of the rates
    old = Redactor(old_rules())
    new = Redaction.default().redactor()
    rules = Redaction.default().rules
    cases: dict[str, Callable[[list[bytes]], object]] = {
        "copy": lambda fs: [bytes(bytearray(f)) for f in fs],
        "decode": lambda fs: [f.decode("utf-8", "replace") for f in fs],
        "old-list": lambda fs: [old.scan(f) for f in fs],
        "frame": lambda fs: [new.scan(f) for f in fs],
        "stream": lambda fs: sum(1 for _ in scrub_frames(as_frames(fs), rules)),
    }
    rates = {name: rate(chunks, run, args.rounds) for name, run in cases.items()}
    if not args.no_export:
        rates.update(store_rates(chunks, args.rounds))
    mb = sum(map(len, chunks)) / (1 << 20)
    print(f"{mb:.0f} MB in {len(chunks)} frames, best of {args.rounds}")
    for name, r in rates.items():
        print(f"  {name:14s} {r:8.0f} MB/s")
    if "export" in rates:
        for case in ("export", "sse"):
            print(f"  {case} redacted / as is: {rates[case] / rates[case + '-reveal']:.2f}")
        ratio = rates["export"] / rates["export-old-list"]
        print(f"  export redacted / with the old list: {ratio:.2f}")


if __name__ == "__main__":
    main()
