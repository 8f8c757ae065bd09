"""Session commands (PROTOCOL.md section 1, "Sessions"): run, talk to, stop and look up sessions."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ktl_lsp.features.arguments import ArgumentError, parse
from ktl_lsp.pty.text import strip_ansi
from ktl_lsp.server import KtlServer
from ktl_lsp.sessions.compare import compare
from ktl_lsp.sessions.manager import (
    LiveSession,
    RunSpec,
    SessionManager,
    SessionNotRunning,
    UnknownSession,
    shell_argv,
)
from ktl_lsp.sessions.model import FrameType, Session, State
from ktl_lsp.sessions.store import SessionFilter

Signal = Literal["INT", "TERM", "KILL", "HUP", "EOF"]


@dataclass
class RunArgs:
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
    detach: bool = False
    workDoneToken: int | str | None = None

    def check(self) -> None:
        if (self.argv is None) == (self.command is None):
            raise ArgumentError("exactly one of 'argv' or 'command' is required")
        if self.argv is not None and not self.argv:
            raise ArgumentError("field 'argv': must not be empty")
        if self.command is not None and not self.command.strip():
            raise ArgumentError("field 'command': must not be empty")
        _check_size(self.cols, self.rows)
        if self.timeoutS is not None and self.timeoutS <= 0:
            raise ArgumentError("field 'timeoutS': must be positive")


def _check_size(cols: int, rows: int) -> None:
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
        _check_size(self.cols, self.rows)


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
    a: str  #: the earlier run
    b: str  #: the later run


def _unknown(exc: UnknownSession) -> ArgumentError:
    return ArgumentError(str(exc))


def _not_running(exc: SessionNotRunning) -> ArgumentError:
    return ArgumentError(str(exc))


def setup(server: KtlServer) -> None:
    @server.command("ktl.run")
    async def run(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(RunArgs, args)
        if a.command is not None:
            argv, command = shell_argv(a.command), a.command
        else:
            assert a.argv is not None
            argv, command = a.argv, None
        cwd = a.cwd or _workspace_root(ls)
        spec = RunSpec(
            argv=argv,
            command=command,
            cwd=cwd,
            env=a.env or None,
            cols=a.cols,
            rows=a.rows,
            timeout_s=a.timeoutS,
            title=a.title,
            meta=a.meta,
            tags=a.tags,
            input=a.input,
        )
        manager = ls.manager
        live = manager.create_pending(spec)
        if ls.feed is not None:
            ls.feed.watch(live.session, a.workDoneToken)
        manager.launch(live, spec)
        return await follow(ls, live, a.detach, watched=True)

    @server.command("ktl.session.input")
    def session_input(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(InputArgs, args)
        try:
            ls.manager.input(a.sessionId, a.data)
        except UnknownSession as exc:
            raise _unknown(exc) from exc
        except SessionNotRunning as exc:
            raise _not_running(exc) from exc
        return {}

    @server.command("ktl.session.resize")
    def session_resize(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(ResizeArgs, args)
        try:
            ls.manager.resize(a.sessionId, a.cols, a.rows)
        except UnknownSession as exc:
            raise _unknown(exc) from exc
        except SessionNotRunning as exc:
            raise _not_running(exc) from exc
        return {}

    @server.command("ktl.session.signal")
    def session_signal(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(SignalArgs, args)
        try:
            ls.manager.signal(a.sessionId, a.signal)
        except UnknownSession as exc:
            raise _unknown(exc) from exc
        except SessionNotRunning as exc:
            raise _not_running(exc) from exc
        return {}

    @server.command("ktl.session.cancel")
    async def session_cancel(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(SessionArgs, args)
        manager = ls.manager
        try:
            live = manager.cancel(a.sessionId)
        except UnknownSession:
            # Not ours (finished long ago, or another process's): report what the store knows.
            session = await _get(ls, a.sessionId)
            return session.result()
        session = await asyncio.shield(live.done)
        return session.result()

    @server.command("ktl.session.wait")
    async def session_wait(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(WaitArgs, args)
        try:
            session = await ls.manager.wait(a.sessionId, a.timeoutS)
        except UnknownSession as exc:
            raise _unknown(exc) from exc
        return session.result()

    @server.command("ktl.session.get")
    async def session_get(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(SessionArgs, args)
        return (await _get(ls, a.sessionId)).to_lsp()

    @server.command("ktl.session.output")
    async def session_output(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(OutputArgs, args)
        try:
            frames, last_seq = await ls.manager.frames(a.sessionId, a.fromSeq, a.limit)
        except UnknownSession as exc:
            raise _unknown(exc) from exc
        out = []
        for f in frames:
            item = f.to_lsp()
            if a.plain and f.type is FrameType.OUTPUT:
                item["data"] = strip_ansi(item["data"])
            out.append(item)
        return {"frames": out, "lastSeq": last_seq}

    @server.command("ktl.sessions.list")
    async def sessions_list(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(ListArgs, args)
        flt = SessionFilter(
            state=a.state,
            kind=a.kind,
            meta=a.meta or None,
            tags=a.tags or None,
            since_ns=a.since_ns(),
            parent_id=a.parentId,
            limit=max(0, min(a.limit, 10000)),
        )
        sessions = await ls.manager.list_sessions(flt)
        out: dict[str, Any] = {"sessions": [s.to_lsp() for s in sessions]}
        if a.remote and a.parentId is None:  # remote sessions have no local parent
            from ktl_lsp.features.remote import remote_sessions

            remote, problem = await remote_sessions(ls, flt.limit, a.state)
            out["sessions"].extend(remote)
            if problem:
                out["remoteError"] = problem
        return out

    @server.command("ktl.session.pin")
    async def session_pin(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(PinArgs, args)
        try:
            session = await ls.manager.set_pinned(a.sessionId, a.pinned)
        except UnknownSession as exc:
            raise _unknown(exc) from exc
        return session.to_lsp()

    @server.command("ktl.session.delete")
    async def session_delete(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(SessionArgs, args)
        try:
            await ls.manager.delete(a.sessionId)
        except UnknownSession as exc:
            raise _unknown(exc) from exc
        except SessionNotRunning as exc:
            raise ArgumentError(str(exc)) from exc
        return {}

    @server.command("ktl.sessions.prune")
    async def sessions_prune(ls: KtlServer, *args: Any) -> dict[str, Any]:
        parse(NoArgs, args)
        result = await ls.manager.prune(ls.settings.retention)
        return {
            "deleted": result.deleted_sessions,
            "trimmedFrames": result.trimmed_frames,
            "bytesBefore": result.bytes_before,
            "bytesAfter": result.bytes_after,
        }

    @server.command("ktl.session.export")
    async def session_export(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(ExportArgs, args)
        await _get(ls, a.sessionId)
        manager = ls.manager
        if manager.store is not None:
            await manager.store.flush()
        return {"path": await asyncio.to_thread(_export, ls, a)}

    @server.command("ktl.sessions.diff")
    async def sessions_diff(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(DiffArgs, args)
        manager = ls.manager
        try:
            sa, sb = await _get(ls, a.a), await _get(ls, a.b)
            la, lb = await manager.output_lines(a.a), await manager.output_lines(a.b)
        except UnknownSession as exc:
            raise _unknown(exc) from exc
        comparison = await asyncio.to_thread(compare, sa, la, sb, lb)
        return comparison.to_lsp()


@dataclass
class NoArgs:
    pass


@dataclass
class ExportArgs:
    sessionId: str
    format: Literal["ndjson", "asciicast", "html"]
    path: str | None = None  #: file or directory; default: ``exports/`` beside the store
    compat: bool = False  #: NDJSON only what ktl-agent's readers know


def _export(ls: KtlServer, a: ExportArgs) -> str:
    from ktl_lsp.sessions.export import ExportError, default_filename, export_to_path

    store = ls.manager.store
    if store is None or not ls.manager.recording:
        raise ArgumentError("recording is off: there is no session store to export from")
    target = Path(a.path).expanduser() if a.path else store.path.parent / "exports"
    if not a.path:
        target.mkdir(parents=True, exist_ok=True)
        target = target / default_filename(a.sessionId, a.format)
    try:
        return str(export_to_path(store, a.sessionId, a.format, target, compat=a.compat))
    except ExportError as exc:
        raise ArgumentError(str(exc)) from exc


async def follow(
    ls: KtlServer,
    live: LiveSession,
    detach: bool = False,
    token: int | str | None = None,
    watched: bool = False,
) -> dict[str, Any]:
    """Shows a started session in the editor and answers the command when it ends.

    Every command that starts work goes through here, so progress, log lines, both cancel
    paths (progress and ``$/cancelRequest``) and the result shape are the same for all kinds.
    """
    if not watched and ls.feed is not None:
        ls.feed.watch(live.session, token)
    if detach:
        return live.session.result()
    manager = ls.manager
    msg_id = ls.protocol.msg_id
    hooks = ls.ktl_protocol.cancel_hooks
    if msg_id is not None:
        hooks[msg_id] = lambda: _cancel(manager, live.id)
    try:
        session = await asyncio.shield(live.done)
    finally:
        if msg_id is not None:
            hooks.pop(msg_id, None)
    if manager.store is not None:
        await manager.store.flush()
    result = {**session.result(), **live.result_extra}
    if ls.replay is not None:
        url = await ls.replay.url(session.id)
        if url:
            result["replayUrl"] = url
    return result


async def _get(ls: KtlServer, session_id: str) -> Session:
    try:
        return await ls.manager.get(session_id)
    except UnknownSession as exc:
        raise _unknown(exc) from exc


def _cancel(manager: SessionManager, session_id: str) -> None:
    manager.cancel(session_id)


def _workspace_root(ls: KtlServer) -> str | None:
    try:
        root = ls.workspace.root_path
    except Exception:
        return None
    return root if root and os.path.isdir(root) else None


__all__ = ["State", "setup"]
