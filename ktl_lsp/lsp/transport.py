"""The editor's byte stream: reading framed messages within a limit, and writing without ever
blocking the event loop.

Reading: pygls reads whatever ``Content-Length`` says into memory; a header of a terabyte ended
the server (``MemoryError``). :class:`MessageReader` refuses a message over the limit, says so
once, and skips it without holding it (see :meth:`MessageReader._skip` for how it finds the next
message when the length was a lie).

Writing: pygls writes each message to stdout synchronously; when the editor reads slower than
sessions produce, every write blocks the loop and with it every session, request and the
gateway. Here a thread does the writing: the loop only appends to a queue and never waits. The
queue is not bounded here: the one high-volume writer, the editor feed, stops sending while
:attr:`ThreadedWriter.congested` and catches up from the store when the editor has read again.

The stream may be raw (``PYTHONUNBUFFERED=1``), so writes go through :func:`write_all`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import os
import re
import stat
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, BinaryIO

import orjson

from ktl_lsp.fullwrite import write_all

log = logging.getLogger(__name__)

#: Queued bytes past which the editor counts as not keeping up (the feed holds back).
CONGESTED = 8 * 1024 * 1024
#: ... and below which it has caught up again.
DRAINED = CONGESTED // 4

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: The smallest limit accepted: an editor's ordinary messages must always fit.
MIN_MAX_MESSAGE_BYTES = 1024 * 1024
#: Sets the limit from the start, before ``initialize`` can (``maxMessageBytes``).
MAX_MESSAGE_ENV = "KTL_LSP_MAX_MESSAGE_BYTES"
#: A header line longer than this is not a header.
HEADER_LINE_LIMIT = 8192
_READ_CHUNK = 1024 * 1024
#: At most 20 digits: Python refuses to convert a number of thousands of digits.
_CONTENT_LENGTH = re.compile(rb"Content-Length:[ \t]*(\d{1,20})\r\n", re.IGNORECASE)
#: The longest header line kept while scanning for one, so a header cut by a read is found.
_OVERLAP = 64


@functools.cache
def default_max_message_bytes() -> int:
    """``$KTL_LSP_MAX_MESSAGE_BYTES`` when it is a good value, else 64 MiB."""
    raw = os.environ.get(MAX_MESSAGE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_MESSAGE_BYTES
    if raw.isascii() and raw.isdigit() and len(raw) <= 20 and int(raw) >= MIN_MAX_MESSAGE_BYTES:
        return int(raw)
    log.warning(
        "%s=%.40r: expected a number of bytes >= %d; using %d",
        MAX_MESSAGE_ENV,
        raw,
        MIN_MAX_MESSAGE_BYTES,
        DEFAULT_MAX_MESSAGE_BYTES,
    )
    return DEFAULT_MAX_MESSAGE_BYTES


_STRING_BODY = re.compile(rb'(?:[^"\\]+|\\.)*', re.DOTALL)
_NESTED_STOP = re.compile(rb'["{}\[\]]')
#: Longer ids are not kept (the server refuses them anyway).
_ID_BYTES = 256
#: Brackets and strings looked at before giving up: a hostile `[[[[...` costs a step per byte.
_SCAN_STEPS = 1_000_000


class RequestIdScanner:
    """The top-level ``"id"`` of a JSON object read in pieces, holding at most a few hundred bytes.

    A refused message is never held, so its request could not be answered; an editor then waits
    for it forever. Scanning the bytes as they are skipped finds the id wherever it is (VS Code
    writes it first, Neovim's encoder in any order) at the cost of a search per string and per
    bracket.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._text = bytearray()  # the current top-level key or id value
        self._expect: str = "key"  # at depth 1: "key", "colon", "value", "skip"
        self._key_is_id = False
        self._capturing = False
        self.found: bytes | None = None
        self._broken = False
        self._steps = 0

    @property
    def request_id(self) -> int | str | None:
        """The id, when it was a JSON number or string."""
        if self.found is None or self._broken:
            return None
        try:
            value = json.loads(self.found)
        except ValueError:
            return None
        return value if isinstance(value, int | str) and not isinstance(value, bool) else None

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n and self.found is None and not self._broken:
            self._steps += 1
            if self._steps > _SCAN_STEPS:
                self._broken = True
                return
            if self._in_string:
                i = self._string(data, i)
            elif self._depth >= 2:
                m = _NESTED_STOP.search(data, i)
                if m is None:
                    return
                c = data[m.start()]
                i = m.end()
                if c == 0x22:
                    self._in_string = True
                elif c in b"{[":
                    self._depth += 1
                else:
                    self._depth -= 1
                    if self._depth == 1:
                        self._expect = "skip"
            else:
                self._structure(data[i])
                i += 1

    def _string(self, data: bytes, i: int) -> int:
        if self._escape:
            self._escape = False
            self._keep(data[i : i + 1])
            return i + 1
        # Up to the closing quote in one C-level match: escapes (a JSON-encoded CR LF every few
        # bytes) cost nothing here. Only a backslash that ends the read stops it short.
        end = _STRING_BODY.match(data, i).end()  # type: ignore[union-attr]
        self._keep(data[i:end])
        if end == len(data):
            return end
        if data[end] == 0x5C:
            self._escape = True
            self._keep(data[end : end + 1])
            return end + 1
        self._in_string = False
        if self._depth == 1:
            if self._capturing:
                self._text += b'"'
                self.found = bytes(self._text)
            elif self._expect == "key":
                self._key_is_id = self._text == b"id"
                self._expect = "colon"
        return end + 1

    def _keep(self, part: bytes) -> None:
        if self._depth == 1 and (self._capturing or self._expect == "key"):
            room = _ID_BYTES - len(self._text)
            if len(part) > room:
                self._broken = self._capturing  # an id this long is refused anyway
                part = part[:room]
            self._text += part

    def _structure(self, c: int) -> None:
        """One byte outside strings at depth 0 or 1: the top-level object's own syntax."""
        if self._capturing and c not in b" \t\r\n,}":
            if c in b"{[":
                self._broken = True  # an object or array is no id
            elif len(self._text) < _ID_BYTES:
                self._text.append(c)
            return
        if self._capturing:
            self.found = bytes(self._text)
            return
        if c in b" \t\r\n":
            return
        if self._depth == 0:
            if c == 0x7B:
                self._depth = 1
            else:
                self._broken = True  # not an object
            return
        if c == 0x22:
            self._in_string = True
            self._text.clear()
            if self._expect == "value" and self._key_is_id:
                self._capturing = True
                self._text += b'"'
        elif c == 0x3A and self._expect == "colon":
            self._expect = "value"
        elif c in b"{[":
            self._depth += 1
        elif c == 0x2C:
            self._expect = "key"
        elif c == 0x7D:
            self._depth = 0
            self._broken = True  # the object ended without an id
        elif self._expect == "value" and self._key_is_id:
            self._capturing = True
            self._text.clear()
            self._text.append(c)


#: Reads up to ``n`` bytes, at least one; ``b""`` at the end of the stream.
ReadSome = Callable[[int], Awaitable[bytes]]


class MessageReader:
    """JSON-RPC message bodies from a byte stream, each at most ``limit`` bytes.

    ``on_refused(text, request_id)`` is told once per refused message, in words for the user,
    with the request's id when the message was a request (so it can be answered).
    """

    def __init__(
        self,
        read_some: ReadSome,
        limit: int,
        on_refused: Callable[[str, int | str | None], None],
        read_exactly: ReadSome | None = None,
    ) -> None:
        self._read_some = read_some
        #: Reads exactly ``n`` bytes (fewer only at the end), when the stream can.
        self._read_exactly = read_exactly
        self.limit = limit
        self._on_refused = on_refused
        self._buf = bytearray()

    @classmethod
    def of_stream(
        cls,
        stream: BinaryIO,
        executor: Executor,
        limit: int,
        on_refused: Callable[[str, int | str | None], None],
    ) -> MessageReader:
        """Reads a blocking stream (stdin) in ``executor``'s threads."""
        read1 = getattr(stream, "read1", stream.read)

        def read_some(n: int) -> Awaitable[bytes]:
            return asyncio.get_running_loop().run_in_executor(executor, read1, n)

        def read_exactly(n: int) -> Awaitable[bytes]:
            return asyncio.get_running_loop().run_in_executor(executor, stream.read, n)

        return cls(read_some, limit, on_refused, read_exactly)

    async def next_body(self) -> bytes | None:
        """The next message's body; None once the stream has ended."""
        length: int | None = None
        while True:
            line = await self._line()
            if line is None:
                return None
            if line.strip():
                # Other headers (Content-Type) pass. Searching the line, not matching all of
                # it, finds a header glued to the rest of a message whose length was short.
                found = _CONTENT_LENGTH.search(line)
                if found is not None and found.end() == len(line):
                    length = int(found[1])
                continue
            if length is None:
                continue  # a stray empty line
            if length > self.limit:
                scanner = RequestIdScanner()
                await self._skip(length, scanner)
                self._on_refused(
                    f"ktl-lsp: refused a message of {length} bytes from the editor: the limit is "
                    f"{self.limit} bytes (setting maxMessageBytes, or {MAX_MESSAGE_ENV})",
                    scanner.request_id,
                )
                length = None
                continue
            return await self._exactly(length)

    async def _fill(self) -> bool:
        data = await self._read_some(_READ_CHUNK)
        if not data:
            return False
        self._buf += data
        return True

    async def _line(self) -> bytes | None:
        """One line with its ``\\n``; a longer one than any header is cut to its end."""
        start = 0
        while (end := self._buf.find(b"\n", start)) < 0:
            if len(self._buf) > HEADER_LINE_LIMIT:
                del self._buf[:-_OVERLAP]
            start = len(self._buf)
            if not await self._fill():
                return None
        line = bytes(self._buf[: end + 1])
        del self._buf[: end + 1]
        return line

    async def _exactly(self, n: int) -> bytes | None:
        parts = [bytes(self._buf[:n])]
        have = len(parts[0])
        del self._buf[:n]
        if have < n and self._read_exactly is not None:
            # One read, one allocation: a large body read in pipe-sized pieces leaves the
            # allocator's heap fragmented, holding tens of MB after the message is gone.
            rest = await self._read_exactly(n - have)
            return b"".join([*parts, rest]) if len(rest) == n - have else None
        while have < n:
            data = await self._read_some(min(n - have, _READ_CHUNK))
            if not data:
                return None
            parts.append(data)
            have += len(data)
        return b"".join(parts)

    async def _skip(self, n: int, scanner: RequestIdScanner) -> None:
        """Discards the ``n`` bytes of a refused body as they come, holding at most a chunk.

        Should a message header turn up before ``n`` bytes (the length was a lie: a broken or
        hostile client), reading resumes there. A JSON body cannot hold that header: a raw CR LF
        is invalid inside a JSON string and ``Content-Length`` is no JSON outside one, so an
        honest body is never cut short.
        """
        while True:
            found = _CONTENT_LENGTH.search(self._buf, 0, n + _OVERLAP)
            if found is not None and found.start() <= n:
                scanner.feed(bytes(self._buf[: found.start()]))
                del self._buf[: found.start()]
                if found.start() < n:
                    log.info("the refused message was shorter than it said; reading on")
                return
            if len(self._buf) >= n:
                scanner.feed(bytes(self._buf[:n]))
                del self._buf[:n]
                return
            keep = min(_OVERLAP, len(self._buf))
            n -= len(self._buf) - keep
            scanner.feed(bytes(self._buf[: len(self._buf) - keep]))
            del self._buf[: len(self._buf) - keep]
            if not await self._fill():
                return


#: The pipe to the editor holds this much (Linux; at most ``/proc/sys/fs/pipe-max-size``): a
#: message of terminal output goes in a write or two instead of sixteen 64 KiB round trips.
PIPE_BYTES = 1024 * 1024


def widen_pipe(stream: BinaryIO) -> None:
    """Grows the pipe behind ``stream`` to :data:`PIPE_BYTES`, where the platform lets it."""
    if sys.platform == "win32":
        return
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if setsize is None:
        return
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        fd = stream.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, setsize, PIPE_BYTES)


