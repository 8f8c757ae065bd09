"""Memory after large editor buffers are opened and closed, against a bare server in the same run.

Ten different one-line flow mappings of 7.7 MB (``{a0: 0, a1: 1, ...}``: cheap text, about
340 MB of nodes and marks once parsed) are opened one after another in one server process,
each checked (its diagnostics published) and closed. Printed: the server's RSS bare (started,
initialized, nothing opened), with the checkers loaded (one small file opened and closed), at
its peak (taken while each buffer is open) and after the closes, with the ratio after/bare;
and what ``ktl.server.stats`` says the parses hold (estimated bytes, cached and open).

    .venv/bin/python bench/bench_buffers.py [--buffers 10] [--mb 7.7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lspclient import RawClient

MB = 1024 * 1024
SMALL = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: small}\ndata: {k: v}\n"


def flow_mapping(size: int, tag: str) -> str:
    """One line ``{<tag>0: 0, <tag>1: 1, ...}`` of about `size` characters."""
    pairs: list[str] = []
    length = 0
    while length < size:
        pairs.append(f"{tag}{len(pairs)}: {len(pairs)}")
        length += len(pairs[-1]) + 2
    return "{" + ", ".join(pairs) + "}\n"


class BufferServer:
    """A ktl-lsp process over stdio that opens and closes buffers and samples its own figures."""

    def __init__(self, store: Path, folder: Path) -> None:
        self.folder = folder
        self._published: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        argv = [sys.executable, "-m", "ktl_lsp", "--store", str(store)]
        self.client = RawClient(argv, self._on_notify)
        self.client.initialize({"sessionData": False})
        self.peak: dict[str, int] = {}
        #: Estimated bytes of each buffer's parse, taken while it was open.
        self.open_parses: list[int] = []

    def _on_notify(self, method: str, params: Any) -> None:
        if method == "textDocument/publishDiagnostics":
            with self._lock:
                event = self._published.get(params["uri"])
            if event is not None:
                event.set()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = self.client.command("ktl.server.stats", {}, timeout=120)
        for key in ("rssBytes", "openFds", "threads"):
            self.peak[key] = max(self.peak.get(key, 0), int(out[key]))
        return out

    def open_close(self, name: str, text: str, timeout: float = 300, sample: bool = False) -> float:
        """Opens a buffer (not on disk), waits for its diagnostics, closes it; seconds taken.
        With `sample`, the server's figures are taken while the buffer is open (the peak)."""
        uri = (self.folder / name).as_uri()
        event = threading.Event()
        with self._lock:
            self._published[uri] = event
        started = time.perf_counter()
        self.client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
        )
        if not event.wait(timeout):
            raise TimeoutError(f"no diagnostics for {name} in {timeout:.0f} s")
        elapsed = time.perf_counter() - started
        with self._lock:
            del self._published[uri]
        if sample:
            held = self.stats().get("parses") or {}
            self.open_parses.append(int(held.get("openBytes", 0)))
        self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        return elapsed

    def settle(self) -> dict[str, Any]:
        """Stats once every close is done: a small check queued after them has published."""
        self.open_close("settle.yaml", SMALL)
        return self.stats()

    def big_round(self, buffers: int, size: int, tag: str) -> list[float]:
        """Opens and closes `buffers` different flow mappings, taking the figures at each."""
        return [
            self.open_close(f"big-{tag}{i}.yaml", flow_mapping(size, f"{tag}{i}_"), sample=True)
            for i in range(buffers)
        ]

    def close(self) -> None:
        self.client.close()


def parses(stats: dict[str, Any]) -> str:
    p = stats.get("parses") or {}
    if not p:
        return "not reported"
    return (
        f"cache {p['cacheBytes'] / MB:.1f} MB in {p['cacheEntries']} entries "
        f"(limit {p['cacheLimitBytes'] / MB:.0f} MB), open buffers {p['openBytes'] / MB:.1f} MB "
        f"in {p['openFiles']} files"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buffers", type=int, default=10)
    ap.add_argument("--mb", type=float, default=7.7, help="size of each buffer (MB of text)")
    args = ap.parse_args()
    size = int(args.mb * 1e6)
    with tempfile.TemporaryDirectory() as tmp:
        server = BufferServer(Path(tmp) / "sessions.db", Path(tmp))
        try:
            bare = server.stats()
            loaded = server.settle()
            times = server.big_round(args.buffers, size, "k")
            after = server.settle()
        finally:
            server.close()
    rss = {k: s["rssBytes"] / MB for k, s in (("bare", bare), ("loaded", loaded), ("after", after))}
    print(
        f"buffers: {args.buffers} different flow mappings of {size / 1e6:.1f} MB, opened, "
        f"checked and closed one after another ({min(times):.1f}-{max(times):.1f} s each)"
    )
    print(f"rss bare server (nothing opened):   {rss['bare']:8.1f} MB")
    print(f"rss checkers loaded (one small file): {rss['loaded']:6.1f} MB")
    print(f"rss peak (one buffer open):         {server.peak['rssBytes'] / MB:8.1f} MB")
    print(f"rss after the closes:               {rss['after']:8.1f} MB")
    print(
        f"ratio after/bare: {rss['after'] / rss['bare']:.2f} "
        f"(after/checkers loaded {rss['after'] / rss['loaded']:.2f})"
    )
    each = server.open_parses
    print(
        f"parses while open (estimated): {min(each) / MB:.0f}-{max(each) / MB:.0f} MB each, "
        f"{sum(each) / MB:.0f} MB for all (a cache of 64 M characters kept 8 of 10 of them)"
    )
    print(f"parses held after the closes: {parses(after)}")
    print(
        f"fds {bare['openFds']} -> {after['openFds']}, threads {bare['threads']} -> "
        f"{after['threads']}"
    )


if __name__ == "__main__":
    main()
