"""Session commands (docs/protocol.md): run, talk to, stop, look up, keep and export sessions."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ktl_lsp.lsp.arguments import ArgumentError, StartArgs
from ktl_lsp.lsp.feature import Feature, NoArgs, command
from ktl_lsp.lsp.features.remote import RemoteSessions
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.pty.text import strip_ansi
from ktl_lsp.sessions.errors import AmbiguousSession, UnknownSession
from ktl_lsp.sessions.manager import RunSpec, SessionManager, shell_argv
from ktl_lsp.sessions.model import FrameType, SessionFilter

Signal = Literal["INT", "TERM", "KILL", "HUP", "EOF"]


@dataclass
class RunArgs(StartArgs):
    """``ktl.run``: a command in a pseudo-terminal, recorded as a session."""

    argv: list[str] | None = None  #: program and arguments, run directly
    command: str | None = None  #: a command line, run through the user's shell
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cols: int = 120
    rows: int = 30
    timeoutS: float | None = None
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    input: str | None = None

    def check(self) -> None:
        if (self.argv is None) == (self.command is None):
            raise ArgumentError("exactly one of 'argv' or 'command' is required")
        if self.argv is not None and not self.argv:
            raise ArgumentError("field 'argv': must not be empty")
        if self.command is not None and not self.command.strip():
            raise ArgumentError("field 'command': must not be empty")
        check_size(self.cols, self.rows)
        if self.timeoutS is not None and self.timeoutS <= 0:
            raise ArgumentError("field 'timeoutS': must be positive")


def check_size(cols: int, rows: int) -> None:
    if not 1 <= cols <= 10000:
        raise ArgumentError("field 'cols': must be between 1 and 10000")
    if not 1 <= rows <= 10000:
        raise ArgumentError("field 'rows': must be between 1 and 10000")


@dataclass
class SessionArgs:
    sessionId: str


@dataclass
class InputArgs:
    sessionId: str
    data: str


@dataclass
class ResizeArgs:
    sessionId: str
    cols: int
    rows: int

    def check(self) -> None:
        check_size(self.cols, self.rows)


@dataclass
class SignalArgs:
    sessionId: str
    signal: Signal


@dataclass
class WaitArgs:
    sessionId: str
    timeoutS: float | None = None


@dataclass
class OutputArgs:
    sessionId: str
    fromSeq: int = 1
    limit: int | None = None
    plain: bool = False

    def check(self) -> None:
        if self.fromSeq < 1:
            raise ArgumentError("field 'fromSeq': must be >= 1")
        if self.limit is not None and self.limit < 0:
            raise ArgumentError("field 'limit': must be >= 0")


@dataclass
class ListArgs:
    state: Literal["running", "done", "error", "cancelled", "interrupted"] | None = None
    kind: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    since: str | None = None
    limit: int = 50
    remote: bool = True  #: include the remote gateway's sessions when one is configured
    parentId: str | None = None  #: only the children of this session (a plan's node attempts)

    def since_ns(self) -> int | None:
        if self.since is None:
            return None
        try:
            dt = datetime.fromisoformat(self.since.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ArgumentError(f"field 'since': not an ISO time: {self.since!r}") from exc
        return int(dt.timestamp() * 1e9)


@dataclass
class PinArgs:
    sessionId: str
    pinned: bool = True


@dataclass
class DiffArgs:
    a: str  #: the earlier run (a session id, or ID#blockN: one command block)
    b: str  #: the later run


@dataclass
class BundleArgs:
    sessionId: str
    path: str | None = None  #: a file or folder; default: exports/ beside the store


@dataclass
class ExportArgs:
    sessionId: str  #: an id or prefix; ``ID#blockN`` exports one command block
    format: Literal["ndjson", "asciicast", "html"]
    path: str | None = None  #: file or directory; default: ``exports/`` beside the store
    compat: bool = False  #: NDJSON only what ktl-agent's readers know
    reveal: bool = False  #: keep secrets (exports are redacted unless asked)


async def _ref(manager: SessionManager, ref: str) -> str:
    """A session id or prefix, or ``ID#blockN`` (a command block), with the id resolved."""
    sid, sep, block = ref.partition("#")
    return await manager.resolve_id(sid) + sep + block


