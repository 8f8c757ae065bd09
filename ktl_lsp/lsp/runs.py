"""Shows a started session in the editor and answers its command when it ends.

Every command that starts work goes through :class:`Runs`, so progress, log lines, both cancel
paths (the progress token and ``$/cancelRequest``), the replay link and the result shape are the
same for a local terminal, an exec, a Kubernetes operation, an attach and a plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ktl_lsp.lsp.arguments import StartArgs, TokenArgs
from ktl_lsp.lsp.feature import Feature, command_token
from ktl_lsp.lsp.features.replay import Replay
from ktl_lsp.lsp.features.session_host import SessionHost
from ktl_lsp.lsp.features.stream import EditorFeed
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager


def token_of(args: TokenArgs) -> int | str | None:
    """The argument object's progress token, else the request's own ``workDoneToken``."""
    return args.workDoneToken if args.workDoneToken is not None else command_token.get()


def _cancel(manager: SessionManager, session_id: str) -> None:
    manager.cancel(session_id)


class Runs(Feature):
    def __init__(
        self, server: KtlServer, feed: EditorFeed, replay: Replay, host: SessionHost
    ) -> None:
        self.server = server
        self.feed = feed
        self.replay = replay
        self.host = host

    def watcher(self, args: TokenArgs) -> Callable[[LiveSession], None]:
        """What shows a session in the editor (progress, log lines) as soon as it exists."""
        token = token_of(args)

        def watch(live: LiveSession) -> None:
            if live.id not in self.feed.watches:  # attached where it is already shown
                self.feed.watch(live.session, token)

        return watch

    async def launch(self, spec: RunSpec, args: StartArgs) -> dict[str, Any]:
        """Starts a terminal session watched from its first byte (nothing is missed); in the
        session host when ``sessions.persist`` is on."""
        if self.host.takes(spec):
            live = await self.host.launch(spec, self.watcher(args))
            return await self.answer(live, args.detach)
        manager = self.server.manager
        live = manager.create_pending(spec)
        self.feed.watch(live.session, token_of(args))
        manager.launch(live, spec)
        return await self.answer(live, args.detach)

    async def follow(
        self, live: LiveSession, args: TokenArgs, detach: bool = False
    ) -> dict[str, Any]:
        """Watches a session that is already running, then answers as :meth:`answer`."""
        self.feed.watch(live.session, token_of(args))
        return await self.answer(live, detach)

    async def answer(self, live: LiveSession, detach: bool) -> dict[str, Any]:
        """The command's result: at once with ``detach``, else when the session ends."""
        if detach:
            return live.session.result()
        manager = self.server.manager
        msg_id = self.server.protocol.msg_id
        hooks = self.server.ktl_protocol.cancel_hooks
        if msg_id is not None:
            hooks[msg_id] = lambda: _cancel(manager, live.id)
        self.replay.start_soon()
        try:
            session = await asyncio.shield(live.done)
        finally:
            if msg_id is not None:
                hooks.pop(msg_id, None)
        # Its frames are in the store for whoever reads next; git's part of its record (which
        # the result does not carry) lands on its own, a few ms later for a new directory.
        await manager.flush(provenance=False)
        result = {**session.result(), **live.result_extra}
        url = await self.replay.url(session.id)
        if url:
            result["replayUrl"] = url
        return result
