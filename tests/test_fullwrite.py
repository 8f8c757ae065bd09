"""write_all against streams that take part of a write, or none of it, the way raw files do."""

from __future__ import annotations

import io
import os
import threading

from ktl_lsp.fullwrite import write_all


class Stingy(io.RawIOBase):
    """Takes at most ``limit`` bytes per write, and refuses every third call (would block)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.got = bytearray()
        self.calls = 0

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int | None:  # type: ignore[override]
        self.calls += 1
        if self.calls % 3 == 0:
            return None
        data = bytes(memoryview(b))[: self.limit]  # type: ignore[arg-type]
        self.got += data
        return len(data)

    def fileno(self) -> int:
        return 1  # select() on it says "writable" at once; only reached on a None answer


def test_every_byte_arrives_through_short_and_refused_writes() -> None:
    data = os.urandom(10_000)
    stream = Stingy(limit=7)
    write_all(stream, data)  # type: ignore[arg-type]
    assert bytes(stream.got) == data
    assert stream.calls > 10_000 // 7  # it really was cut short


def test_a_real_raw_pipe_gets_everything() -> None:
    r, w = os.pipe()
    data = os.urandom(200_000)  # more than a pipe holds: the writer must wait for the reader

    got = bytearray()

    def drain() -> None:
        while chunk := os.read(r, 65536):
            got.extend(chunk)

    t = threading.Thread(target=drain)
    t.start()
    with open(w, "wb", buffering=0) as raw:
        write_all(raw, data)
    t.join(10)
    os.close(r)
    assert bytes(got) == data
