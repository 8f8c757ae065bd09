"""Windows runner on pywinpty (ConPTY). Same surface as the POSIX runner.

pywinpty only offers blocking reads, so one reader thread per session hands data to the loop.
ConPTY cannot say whether it echoes (a password prompt turns echo off), so typed text is judged
by its echo as in a remote exec (``EchoJudge``). CI runs it on Linux through a stand-in
``winpty`` module over a real POSIX terminal (tests/pty/winpty_standin/).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from ktl_lsp.pty.base import ExitInfo, PtySink, PtySpec, SpawnError, resolve
from ktl_lsp.pty.decoder import Utf8Splitter
from ktl_lsp.pty.echo import EchoJudge


class WindowsPty:
    def __init__(self, proc: Any, sink: PtySink, loop: asyncio.AbstractEventLoop) -> None:
        self._proc = proc
        self.pid: int = proc.pid
        self._sink = sink
        self._loop = loop
        self._splitter = Utf8Splitter()
        self._done: asyncio.Future[ExitInfo] = loop.create_future()
        self._echo = EchoJudge(loop)
        self._resume = threading.Event()
        self._resume.set()
        threading.Thread(target=self._read_loop, name=f"winpty-{self.pid}", daemon=True).start()

    @staticmethod
    def fork(spec: PtySpec) -> Any:
        from winpty import PtyProcess

        resolved = resolve(spec)
        try:
            return PtyProcess.spawn(
                resolved.argv, cwd=resolved.cwd, env=resolved.env, dimensions=(spec.rows, spec.cols)
            )
        except Exception as exc:
            raise SpawnError(f"could not start {spec.argv[0]}: {exc}") from exc

    @classmethod
    async def spawn(cls, spec: PtySpec, sink: PtySink) -> WindowsPty:
        proc = await asyncio.to_thread(cls.fork, spec)
        return cls(proc, sink, asyncio.get_running_loop())

    def _read_loop(self) -> None:
        while True:
            self._resume.wait()
            try:
                data = self._proc.read(65536)
            except EOFError:
                break
            if isinstance(data, str):
                data = data.encode("utf-8")
            if data:
                raw, text = self._splitter.feed(data)
                self._loop.call_soon_threadsafe(self._output, raw, text)
        code = self._proc.wait()
        self._loop.call_soon_threadsafe(self._finish, ExitInfo(int(code or 0)))

    def _output(self, raw: bytes, text: str) -> None:
        if raw:
            self._sink.on_output(raw, text)
            self._echo.saw_output(text)

    def _finish(self, info: ExitInfo) -> None:
        raw, text = self._splitter.flush()
        self._output(raw, text)
        self._echo.close()  # never learned whether it was echoed: keep it hidden
        if not self._done.done():
            self._done.set_result(info)

    async def wait(self) -> ExitInfo:
        return await asyncio.shield(self._done)

    @property
    def exited(self) -> bool:
        return self._done.done()

    def write(self, data: bytes) -> None:
        with contextlib.suppress(Exception):
            self._proc.write(data.decode("utf-8", "replace"))

    def resize(self, cols: int, rows: int) -> None:
        with contextlib.suppress(Exception):
            self._proc.setwinsize(rows, cols)

    def send_signal(self, name: str) -> None:
        if name == "INT":
            self.write(b"\x03")
        else:
            with contextlib.suppress(Exception):
                self._proc.terminate(force=name == "KILL")

    def send_eof(self) -> None:
        self.write(b"\x1a\r")

    def judge_input(self, raw: bytes, verdict: Callable[[bool], None]) -> None:
        self._echo.judge(raw, verdict, ended=self._done.done())

    def echo_enabled(self) -> bool:
        return self._echo.settled

    def pause_reading(self) -> None:
        self._resume.clear()

    def resume_reading(self) -> None:
        self._resume.set()
