"""A terminal inside a container: the API server's exec websocket behind the ``Pty`` interface.

Sessions treat it exactly like a local PTY: output frames, input, resize (the size channel),
Ctrl-C, EOF, an exit code (from the status channel) and recording. What a remote terminal
cannot tell us is whether it echoes (a password prompt turns echo off): ``EchoJudge``
(ktl_lsp/pty/echo.py) records typed text only once the terminal has echoed it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from ktl_lsp.aio import background
from ktl_lsp.k8s import channels
from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.k8s.style import DIM, RESET
from ktl_lsp.k8s.targets import PodTarget, default_container, resource, running_pod
from ktl_lsp.pty.base import SIGNALS, ExitInfo, PtySink, SpawnError
from ktl_lsp.pty.decoder import Utf8Splitter
from ktl_lsp.pty.echo import EchoJudge

log = logging.getLogger(__name__)

#: Shells tried in order when the user names no command (the first one the image has).
SHELLS = (["bash"], ["sh"])
#: How long to wait for a shell's first words before deciding it exists.
PROBE_S = 3.0


@dataclass
class ExecRequest:
    target: PodTarget
    container: str | None = None
    command: list[str] | None = None
    tty: bool = True
    cols: int = 120
    rows: int = 30


class ExecTerminal:
    """One exec stream. Built by ``open_exec``; runs until the remote command ends."""

    pid = 0  # not a local process

    def __init__(
        self,
        ws: Any,
        sink: PtySink,
        tty: bool,
        first: list[bytes],
        on_close: Callable[[], Any] | None = None,
    ) -> None:
        self._ws = ws
        self._sink = sink
        self._tty = tty
        self._v5 = ws.protocol == channels.V5
        self._loop = asyncio.get_running_loop()
        self._splitter = Utf8Splitter()
        self._outbox: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._readable = asyncio.Event()
        self._readable.set()
        self._done: asyncio.Future[ExitInfo] = self._loop.create_future()
        self._status: channels.ExecStatus | None = None
        self._closing_signal: str | None = None
        self._echo = EchoJudge(self._loop)
        self._on_close = on_close
        self._reader = asyncio.ensure_future(self._read(first))
        # A reader cancelled before it ever ran (a cancel that raced the connect) skips its
        # ``finally``: end here too, or nothing would close the stream.
        self._reader.add_done_callback(lambda _: self._finish())
        self._writer = asyncio.ensure_future(self._write())

    # -- reading ------------------------------------------------------------------------------
    async def _read(self, first: list[bytes]) -> None:
        import aiohttp

        try:
            for message in first:
                self._on_message(message)
            while self._status is None:
                await self._readable.wait()
                msg = await self._ws.receive()
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self._on_message(msg.data)
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
        except Exception as exc:  # a broken connection ends the session truthfully
            log.info("exec stream ended: %s", exc)
        finally:
            self._finish()

    def _on_message(self, message: bytes) -> None:
        channel, payload = channels.split(message)
        if channel in (channels.STDOUT, channels.STDERR):
            if payload:
                raw, text = self._splitter.feed(payload)
                if raw:
                    self._sink.on_output(raw, text)
                    self._echo.saw_output(text)
        elif channel == channels.ERROR:
            self._status = channels.exec_status(payload)

    def _finish(self) -> None:
        raw, text = self._splitter.flush()
        if raw:
            self._sink.on_output(raw, text)
        self._echo.close()  # never learned whether it was echoed: keep it hidden
        if self._done.done():
            return
        status = self._status
        if status is not None:
            info = ExitInfo(status.exit_code, error=status.error)
        elif self._closing_signal is not None:
            signum = SIGNALS.get(self._closing_signal)
            code = 128 + int(signum) if signum is not None else 129
            info = ExitInfo(code, signal=self._closing_signal)
        else:
            info = ExitInfo(
                255, error="the connection to the container was lost (no exit status received)"
            )
        self._wake.set()
        self._done.set_result(info)
        background(self._close_ws(), name="exec-close")

    async def _close_ws(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()
        if self._on_close is not None:
            with contextlib.suppress(Exception):
                await self._on_close()

    # -- writing ------------------------------------------------------------------------------
    async def _write(self) -> None:
        try:
            while not self._done.done():
                await self._wake.wait()
                self._wake.clear()
                while self._outbox and not self._ws.closed:
                    await self._ws.send_bytes(self._outbox.popleft())
        except Exception as exc:
            log.info("exec input stopped: %s", exc)

    def _send(self, message: bytes) -> None:
        if self._done.done():
            return
        self._outbox.append(message)
        self._wake.set()

    # -- Pty ----------------------------------------------------------------------------------
    async def wait(self) -> ExitInfo:
        return await asyncio.shield(self._done)

    @property
    def exited(self) -> bool:
        return self._done.done()

    def write(self, data: bytes) -> None:
        self._send(channels.frame(channels.STDIN, data))

    def resize(self, cols: int, rows: int) -> None:
        if self._tty:
            self._send(channels.resize_frame(cols, rows))

    def send_eof(self) -> None:
        if self._tty:
            # What a terminal does: Ctrl-D, which the remote line discipline turns into end of
            # file. (Closing stdin would hang up the whole terminal, as containerd does.)
            self.write(b"\x04")
        elif self._v5:
            self._send(channels.close_frame(channels.STDIN))

    def send_signal(self, name: str) -> None:
        """Ctrl-C reaches the remote foreground process through its terminal; anything stronger
        hangs up: the stream closes and the runtime ends what ran in it."""
        if name == "INT" and self._tty:
            self.write(b"\x03")
            return
        if self._done.done():
            return
        self._closing_signal = name if name != "INT" else "HUP"
        self._reader.cancel()

    def echo_enabled(self) -> bool:
        return self._echo.settled

    def judge_input(self, raw: bytes, verdict: Callable[[bool], None]) -> None:
        if not self._tty:
            verdict(True)  # no terminal: input is data, recorded as typed
            return
        self._echo.judge(raw, verdict, ended=self._done.done())

    def pause_reading(self) -> None:
        self._readable.clear()

    def resume_reading(self) -> None:
        self._readable.set()


async def _probe(ws: Any) -> tuple[list[bytes], channels.ExecStatus | None]:
    """The first messages of a stream: enough to see whether the command could start."""
    import aiohttp

    got: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROBE_S
    while True:
        left = deadline - loop.time()
        if left <= 0:
            return got, None
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            return got, None
        if msg.type != aiohttp.WSMsgType.BINARY:
            return got, None
        got.append(msg.data)
        channel, payload = channels.split(msg.data)
        if channel == channels.ERROR:
            return got, channels.exec_status(payload)
        if channel in (channels.STDOUT, channels.STDERR) and payload:
            return got, None


async def open_exec(cluster: Cluster, req: ExecRequest, sink: Any) -> ExecTerminal:
    """Connects; ``sink`` gets a line saying where, then the container's output.

    Raises ``SpawnError`` with the reason in the user's terms when nothing could start.
    """
    stack = AsyncExitStack()
    await stack.enter_async_context(cluster.using())
    try:
        pod = await running_pod(cluster, req.target)
        name = str(pod["metadata"]["name"])
        container = req.container or default_container(pod)
        names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
        if container not in names:
            raise K8sError(f"container {container} is not in pod {name} (containers: {names})")
        pods = await resource(cluster, "v1", "Pod")
        path = pods.path(req.target.namespace, name) + "/exec"
        sink.write(
            f"{DIM}exec into pod {name}, container {container} "
            f"(context {cluster.name}, namespace {req.target.namespace}){RESET}\r\n"
        )
        commands = [req.command] if req.command else list(SHELLS)
        for i, command in enumerate(commands):
            query: list[tuple[str, Any]] = [("command", c) for c in command]
            query += [("container", container), ("stdin", "true"), ("stdout", "true")]
            query += [("stderr", "false" if req.tty else "true"), ("tty", str(req.tty).lower())]
            ws = await cluster.websocket(path, query, channels.EXEC_PROTOCOLS)
            if req.tty:
                await ws.send_bytes(channels.resize_frame(req.cols, req.rows))
            first: list[bytes] = []
            if not req.command:
                first, status = await _probe(ws)
                last = i == len(commands) - 1
                if status is not None and status.missing_program and not last:
                    await ws.close()
                    continue
            terminal = ExecTerminal(ws, sink, req.tty, first, on_close=stack.aclose)
            sink.session.meta.update(pod=name, container=container, execCommand=command)
            return terminal
        raise K8sError("no shell found in the container")  # pragma: no cover - loop returns
    except K8sError as exc:
        await stack.aclose()
        raise SpawnError(str(exc)) from exc
    except BaseException:
        await stack.aclose()
        raise
