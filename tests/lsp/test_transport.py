"""The editor's stream survives the server being stopped and continued mid-write.

With ``PYTHONUNBUFFERED=1`` stdout is a raw file, and a stop (Ctrl-Z of a terminal editor, a
debugger, ``kill -STOP``) while a large message waits for the pipe cuts the write short. The
unwritten rest must still be sent, in order: a lost tail corrupts every later JSON-RPC message.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

from ktl_lsp.lsp.transport import frame_message
from tests.conftest import StartKtl
from tests.lsp.features.helpers import output_text, server_pid

MB = 6


async def test_stop_and_continue_loses_no_byte_of_the_stream(start_ktl: StartKtl) -> None:
    ktl = await start_ktl(env={"PYTHONUNBUFFERED": "1"})
    pid = server_pid(ktl)
    stopping = True

    async def stop_and_continue() -> int:
        rounds = 0
        while stopping:
            os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(0.002)
            os.kill(pid, signal.SIGCONT)
            await asyncio.sleep(0.004)
            rounds += 1
        return rounds

    toggler = asyncio.ensure_future(stop_and_continue())
    try:
        result = await asyncio.wait_for(
            ktl.cmd("ktl.run", {"command": f"yes 0123456789abcdef | head -c {MB * 1_000_000}"}),
            120,
        )
    finally:
        stopping = False
        rounds = await toggler
        os.kill(pid, signal.SIGCONT)
    assert rounds > 10
    assert result["state"] == "done"
    sid = result["sessionId"]
    await ktl.rec.until(
        lambda: any(s["sessionId"] == sid and s["state"] == "done" for s in ktl.rec.states)
    )
    stored = await output_text(ktl, sid)
    received = "".join(ktl.rec.data.get(sid, []))
    assert len(stored) == MB * 1_000_000 + MB * 1_000_000 // 17  # a \r before each \n
    assert received == stored
    # The connection still works after all that.
    assert (await ktl.cmd("ktl.run", {"argv": ["echo", "still here"]}))["state"] == "done"


def test_a_message_orjson_refuses_is_still_framed() -> None:
    """Text with a lone surrogate (a file name that is not UTF-8, in an error) goes out as
    ``json`` writes it; other text goes out as UTF-8, both with the body's length in bytes."""
    for text in ("héllo ✓", "bad name \udcff"):
        message = {"jsonrpc": "2.0", "method": "ktl/sessionState", "params": {"error": text}}
        framed = frame_message(message)
        header, body = framed.split(b"\r\n\r\n", 1)
        assert header == b"Content-Length: %d" % len(body)
        assert json.loads(body) == message
