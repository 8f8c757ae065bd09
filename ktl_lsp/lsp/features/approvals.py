"""Questions sessions put to a person, asked in the editor; ``ktl.approvals.*`` for any client.

Each question of :class:`~ktl_lsp.sessions.approvals.Approvals` (a change to a protected
context, a plan that waits) is asked with ``window/showMessageRequest`` as soon as it is put;
the choice is the answer, a dismissed dialog a no. The gateway and other clients may answer
first (``ktl.approvals.answer``); the editor's later choice is then ignored.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp

from ktl_lsp.aio import background
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.approvals import ApprovalError, Question
from ktl_lsp.sessions.manager import SessionManager, requester

log = logging.getLogger(__name__)


@dataclass
class ListArgs:
    sessionId: str | None = None  #: one session's (an id or unique prefix); all when absent


@dataclass
class AnswerArgs:
    sessionId: str
    n: int
    choice: str | None  #: one of the question's choices; null declines


def editor_who() -> str:
    return f"{requester()} (editor)"


class Approvals(Feature):
    def __init__(self, server: KtlServer) -> None:
        self.server = server
        server.when_sessions_open(self._listen)

    def _listen(self, manager: SessionManager) -> None:
        manager.approvals.listen(self._asked)

    def _asked(self, q: Question) -> None:
        if q.state == "pending":
            background(self._ask_editor(q), f"ktl-approval-{q.session_id}-{q.n}")

    async def _ask_editor(self, q: Question) -> None:
        params = lsp.ShowMessageRequestParams(
            type=lsp.MessageType.Warning,
            message=f"ktl: {q.text}",
            actions=[lsp.MessageActionItem(title=c) for c in q.choices],
        )
        try:
            picked = await self.server.window_show_message_request_async(params)
        except Exception:
            log.info("the editor could not be asked %r; it waits for another answer", q.text)
            return
        choice = picked.title if picked is not None else None
        # Answered elsewhere first (the gateway, another client), or withdrawn: nothing to do.
        with contextlib.suppress(ApprovalError):
            self.server.manager.approvals.answer(q.session_id, q.n, choice, editor_who())

    @command("ktl.approvals.list")
    async def list(self, a: ListArgs) -> dict[str, Any]:
        manager = self.server.manager
        sid = await manager.resolve_id(a.sessionId) if a.sessionId else None
        return {"pending": [q.to_json() for q in manager.approvals.pending(sid)]}

    @command("ktl.approvals.answer")
    async def answer(self, a: AnswerArgs) -> dict[str, Any]:
        manager = self.server.manager
        sid = await manager.resolve_id(a.sessionId)
        return manager.approvals.answer(sid, a.n, a.choice, editor_who()).to_json()
