"""What leaves the store, with well-known secrets redacted (``sessions/redact.py``): frames,
a session's fields, and any JSON answer made of them.

Output frames are one stream: each is redacted with the bytes around it (a :class:`Window`),
so a secret split across two frames is found whole. That needs the output after a frame, so a
:class:`Scrubber` holds frames back until ``CONTEXT`` bytes of output follow them or the stream
ends (:meth:`Scrubber.flush`); a live stream also lets them go with time (:class:`Paced`).
Input frames are redacted each on its own (a keystroke is not a continuation of the output),
events and markers as JSON when they hold something to redact.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ktl_lsp.sessions.model import Frame, FrameType, Session
from ktl_lsp.sessions.redact import (
    CONTEXT,
    FLUSH_S,
    Redaction,
    Redactor,
    Rule,
    Window,
    redact_value,
)


class Scrubber:
    """One stream's frames, redacted in order; frames it did not change are given back as
    the same objects (callers may cache their encodings)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.window = Window(rules)
        self.alone = Redactor(rules)
        self.held: deque[Frame] = deque()
        self.held_output = 0  #: bytes of output in ``held``
        #: The names of what was replaced since :meth:`take_found` (one per secret).
        self.found: list[str] = []

    @classmethod
    def of(cls, redaction: Redaction) -> Scrubber:
        return cls(redaction.rules)

    @property
    def pending(self) -> bool:
        return bool(self.held)

    def take_found(self) -> list[str]:
        """What was replaced since the last call, by name."""
        found, self.found = self.found, []
        return found

    def prime(self, before: bytes) -> None:
        """Starts mid-stream: ``before`` is the recorded output just before the first frame."""
        self.window.prime(before)

    def push(self, frame: Frame) -> list[Frame]:
        """``frame`` in, the frames now ready out (none while output is held)."""
        if not self.held and frame.type is not FrameType.OUTPUT:
            return [self._alone(frame)]
        self.held.append(frame)
        if frame.type is FrameType.OUTPUT:
            self.held_output += len(frame.data)
        return self._release(final=False)

    def flush(self, upto: int | None = None) -> list[Frame]:
        """What is held (up to sequence ``upto``), redacted with what is known after it."""
        return self._release(final=True, upto=upto)

    def _release(self, final: bool, upto: int | None = None) -> list[Frame]:
        out: list[Frame] = []
        while self.held:
            first = self.held[0]
            if upto is not None and first.seq > upto:
                break
            if first.type is not FrameType.OUTPUT:
                out.append(self._alone(self.held.popleft()))
                continue
            if not final and self.held_output - len(first.data) < CONTEXT:
                break
            self.held.popleft()
            self.held_output -= len(first.data)
            red = self.window.redact(first.data, self._after())
            self.found += red.names
            if red.data is not first.data:
                first = dataclasses.replace(first, data=red.data)
            out.append(first)
        return out

    def _after(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        for f in self.held:
            if f.type is FrameType.OUTPUT and f.data:
                parts.append(f.data[: CONTEXT - size])
                size += len(parts[-1])
                if size >= CONTEXT:
                    break
        return b"".join(parts)

    def _alone(self, frame: Frame) -> Frame:
        if frame.type is FrameType.INPUT:
            red = self.alone.scan(frame.data)
            self.found += red.names
            return dataclasses.replace(frame, data=red.data) if red.names else frame
        if frame.type in (FrameType.EVENT, FrameType.MARKER):
            data = scrub_event(self.alone, frame.data)
            return frame if data is frame.data else dataclasses.replace(frame, data=data)
        return frame


class Paced:
    """When a live stream's held frames go out: all of them after ``FLUSH_S`` of quiet; while
    frames keep coming, every ``FLUSH_S`` all but the newest (which waits for what follows
    it), so a steady trickle of short lines is not held until ``CONTEXT`` bytes follow."""

    def __init__(self, scrubber: Scrubber, clock: Callable[[], float] = time.monotonic) -> None:
        self.scrubber = scrubber
        self.clock = clock
        self.held_since: float | None = None
        self.last_push = 0.0
        self.last_seq = 0

    def push(self, frame: Frame) -> list[Frame]:
        self.last_push = self.clock()
        self.last_seq = frame.seq
        out = self.scrubber.push(frame)
        self._held()
        return out

    def timeout(self, idle: float | None) -> float | None:
        """How long to wait for the next frame before calling :meth:`due` (``idle`` when
        nothing is held)."""
        if self.held_since is None:
            return idle
        return max(0.001, self.held_since + FLUSH_S - self.clock())

    def due(self) -> list[Frame]:
        """What goes out now that :meth:`timeout` has passed with no frame."""
        quiet = self.clock() - self.last_push >= FLUSH_S
        out = self.scrubber.flush(None if quiet else self.last_seq - 1)
        self.held_since = None
        self._held()
        return out

    def _held(self) -> None:
        if not self.scrubber.pending:
            self.held_since = None
        elif self.held_since is None:
            self.held_since = self.last_push


def scrub_frames(frames: Iterable[Frame], rules: Sequence[Rule]) -> Iterator[Frame]:
    """``frames`` (one session's, in order) redacted as one stream."""
    scrubber = Scrubber(rules)
    for frame in frames:
        yield from scrubber.push(frame)
    yield from scrubber.flush()


def text_of(redactor: Redactor) -> Callable[[str], str]:
    """A function redacting one string with ``redactor`` (each string on its own)."""

    def text(value: str) -> str:
        red = redactor.scan(value.encode("utf-8", "surrogatepass"))
        return red.data.decode("utf-8", "surrogatepass") if red.names else value

    return text


def scrub_event(redactor: Redactor, data: bytes) -> bytes:
    """An event or marker frame's data with secrets redacted: as JSON when it is JSON (a PEM
    block in a string is escaped, so the raw text would hide it), else as text."""
    red = redactor.scan(data)
    if not red.names:
        return data
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return red.data if red.names else data
    cleaned = scrub_json(obj, redactor)
    if cleaned == obj:
        return data
    return json.dumps(cleaned, separators=(",", ":"), sort_keys=True).encode()


def scrub_json(value: Any, redactor: Redactor) -> Any:
    """A JSON answer with secrets in its strings redacted and values under secret-looking keys
    hidden (``redact.redact_value``)."""
    return redact_value(value, text_of(redactor))


def scrub_session(session: Session, redactor: Redactor) -> Session:
    """``session`` with secrets in its title, meta (command line, arguments, anything a feature
    put there), tags and error redacted."""
    text = text_of(redactor)
    return dataclasses.replace(
        session,
        title=text(session.title),
        meta=redact_value(session.meta, text),
        tags=redact_value(session.tags, text),
        error=text(session.error) if session.error else session.error,
    )
