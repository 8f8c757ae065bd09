"""Reading Server-Sent Events (ours or ktl-agent's) from an httpx stream, incrementally."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass
class SseEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SseParser:
    """The WHATWG event-stream rules: lines, ``field: value``, blank line dispatches."""

    def __init__(self) -> None:
        self._buf = ""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._skip_lf = False
        self.last_event_id: str | None = None

    def feed(self, text: str) -> list[SseEvent]:
        out: list[SseEvent] = []
        if text and self._skip_lf:
            # The previous chunk ended with \r: that line is done; a \n here belongs to it.
            self._skip_lf = False
            text = text.removeprefix("\n")
        self._buf += text
        while True:
            cut = min(
                (i for i in (self._buf.find("\n"), self._buf.find("\r")) if i >= 0), default=-1
            )
            if cut < 0:
                return out
            line = self._buf[:cut]
            step = 2 if self._buf[cut : cut + 2] == "\r\n" else 1
            if self._buf[cut] == "\r" and cut + 1 == len(self._buf):
                self._skip_lf = True  # dispatch now (WHATWG); skip a \n that may come next
            self._buf = self._buf[cut + step :]
            event = self._line(line)
            if event is not None:
                out.append(event)

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            if not self._data and self._retry is None and not self._event:
                return None
            ev = SseEvent(self._event or "message", "\n".join(self._data), self._id, self._retry)
            if self._id is not None:
                self.last_event_id = self._id
            self._event, self._data, self._id, self._retry = "", [], None, None
            return ev
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None


async def iter_events(
    chunks: AsyncIterator[str], parser: SseParser | None = None
) -> AsyncIterator[SseEvent]:
    parser = parser or SseParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
