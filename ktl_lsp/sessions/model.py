"""Plain data for sessions and frames, and their JSON shapes on the LSP side (camelCase)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self is not State.RUNNING


class FrameType(StrEnum):
    OUTPUT = "output"
    INPUT = "input"
    RESIZE = "resize"
    EVENT = "event"
    MARKER = "marker"


META_KEYS = (
    "command",
    "args",
    "requester",
    "cluster",
    "kubeContext",
    "namespace",
    "release",
    "chart",
    "repo",
    "cwd",
)


def command_line(meta: Mapping[str, Any]) -> str:
    """The command line a session shows: ``meta.command``, then the ``meta.args`` it does not
    already contain.

    Our own sessions record the whole line in ``command`` and ``args`` = argv[1:] (ktl-agent's
    field, for its readers), so ``command`` already ends with the joined ``args``. ktl-agent's
    sessions record the cobra path (``ktl logs``) and argv without argv[0] (``logs pod -n x``),
    which overlap by the subcommand words; other producers keep them apart (``make`` +
    ``deploy``). The longest run of leading args that ``command`` ends with is dropped, so
    each word shows once. ktl_lsp/web/player.js (``KtlPlayer.commandLine``) mirrors this rule.
    """
    command = str(meta.get("command") or "").strip()
    raw = meta.get("args")
    args = [str(a) for a in raw] if isinstance(raw, list | tuple) else []
    for k in range(len(args), 0, -1):
        head = " ".join(args[:k])
        if command == head or command.endswith(" " + head):
            args = args[k:]
            break
    return " ".join(w for w in (command, *args) if w)


def now_ns() -> int:
    return time.time_ns()


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Frame:
    """One recorded event. ``data`` holds raw bytes; text views decode it."""

    session_id: str
    seq: int
    ts_ns: int
    type: FrameType
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def to_lsp(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": iso(self.ts_ns), "type": str(self.type), "data": self.text()}


def event_data(**fields: Any) -> bytes:
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Session:
    id: str
    kind: str
    title: str
    state: State = State.RUNNING
    created_ns: int = field(default_factory=now_ns)
    ended_ns: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    error: str | None = None
    last_seq: int = 0
    pinned: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    parent_id: str | None = None
    bytes_out: int = 0

    @property
    def duration_ms(self) -> int:
        end = self.ended_ns if self.ended_ns is not None else now_ns()
        return max(0, (end - self.created_ns) // 1_000_000)

    def to_lsp(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sessionId": self.id,
            "kind": self.kind,
            "title": self.title,
            "state": str(self.state),
            "createdAt": iso(self.created_ns),
            "lastSeq": self.last_seq,
            "pinned": self.pinned,
            "meta": dict(self.meta),
            "tags": dict(self.tags),
            "durationMs": self.duration_ms,
        }
        if self.exit_code is not None:
            out["exitCode"] = self.exit_code
        if self.signal:
            out["signal"] = self.signal
        if self.error:
            out["error"] = self.error
        if self.ended_ns is not None:
            out["endedAt"] = iso(self.ended_ns)
        if self.parent_id:
            out["parentId"] = self.parent_id
        return out

    def result(self) -> dict[str, Any]:
        """The SessionResult shape that commands return."""
        out: dict[str, Any] = {
            "sessionId": self.id,
            "state": str(self.state),
            "durationMs": self.duration_ms,
        }
        if self.exit_code is not None:
            out["exitCode"] = self.exit_code
        if self.signal:
            out["signal"] = self.signal
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class SessionFilter:
    """Which sessions a listing wants (every field narrows it; ``limit`` caps it)."""

    state: str | None = None
    kind: str | None = None
    meta: dict[str, str] | None = None
    tags: dict[str, str] | None = None
    since_ns: int | None = None
    #: Only sessions started at or before this (a page after the newest ones).
    until_ns: int | None = None
    parent_id: str | None = None
    limit: int = 50
    #: Leave out sessions of this kind (agents' recorded calls from listings of the work).
    not_kind: str | None = None
