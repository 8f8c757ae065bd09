"""Questions sessions put to a person, asked in the editor; ``ktl.approvals.*`` for any client.

Each question of :class:`~ktl_lsp.sessions.approvals.Approvals` (a change to a protected
context, a plan that waits) is asked with ``window/showMessageRequest`` as soon as it is put;
the choice is the answer, a dismissed dialog a no. The gateway and other clients may answer
first (``ktl.approvals.answer``); the editor's later choice is then ignored.

Agents' calls run in another process (``ktl-lsp mcp``, which the editor's assistant starts) on
the same store: their questions are read from the store every second and asked here too, the
answer posted back to that process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp

from ktl_lsp.aio import background
from ktl_lsp.k8s.sessions import SHOW_DIFF
from ktl_lsp.lsp.arguments import ArgumentError
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.approvals import ApprovalError, NotWaiting, Question
from ktl_lsp.sessions.manager import SessionManager, requester

log = logging.getLogger(__name__)

#: How often the questions of agents' calls in other processes are looked for.
ELSEWHERE_POLL_S = 1.0


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
        self._asked_here: set[tuple[str, int]] = set()
        server.when_sessions_open(self._listen)

    def _listen(self, manager: SessionManager) -> None:
        manager.approvals.listen(self._asked)
        background(self._watch_elsewhere(manager), "ktl-approvals-elsewhere")

    async def _watch_elsewhere(self, manager: SessionManager) -> None:
        """Asks the editor the questions of agents' calls that other processes run."""
        while manager.recording:
            await asyncio.sleep(ELSEWHERE_POLL_S)
            try:
                waiting = await manager.approvals.pending_everywhere()
            except Exception as exc:
                log.debug("cannot read other processes' questions: %s", exc)
                continue
            for q in waiting:
                key = (q.session_id, q.n)
                if key in self._asked_here or manager.is_running_here(q.session_id):
                    continue
                session = await manager.get(q.session_id)
                if str(session.meta.get("requester") or "").startswith("agent:"):
                    self._asked_here.add(key)
                    background(self._ask_editor(q), f"ktl-approval-{q.session_id}-{q.n}")

    def _asked(self, q: Question) -> None:
        if q.state == "pending":
            background(self._ask_editor(q), f"ktl-approval-{q.session_id}-{q.n}")

    async def ask_editor(self, text: str, choices: list[str]) -> str | None:
        """The person's choice in the editor; None when dismissed (no)."""
        params = lsp.ShowMessageRequestParams(
            type=lsp.MessageType.Warning,
            message=f"ktl: {text}",
            actions=[lsp.MessageActionItem(title=c) for c in choices],
        )
        try:
            picked = await self.server.window_show_message_request_async(params)
            return picked.title if picked is not None else None
        except Exception:
            # An editor that cannot ask declines: no answer is no action, never a hang.
            log.info("the editor could not be asked %r: declined", text)
            return None

    async def _ask_editor(self, q: Question) -> None:
        choice = await self.ask_editor(q.text, q.choices)
        # Answered elsewhere first (the gateway, another client), or withdrawn: nothing to do.
        with contextlib.suppress(ApprovalError):
            await self.server.manager.approvals.answer_anywhere(
                q.session_id, q.n, choice, editor_who()
            )

    @command("ktl.approvals.list")
    async def list(self, a: ListArgs) -> dict[str, Any]:
        manager = self.server.manager
        sid = await manager.resolve_id(a.sessionId) if a.sessionId else None
        return {"pending": [q.to_json() for q in await manager.approvals.pending_everywhere(sid)]}

    @command("ktl.plan.approve")
    async def plan_approve(self, a: ListArgs) -> dict[str, Any]:
        """The oldest open question of a plan (or any session): its first choice (Approve)."""
        return await self._decide(a, approve=True)

    @command("ktl.plan.deny")
    async def plan_deny(self, a: ListArgs) -> dict[str, Any]:
        """The oldest open question: its last choice (Deny, Skip, Cancel)."""
        return await self._decide(a, approve=False)

    async def _decide(self, a: ListArgs, approve: bool) -> dict[str, Any]:
        manager = self.server.manager
        if not a.sessionId:
            raise ArgumentError("field 'sessionId': required")
        sid = await manager.resolve_id(a.sessionId)
        pending = await manager.approvals.pending_everywhere(sid)
        if not pending:
            raise NotWaiting(f"session {sid} is not waiting for an answer")
        q = pending[0]
        offered = [c for c in q.choices if c != SHOW_DIFF]
        choice = offered[0] if approve else q.choices[-1]
        answered = await manager.approvals.answer_anywhere(sid, q.n, choice, editor_who())
        return answered.to_json()

    @command("ktl.approvals.answer")
    async def answer(self, a: AnswerArgs) -> dict[str, Any]:
        manager = self.server.manager
        sid = await manager.resolve_id(a.sessionId)
        answered = await manager.approvals.answer_anywhere(sid, a.n, a.choice, editor_who())
        return answered.to_json()