class ThreadedWriter:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        widen_pipe(stream)
        self._queue: deque[bytes | dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self.pending = 0
        self.broken: BaseException | None = None
        self._sizes: list[int] = []
        self._closed = False
        self._on_drained: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []
        self._thread = threading.Thread(target=self._run, name="ktl-stdout", daemon=True)
        self._thread.start()

    @property
    def congested(self) -> bool:
        """The editor is behind: more than ``CONGESTED`` bytes wait for it."""
        return self.pending > CONGESTED

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` once on the running loop when the editor has caught up (at once
        if it has)."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if self.pending > DRAINED and self.broken is None:
                self._on_drained.append((loop, callback))
                return
        loop.call_soon(callback)

    def write(self, data: bytes) -> None:
        self._put(data, len(data))

    def write_message(self, message: dict[str, Any], size_hint: int) -> None:
        """Queues a plain-JSON message: encoding happens on the writer thread, so a megabyte of
        terminal output is serialized while the loop is back reading the next one."""
        self._put(message, size_hint)

    def _put(self, data: bytes | dict[str, Any], size: int) -> None:
        """Never waits: the loop that calls it also serves the gateway and every session."""
        with self._cond:
            if self.broken is not None:
                raise BrokenPipeError(str(self.broken))
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
                batch, self._queue = self._queue, deque()
                done = sum(self._sizes)
                self._sizes.clear()
            try:
                while batch:
                    chunk = batch.popleft()  # let go of each message once it is written
                    write_all(
                        self._stream, chunk if isinstance(chunk, bytes) else frame_message(chunk)
                    )
                    del chunk
                self._stream.flush()
            except (OSError, ValueError) as exc:  # the editor went away
                with self._cond:
                    self.broken = exc
                    self.pending = 0
                    self._queue.clear()
                    self._sizes.clear()
                    self._on_drained.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self.pending -= done
                drained: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []
                if self.pending <= DRAINED:
                    drained, self._on_drained = self._on_drained, []
                self._cond.notify_all()
            for loop, callback in drained:
                with contextlib.suppress(RuntimeError):  # the loop has ended
                    loop.call_soon_threadsafe(callback)

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
        # Flushed, not closed: the process ends next, and whoever flushes stdout on the way
        # out (the command line does) must not find it closed.
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()


def frame_message(message: dict[str, Any]) -> bytes:
    """One JSON-RPC message with its ``Content-Length`` header, as it goes on the wire.

    orjson encodes terminal text ~30 times faster than ``json`` (which held the GIL ~2 ms per
    400 KB of output, stalling the loop that reads the terminals); ``json`` takes what orjson
    refuses (a lone surrogate, an integer past 64 bits).
    """
    try:
        body = orjson.dumps(message)
    except TypeError:  # orjson.JSONEncodeError
        body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
