"""Questions a running session puts to a person, and their answers, whoever gives them.

Work that must not go on without a person (an apply to a protected context, a plan node that
says ``approve: true``) calls :meth:`Approvals.ask` and waits. Whoever can answer listens
(:meth:`Approvals.listen`): the language server asks the editor with
``window/showMessageRequest``, the gateway lists :meth:`Approvals.pending` and takes an answer
over HTTP, an agent could do the same. The first answer wins; a later one is refused. Every
question and answer is recorded in the session twice: as an event frame (the replay shows
when it was asked and answered) and in ``meta.approvals`` (the session list and bundles show
who approved what). A session cancelled while it waits withdraws its question: no answer is
no action.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ktl_lsp.sessions.errors import SessionError

if TYPE_CHECKING:
    from ktl_lsp.sessions.manager import LiveSession, SessionManager

QuestionState = Literal["pending", "answered", "withdrawn"]


class ApprovalError(SessionError):
    """An answer that cannot be taken (not one of the question's choices)."""


class NotWaiting(ApprovalError):
    """No such question is waiting: never asked, already answered, or withdrawn."""


@dataclass
class Question:
    """One question of one session; ``n`` counts from 1 within the session."""

    session_id: str
    n: int
    text: str
    choices: list[str]
    asked_at: float = field(default_factory=time.time)
    state: QuestionState = "pending"
    #: The choice taken; None while pending, when withdrawn, or when the person dismissed it.
    answer: str | None = None
    who: str | None = None
    answered_at: float | None = None
    #: Extra context for the person (the diff of a dry run, the finding that paused a plan).
    detail: str | None = None
    _future: asyncio.Future[Question] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sessionId": self.session_id,
            "n": self.n,
            "question": self.text,
            "choices": list(self.choices),
            "state": self.state,
            "askedAt": self.asked_at,
        }
        if self.detail:
            out["detail"] = self.detail
        if self.state != "pending":
            out.update(answer=self.answer, who=self.who, answeredAt=self.answered_at)
        return out


Listener = Callable[[Question], None]


class Approvals:
    """The questions of the sessions running in this process (held by the ``SessionManager``)."""

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager
        self._pending: dict[tuple[str, int], Question] = {}
        self._listeners: list[Listener] = []

    def listen(self, fn: Listener) -> Callable[[], None]:
        """Calls ``fn`` with each question when it is asked and again when it is settled."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def pending(self, session_id: str | None = None) -> list[Question]:
        """The questions waiting for an answer (of one session, or all), oldest first."""
        return sorted(
            (q for q in self._pending.values() if session_id in (None, q.session_id)),
            key=lambda q: (q.asked_at, q.n),
        )

    async def ask(
        self,
        session_id: str,
        question: str,
        choices: list[str],
        *,
        detail: str | None = None,
        timeout_s: float | None = None,
    ) -> Question:
        """Asks and waits; the settled question says which choice was taken and by whom.

        ``answer`` is None when nobody chose (dismissed, timed out, the session cancelled):
        callers treat that as no. Cancelling the caller withdraws the question.
        """
        if not choices:
            raise ValueError("a question needs at least one choice")
        live = self._manager.get_live(session_id)
        q = Question(session_id, self._next_n(live), question, list(choices), detail=detail)
        q._future = asyncio.get_running_loop().create_future()
        self._pending[(session_id, q.n)] = q
        self._record(live, q)
        try:
            return await asyncio.wait_for(asyncio.shield(q._future), timeout_s)
        except TimeoutError:
            self._settle(q, "withdrawn", None, "timeout")
            return q
        except asyncio.CancelledError:
            self._settle(q, "withdrawn", None, "cancelled")
            raise

    def answer(self, session_id: str, n: int, choice: str | None, who: str) -> Question:
        """Takes ``choice`` (None: dismissed, which is no) for question ``n`` of a session."""
        q = self._pending.get((session_id, n))
        if q is None:
            raise NotWaiting(self._why_not_pending(session_id, n))
        if choice is not None and choice not in q.choices:
            raise ApprovalError(
                f"{choice!r} is not a choice of question {n} ({', '.join(q.choices)})"
            )
        self._settle(q, "answered", choice, who)
        return q

    # -- inside ------------------------------------------------------------------------------
    def _next_n(self, live: LiveSession) -> int:
        recorded = live.session.meta.get("approvals")
        return len(recorded) + 1 if isinstance(recorded, list) else 1

    def _why_not_pending(self, session_id: str, n: int) -> str:
        live = self._manager.live.get(session_id)
        if live is None:
            return f"session {session_id} is not waiting for an answer here"
        for item in live.session.meta.get("approvals") or []:
            if isinstance(item, dict) and item.get("n") == n:
                return f"question {n} of session {session_id} is already {item.get('state')}" + (
                    f" ({item.get('answer')} by {item.get('who')})" if item.get("who") else ""
                )
        return f"session {session_id} has no question {n}"

    def _settle(self, q: Question, state: QuestionState, choice: str | None, who: str) -> None:
        if q.state != "pending":
            return
        q.state, q.answer, q.who, q.answered_at = state, choice, who, time.time()
        self._pending.pop((q.session_id, q.n), None)
        live = self._manager.live.get(q.session_id)
        if live is not None:
            self._record(live, q)
        if q._future is not None and not q._future.done():
            q._future.set_result(q)

    def _record(self, live: LiveSession, q: Question) -> None:
        record = q.to_json()
        record.pop("sessionId")
        live.event(approval=record)
        items = [
            i
            for i in live.session.meta.get("approvals") or []
            if not (isinstance(i, dict) and i.get("n") == q.n)
        ]
        live.session.meta["approvals"] = [*items, record]
        waiting = [{"n": p.n, "question": p.text} for p in self.pending(q.session_id)]
        if waiting:
            live.session.meta["waiting"] = waiting
        else:
            live.session.meta.pop("waiting", None)
        self._manager.save(live.session)
        for fn in list(self._listeners):
            fn(q)