class Sessions(Feature):
    """The ``ktl.run`` terminal and the commands that talk to, find and keep sessions."""

    def __init__(self, server: KtlServer, runs: Runs, remote: RemoteSessions) -> None:
        self.server = server
        self.runs = runs
        self.remote = remote

    @command("ktl.run")
    async def run(self, a: RunArgs) -> dict[str, Any]:
        if a.command is not None:
            argv, shell_command = shell_argv(a.command), a.command
        else:
            assert a.argv is not None
            argv, shell_command = a.argv, None
        spec = RunSpec(
            argv=argv,
            command=shell_command,
            cwd=a.cwd or self.workspace_root(),
            env=a.env or None,
            cols=a.cols,
            rows=a.rows,
            timeout_s=a.timeoutS,
            title=a.title,
            meta=a.meta,
            tags=a.tags,
            input=a.input,
        )
        return await self.runs.launch(spec, a)

    @command("ktl.session.input")
    async def input(self, a: InputArgs) -> dict[str, Any]:
        await self.runs.host.bring_here(a.sessionId)
        self.server.manager.input(a.sessionId, a.data)
        return {}

    @command("ktl.session.resize")
    async def resize(self, a: ResizeArgs) -> dict[str, Any]:
        await self.runs.host.bring_here(a.sessionId)
        self.server.manager.resize(a.sessionId, a.cols, a.rows)
        return {}

    @command("ktl.session.signal")
    async def signal(self, a: SignalArgs) -> dict[str, Any]:
        await self.runs.host.bring_here(a.sessionId)
        self.server.manager.signal(a.sessionId, a.signal)
        return {}

    @command("ktl.session.cancel")
    async def cancel(self, a: SessionArgs) -> dict[str, Any]:
        manager = self.server.manager
        await self.runs.host.bring_here(a.sessionId)
        try:
            live = manager.cancel(a.sessionId)
        except AmbiguousSession:
            raise
        except UnknownSession:
            # Not ours (finished long ago, or another process's): report what the store knows.
            return (await manager.find(a.sessionId)).result()
        return (await asyncio.shield(live.done)).result()

    @command("ktl.session.wait")
    async def wait(self, a: WaitArgs) -> dict[str, Any]:
        manager = self.server.manager
        return (await manager.wait(await manager.resolve_id(a.sessionId), a.timeoutS)).result()

    @command("ktl.session.get")
    async def get(self, a: SessionArgs) -> dict[str, Any]:
        manager = self.server.manager
        return (await manager.find(a.sessionId)).to_lsp()

    @command("ktl.session.output")
    async def output(self, a: OutputArgs) -> dict[str, Any]:
        manager = self.server.manager
        sid = await manager.resolve_id(a.sessionId)
        frames, last_seq = await manager.frames(sid, a.fromSeq, a.limit)
        out = []
        for f in frames:
            item = f.to_lsp()
            if a.plain and f.type is FrameType.OUTPUT:
                item["data"] = strip_ansi(item["data"])
            out.append(item)
        return {"frames": out, "lastSeq": last_seq}

    @command("ktl.sessions.list")
    async def list_sessions(self, a: ListArgs) -> dict[str, Any]:
        flt = SessionFilter(
            state=a.state,
            kind=a.kind,
            meta=a.meta or None,
            tags=a.tags or None,
            since_ns=a.since_ns(),
            parent_id=a.parentId,
            limit=max(0, min(a.limit, 10000)),
        )
        sessions = await self.server.manager.list_sessions(flt)
        out: dict[str, Any] = {"sessions": [s.to_lsp() for s in sessions]}
        if a.remote and a.parentId is None:  # remote sessions have no local parent
            remote, problem = await self.remote.sessions(flt.limit, a.state)
            out["sessions"].extend(remote)
            if problem:
                out["remoteError"] = problem
        return out

    @command("ktl.session.pin")
    async def pin(self, a: PinArgs) -> dict[str, Any]:
        manager = self.server.manager
        return (await manager.set_pinned(await manager.resolve_id(a.sessionId), a.pinned)).to_lsp()

    @command("ktl.session.delete")
    async def delete(self, a: SessionArgs) -> dict[str, Any]:
        manager = self.server.manager
        await manager.delete(await manager.resolve_id(a.sessionId))
        return {}

    @command("ktl.sessions.prune")
    async def prune(self, _: NoArgs) -> dict[str, Any]:
        return (await self.server.manager.prune(self.server.settings.retention)).to_json()

    @command("ktl.session.export")
    async def export(self, a: ExportArgs) -> dict[str, Any]:
        path = Path(a.path).expanduser() if a.path else None
        manager = self.server.manager
        written = await manager.export(
            await _ref(manager, a.sessionId), a.format, path, a.compat, a.reveal
        )
        return {"path": str(written)}

    @command("ktl.session.bundle")
    async def bundle(self, a: BundleArgs) -> dict[str, Any]:
        path = Path(a.path).expanduser() if a.path else None
        manager = self.server.manager
        info = await manager.bundle(await manager.resolve_id(a.sessionId), path)
        return info.to_lsp()

    @command("ktl.sessions.diff")
    async def diff(self, a: DiffArgs) -> dict[str, Any]:
        manager = self.server.manager
        return (await manager.compare(await _ref(manager, a.a), await _ref(manager, a.b))).to_lsp()

    def workspace_root(self) -> str | None:
        try:
            root = self.server.workspace.root_path
        except Exception:
            return None
        return root if root and os.path.isdir(root) else None
