"""Shells as sessions (docs/protocol.md, "Shells and command blocks"): ``ktl.shell``, the
command blocks its integration marks, and search across every session's output."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from ktl_lsp.lsp.arguments import ArgumentError, StartArgs
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.features.sessions import ListArgs, SessionArgs, Sessions, check_size
from ktl_lsp.lsp.features.stream import EditorFeed
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.blocks import block_of_event
from ktl_lsp.sessions.bus import Item
from ktl_lsp.sessions.manager import RunSpec, SessionManager, shell_argv
from ktl_lsp.sessions.model import Frame, FrameType, now_ns
from ktl_lsp.sessions.shells import launch


@dataclass
class ShellArgs(StartArgs):
    """``ktl.shell``: the user's interactive shell as a session with command blocks."""

    shell: str | None = None  #: program (default ``$SHELL``)
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cols: int = 120
    rows: int = 30
    title: str | None = None

    def check(self) -> None:
        check_size(self.cols, self.rows)
        if self.shell is not None and not self.shell.strip():
            raise ArgumentError("field 'shell': must not be empty")


@dataclass
class BlockArgs:
    sessionId: str
    block: int

    def check(self) -> None:
        if self.block < 0:
            raise ArgumentError("field 'block': must be >= 0")


@dataclass
class RerunArgs(StartArgs):
    sessionId: str = ""
    block: int = 0
    #: "shell": typed again into the same shell (it must be running and at its prompt);
    #: "run": as its own ``ktl.run`` session in the block's directory.
    target: Literal["shell", "run"] = "shell"


@dataclass
class SearchArgs:
    q: str
    state: Literal["running", "done", "error", "cancelled", "interrupted"] | None = None
    kind: str | None = None
    since: str | None = None
    limit: int = 50

    def check(self) -> None:
        if not self.q.strip():
            raise ArgumentError("field 'q': must not be empty")
        if not 1 <= self.limit <= 1000:
            raise ArgumentError("field 'limit': must be between 1 and 1000")


class Shells(Feature):
    """Interactive shells, their command blocks, and search across sessions."""

    def __init__(self, server: KtlServer, runs: Runs, feed: EditorFeed, sessions: Sessions) -> None:
        self.server = server
        self.sessions = sessions
        self.runs = runs
        self.feed = feed
        server.when_sessions_open(self._listen)

    def _listen(self, manager: SessionManager) -> None:
        manager.listen(self._on_item)

    def _on_item(self, item: Item) -> None:
        # Inline on the bus: cheap unless the frame is a block's event.
        if not isinstance(item, Frame) or item.type is not FrameType.EVENT:
            return
        block = block_of_event(item.data)
        if block is None or not block.ended:
            return
        self.feed.flush_data()  # the block's output reaches the editor before its end
        self.server.send_raw_notification(
            "ktl/block", {"sessionId": item.session_id, **block.to_lsp(now_ns())}
        )

    @command("ktl.shell")
    async def shell(self, a: ShellArgs) -> dict[str, Any]:
        how = launch(a.shell)
        cwd = a.cwd or self.sessions.workspace_root()
        spec = RunSpec(
            argv=how.argv,
            cwd=cwd,
            env={**how.env, **a.env},
            cols=a.cols,
            rows=a.rows,
            title=a.title or how.name,
            kind="shell",
            meta={"shell": how.name, "integrated": how.integrated},
            blocks=True,
            command=how.argv[0],
        )
        return await self.runs.launch(spec, a)

    @command("ktl.session.blocks")
    async def blocks(self, a: SessionArgs) -> dict[str, Any]:
        manager = self.server.manager
        sid = await manager.resolve_id(a.sessionId)
        now = now_ns()
        return {"blocks": [b.to_lsp(now) for b in await manager.blocks(sid)]}

    @command("ktl.block.output")
    async def output(self, a: BlockArgs) -> dict[str, Any]:
        manager = self.server.manager
        sid = await manager.resolve_id(a.sessionId)
        return {"text": await manager.block_output(sid, a.block)}

    @command("ktl.block.rerun")
    async def rerun(self, a: RerunArgs) -> dict[str, Any]:
        manager = self.server.manager
        sid = await manager.resolve_id(a.sessionId)
        await manager.refuse_imported(sid, "be rerun")
        block = await manager.block(sid, a.block)
        if not block.command.strip():
            raise ArgumentError(f"block {a.block} of session {sid} has no command line")
        if a.target == "shell":
            manager.input(sid, block.command + "\r")
            return {"sessionId": sid}
        spec = RunSpec(
            argv=shell_argv(block.command),
            command=block.command,
            cwd=block.cwd
            if block.cwd and os.path.isdir(block.cwd)
            else self.sessions.workspace_root(),
            meta={"rerunOf": f"{sid}#block{block.index}"},
        )
        return await self.runs.launch(spec, a)

    @command("ktl.sessions.search")
    async def search(self, a: SearchArgs) -> dict[str, Any]:
        since = ListArgs(since=a.since).since_ns()
        hits = await self.server.manager.search(a.q, a.limit, a.state, a.kind, since)
        return {"matches": [h.to_json() for h in hits]}
