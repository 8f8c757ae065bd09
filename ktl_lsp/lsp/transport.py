"""Writing to the editor without blocking the event loop.

pygls writes each message to stdout synchronously; when the editor reads slower than sessions
produce (twenty streams at once, a busy editor), every write blocks the loop and with it every
session and request. Here a thread does the writing: the loop only appends to a queue. Should the
queue grow past ``HARD_LIMIT`` (an editor that stopped reading), writers wait, so memory stays
bounded; the editor feed reads ``pending`` to coalesce before that happens.

The stream may be raw (``PYTHONUNBUFFERED=1``), so writes go through :func:`write_all`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from typing import Any, BinaryIO

from ktl_lsp.fullwrite import write_all

HARD_LIMIT = 64 * 1024 * 1024


class ThreadedWriter:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._queue: deque[bytes | dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self.pending = 0
        self.broken: BaseException | None = None
        self._sizes: list[int] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ktl-stdout", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        self._put(data, len(data))

    def write_message(self, message: dict[str, Any], size_hint: int) -> None:
        """Queues a plain-JSON message: encoding happens on the writer thread, so a megabyte of
        terminal output is serialized while the loop is back reading the next one."""
        self._put(message, size_hint)

    def _put(self, data: bytes | dict[str, Any], size: int) -> None:
        with self._cond:
            if self.broken is not None:
                raise BrokenPipeError(str(self.broken))
            while self.pending > HARD_LIMIT and self.broken is None and not self._closed:
                self._cond.wait(0.5)
            self._queue.append(data)
            self._sizes.append(size)
            self.pending += size
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                batch = list(self._queue)
                self._queue.clear()
                done = sum(self._sizes)
                self._sizes.clear()
            try:
                for chunk in batch:
                    write_all(
                        self._stream, chunk if isinstance(chunk, bytes) else frame_message(chunk)
                    )
                self._stream.flush()
            except (OSError, ValueError) as exc:  # the editor went away
                with self._cond:
                    self.broken = exc
                    self.pending = 0
                    self._queue.clear()
                    self._sizes.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self.pending -= done
                self._cond.notify_all()

    def drain(self, timeout: float = 5.0) -> None:
        """Waits until everything queued is written (shutdown, tests)."""
        with self._cond:
            self._cond.wait_for(lambda: self.pending <= 0 or self.broken is not None, timeout)

    def close(self) -> None:
        self.drain()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._stream.close()


def frame_message(message: dict[str, Any]) -> bytes:
    """One JSON-RPC message with its ``Content-Length`` header, as it goes on the wire."""
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
