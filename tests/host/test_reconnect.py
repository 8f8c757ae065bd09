"""A language server whose connection to a living session host drops connects again on its
own and goes on showing the sessions it showed, with nothing lost in between."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from ktl_lsp.host.protocol import HostPaths
from tests.host.conftest import StartPersisting
from tests.host.test_host import TICKS
from tests.lsp.features.helpers import wait_for_text


class Relay:
    """A socket where the language server looks for its host, passing everything on to the
    real host elsewhere, so a test can cut the connections while both processes run."""

    def __init__(self, listen: Path, target: Path) -> None:
        self.listen = listen
        self.target = target
        self.accepted = 0
        self.pipes: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        #: Cleared: connections are taken but not passed on until it is set.
        self.passing = asyncio.Event()
        self.passing.set()

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, path=str(self.listen))
        os.chmod(self.listen, 0o600)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await self.passing.wait()
        up_reader, up_writer = await asyncio.open_unix_connection(str(self.target))
        self.pipes += [writer, up_writer]
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def cut(self) -> None:
        """Closes every connection passed on, both ends."""
        for writer in self.pipes:
            writer.close()
        self.pipes.clear()

    def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest_asyncio.fixture
async def relayed(host_env: dict[str, str], tmp_path: Path) -> AsyncIterator[tuple[Path, Relay]]:
    """A real ``ktl-lsp host`` for a store in a directory of its own, reached through a Relay
    at the socket path of this test's host directory."""
    store = tmp_path / "relayed.db"
    real_dir = tempfile.mkdtemp(prefix="ktl-real-")
    real_env = {**os.environ, "KTL_LSP_HOST_DIR": real_dir}
    real = HostPaths.of(store).socket.name
    host = subprocess.Popen(
        [sys.executable, "-m", "ktl_lsp", "--store", str(store), "host", "--idle-timeout", "30"],
        env=real_env,
    )
    relay = Relay(HostPaths.of(store).socket, Path(real_dir) / real)
    try:
        for _ in range(200):
            if (Path(real_dir) / real).exists():
                break
            await asyncio.sleep(0.05)
        await relay.start()
        yield store, relay
    finally:
        relay.stop()
        subprocess.run(
            [sys.executable, "-m", "ktl_lsp", "--store", str(store), "host", "--stop"],
            env=real_env,
            capture_output=True,
            timeout=30,
        )
        host.wait(20)
        shutil.rmtree(real_dir, ignore_errors=True)


async def test_a_dropped_connection_to_a_living_host_is_made_again(
    persisting: StartPersisting, relayed: tuple[Path, Relay]
) -> None:
    store, relay = relayed
    ktl = await persisting(store)
    started = await ktl.cmd("ktl.run", {"command": TICKS, "detach": True})
    sid = started["sessionId"]
    await wait_for_text(ktl, sid, r"tick 5\r\n")
    assert relay.accepted == 1

    relay.cut()
    await asyncio.sleep(0.5)  # ticks go on in the host, unseen here for a while
    cut_at = len(re.findall(r"tick \d+", ktl.rec.text(sid)))
    await wait_for_text(ktl, sid, rf"tick {cut_at + 15}\r\n")
    assert relay.accepted == 2, "connected again through the same socket"

    shown = [int(n) for n in re.findall(r"^tick (\d+)\r$", ktl.rec.text(sid), flags=re.M)]
    assert shown == list(range(len(shown))), "the editor saw every line, once, in order"
    assert not [s for s in ktl.rec.states if s["sessionId"] == sid and s["state"] != "running"]
    assert (await ktl.cmd("ktl.session.get", {"sessionId": sid}))["state"] == "running"

    # Input and cancel reach the host over the new connection.
    ended = await ktl.cmd("ktl.session.cancel", {"sessionId": sid})
    assert ended["state"] == "cancelled"


async def test_a_session_that_ended_while_disconnected_ends_as_recorded(
    persisting: StartPersisting, relayed: tuple[Path, Relay]
) -> None:
    store, relay = relayed
    ktl = await persisting(store)
    command = "i=0; while [ $i -lt 30 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done; exit 3"
    started = await ktl.cmd("ktl.run", {"command": command, "detach": True})
    sid = started["sessionId"]
    await wait_for_text(ktl, sid, r"tick 5\r\n")

    relay.passing.clear()
    relay.cut()
    await asyncio.sleep(3)  # the session ends in the host meanwhile
    assert "tick 29" not in ktl.rec.text(sid)
    relay.passing.set()

    def ends() -> list[str]:
        return [s["state"] for s in ktl.rec.states if s["sessionId"] == sid][1:]

    await ktl.rec.until(lambda: bool(ends()), 10)
    assert ends() == ["error"], "as the host recorded it (exit 3), not interrupted"
    assert (await ktl.cmd("ktl.session.get", {"sessionId": sid}))["exitCode"] == 3
    shown = [int(n) for n in re.findall(r"^tick (\d+)\r$", ktl.rec.text(sid), flags=re.M)]
    assert shown == list(range(30)), "what it wrote unseen is shown before its end"
