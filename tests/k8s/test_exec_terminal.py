"""ExecTerminal on a real exec websocket of the loopback API server."""

from __future__ import annotations

import asyncio

from ktl_lsp.k8s import channels
from ktl_lsp.k8s.client import Cluster
from tests.k8s_api import FakeApi


class Sink:
    def __init__(self) -> None:
        self.raw = b""

    def on_output(self, raw: bytes, text: str) -> None:
        self.raw += raw


async def test_a_hang_up_before_the_reader_ever_ran_still_ends_and_closes(
    api: FakeApi, cluster: Cluster
) -> None:
    from ktl_lsp.k8s.exec import ExecTerminal

    api.add_pod("web-1")
    query = [("command", "sleep"), ("command", "30"), ("stdin", "true"), ("stdout", "true")]
    query += [("stderr", "false"), ("tty", "true"), ("container", "app")]
    ws = await cluster.websocket(
        "/api/v1/namespaces/default/pods/web-1/exec", query, channels.EXEC_PROTOCOLS
    )
    terminal = ExecTerminal(ws, Sink(), tty=True, first=[])
    terminal.send_signal("KILL")  # in the same turn: the reader task has not started
    info = await asyncio.wait_for(terminal.wait(), 5)
    assert (info.exit_code, info.signal) == (137, "KILL")
    for _ in range(100):
        if ws.closed and not any(api.streams.execs.values()):
            break
        await asyncio.sleep(0.05)
    assert ws.closed and not any(api.streams.execs.values())
    await cluster.close()
