"""Writing every byte to a stream that may be raw.

With ``PYTHONUNBUFFERED=1`` (common in container images) ``sys.stdout.buffer`` is a raw
``FileIO``, whose ``write`` may take only part of the bytes: a stop and continue of the process,
a debugger attaching or a signal while the pipe is full all cut a write short. Ignoring the
count loses the rest silently, and on a JSON-RPC stream that corrupts every message after it.
"""

from __future__ import annotations

import select
from typing import BinaryIO


def write_all(stream: BinaryIO, data: bytes) -> None:
    """Writes all of ``data``; waits when a non-blocking stream is full."""
    view = memoryview(data)
    while view:
        n = stream.write(view)
        if n is None:  # non-blocking and full: wait until the reader drains it
            select.select([], [stream.fileno()], [])
            continue
        view = view[n:]
