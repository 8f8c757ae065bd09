"""An editor that stops reading its stdout must not stop the server.

The attack as found: an editor that takes ``ktl/sessionData`` stops reading while a session
streams; the pipe fills (64 KiB), and the in-process gateway stopped answering.
"""

from __future__ import annotations

import asyncio
import fcntl
import termios
from pathlib import Path
from typing import Any

import httpx

from ktl_lsp.gateway.auth import token_path
from tests.lsp.wire import Wire

#: Output streamed while the editor does not read: more than the writer ever queued (64 MiB).
STALLED_BYTES = 90_000_000
LINE = "0123456789" * 20 + "\n"
PIPE_FULL = 60_000


def unread_in_pipe(wire: Wire) -> int:
    """Bytes waiting in the pipe from the server's stdout (the kernel's count)."""
    transport: Any = wire.proc._transport  # type: ignore[attr-defined]
    pipe = transport.get_pipe_transport(1).get_extra_info("pipe")
    buf = bytearray(4)
    fcntl.ioctl(pipe.fileno(), termios.FIONREAD, buf)
    return int.from_bytes(buf, "little")


async def test_gateway_answers_while_the_editor_does_not_read(tmp_path: Path) -> None:
    store = tmp_path / "sessions.db"
    wire = await Wire.start(store)
    try:
        await wire.initialize({"sessionData": True})
        command = f"yes {LINE.strip()} | head -c {STALLED_BYTES}"
        started = await wire.command("ktl.run", {"command": command, "detach": True})
        sid = started["result"]["sessionId"]
        replay = await wire.command("ktl.session.replay", {"sessionId": sid})
        base = httpx.URL(replay["result"]["url"]).copy_with(path="/", query=None)
        token = token_path(store).read_text().strip()
        # From here on nothing reads the server's stdout: the pipe fills and stays full.
        async with httpx.AsyncClient(
            base_url=str(base), headers={"X-KTL-Token": token}, timeout=5
        ) as http:
            for _ in range(200):
                if unread_in_pipe(wire) >= PIPE_FULL:
                    break
                await asyncio.sleep(0.05)
            assert unread_in_pipe(wire) >= PIPE_FULL
            state = "running"
            for _ in range(600):  # a deadline, not a measure: each round is a few ms
                health = await http.get("/healthz")  # a timeout here is the failure
                assert health.status_code == 200 and health.text == "ok"
                info = await http.get(f"/api/v1/sessions/{sid}")
                assert info.status_code == 200
                state = info.json()["state"]
                if state != "running":
                    break
                await asyncio.sleep(0.05)
            assert state == "done"
            assert unread_in_pipe(wire) >= PIPE_FULL  # stalled the whole time
        # The editor reads again: it gets the whole stream, in order, then the end.
        received: list[str] = []
        ended: dict[str, Any] = {}
        early = list(wire.notifications)  # what came with the answers before the stall
        async with asyncio.timeout(60):
            while not ended:
                message = early.pop(0) if early else await wire.read()
                params = message.get("params") or {}
                if params.get("sessionId") != sid:
                    continue
                if message["method"] == "ktl/sessionData":
                    received.append(params["data"])
                elif message["method"] == "ktl/sessionState" and params["state"] != "running":
                    ended = params
        assert ended["state"] == "done"
        text = "".join(received)
        expected = (LINE * (STALLED_BYTES // len(LINE) + 1))[:STALLED_BYTES]
        assert len(text) == STALLED_BYTES + expected.count("\n")
        assert text == expected.replace("\n", "\r\n")
        echoed = await wire.command("ktl.run", {"argv": ["echo", "still here"]})
        assert echoed["result"]["state"] == "done"
    finally:
        await wire.close()
