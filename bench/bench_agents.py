"""Agents' figure: ``read_output`` with ``tailLines: 200`` on a 100 MB session, against the
real limit, reading the same tail straight from the store with SQL, measured in the same run.

1. Baseline: sqlite3 on the store file, the session's output frames newest first until 200
   line breaks are held (what any reader of the store must do at least).
2. In process: ``SessionTools.read_output`` (plain text, redacted, no transport).
3. Through MCP: the ``mcp`` SDK's client calling ``read_output`` on a real ``ktl-lsp mcp``
   (stdio): JSON-RPC, the call recorded as an agent session, the answer serialised.

Each is the median of --rounds calls after one warm-up; the ratio is MCP over the baseline.
Target: the MCP call <= 50 ms.

    .venv/bin/python bench/bench_agents.py [--mb 100] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import Implementation

from ktl_lsp.agents.tools import SessionTools
from ktl_lsp.sessions.manager import SessionManager
from tests.agents.conftest import record_big_session

TAIL = 200
TARGET_MS = 50.0
KTL_LSP = str(Path(sys.executable).with_name("ktl-lsp"))


def sql_tail(store: Path, session_id: str) -> int:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        held: list[bytes] = []
        breaks = 0
        for (data,) in conn.execute(
            "SELECT data FROM frames WHERE session_id = ? AND type = 'output' ORDER BY seq DESC",
            (session_id,),
        ):
            held.append(bytes(data))
            breaks += held[-1].count(b"\n")
            if breaks > TAIL:
                break
        return len(b"".join(reversed(held)))
    finally:
        conn.close()


async def median_ms(fn: Callable[[], Awaitable[object]], rounds: int) -> float:
    await fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def main(megabytes: int, rounds: int) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    try:
        store = tmp / "s.db"
        sid = await record_big_session(store, megabytes)
        print(f"session {sid}: {store.stat().st_size / 1e6:.0f} MB store")

        async def baseline() -> object:
            return await asyncio.to_thread(sql_tail, store, sid)

        base = await median_ms(baseline, rounds)

        manager = SessionManager.open(store)
        tools = SessionTools(manager)
        try:
            inproc = await median_ms(lambda: tools.read_output(sid, tail_lines=TAIL), rounds)
        finally:
            manager.close()

        params = StdioServerParameters(command=KTL_LSP, args=["--store", str(store), "mcp"])
        async with Client(params, client_info=Implementation(name="bench", version="1")) as c:
            args = {"sessionId": sid, "tailLines": TAIL}
            result = await c.call_tool("read_output", args)
            text = (result.structured_content or {}).get("text", "")
            assert text.count("\n") == TAIL and text.endswith("the last line\n"), text[-200:]
            over_mcp = await median_ms(lambda: c.call_tool("read_output", args), rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"baseline (SQL, the same tail):   {base:7.2f} ms")
    print(f"SessionTools.read_output:        {inproc:7.2f} ms ({inproc / base:.1f}x)")
    print(f"read_output through MCP (stdio): {over_mcp:7.2f} ms ({over_mcp / base:.1f}x)")
    ok = over_mcp <= TARGET_MS
    print(f"target <= {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    a = parser.parse_args()
    sys.exit(asyncio.run(main(a.mb, a.rounds)))
