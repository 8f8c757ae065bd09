"""A stand-in for pywinpty's ``winpty`` module over a real POSIX terminal, so the Windows runner
(ktl_lsp/pty/windows.py) runs on Linux. It keeps what ConPTY gives the runner: blocking ``read``
that returns text and raises ``EOFError`` at the end, ``write`` of text, ``setwinsize``,
``terminate`` and ``wait``; and, like ConPTY, it never says whether the terminal echoes.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Mapping, Sequence


class PtyProcess:
    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._status: int | None = None

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        dimensions: tuple[int, int] = (24, 80),
    ) -> PtyProcess:
        pid, fd = pty.fork()
        if pid == 0:  # the child: its own session, the terminal as its controlling one
            try:
                if cwd:
                    os.chdir(cwd)
                os.execvpe(argv[0], list(argv), dict(env or os.environ))
            finally:
                os._exit(127)
        proc = cls(pid, fd)
        proc.setwinsize(*dimensions)
        return proc

    def read(self, size: int = 1024) -> str:
        try:
            data = os.read(self.fd, size)
        except OSError:  # EIO: the other side closed
            data = b""
        if not data:
            raise EOFError("the terminal was closed")
        return self._decoder.decode(data)

    def write(self, text: str) -> int:
        return os.write(self.fd, text.encode("utf-8"))

    def setwinsize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def terminate(self, force: bool = False) -> bool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL if force else signal.SIGTERM)
        return True

    def wait(self) -> int:
        if self._status is None:
            _, status = os.waitpid(self.pid, 0)
            self._status = os.waitstatus_to_exitcode(status)
            os.close(self.fd)
        return self._status
