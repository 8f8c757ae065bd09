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

Another process on the same store (the editor's language server for a ``ktl-lsp mcp`` agent
call, a ``serve`` gateway for a CI run) sees the question in the session's saved meta
(:meth:`pending_everywhere`) and answers it with :meth:`answer_anywhere`: the answer is posted
to the store, the first posted is the only one, and the asking process, which reads posted
answers while it has questions, takes it if nobody here answered first. The poster then reads
the session's record to say whether its answer was the one taken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ktl_lsp.sessions.errors import SessionError

if TYPE_CHECKING:
    from ktl_lsp.sessions.manager import LiveSession, SessionManager

QuestionState = Literal["pending", "answered", "withdrawn"]

log = logging.getLogger(__name__)

#: How often a process with open questions reads the answers other processes posted.
POSTED_POLL_S = 0.25
#: How long an answer posted for another process waits to be taken before it is called lost.
TAKEN_WITHIN_S = 10.0


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

    @classmethod
    def from_record(cls, session_id: str, record: dict[str, Any]) -> Question:
        """A question as the asking process recorded it in ``meta.approvals``."""
        return cls(
            session_id,
            int(record.get("n") or 0),
            str(record.get("question") or ""),
            [str(c) for c in record.get("choices") or []],
            asked_at=float(record.get("askedAt") or 0),
            state=record.get("state") or "pending",
            answer=record.get("answer"),
            who=record.get("who"),
            answered_at=record.get("answeredAt"),
            detail=record.get("detail"),
        )


def _records(session_meta: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in session_meta.get("approvals") or [] if isinstance(i, dict)]


Listener = Callable[[Question], None]


class Approvals:
    """The questions of the sessions running in this process (held by the ``SessionManager``)."""

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager
        self._pending: dict[tuple[str, int], Question] = {}
        self._listeners: list[Listener] = []
        self._reading: asyncio.Task[None] | None = None

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
        if self._reading is None or self._reading.done():
            self._reading = asyncio.get_running_loop().create_task(self._take_posted())
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

    # -- across processes ----------------------------------------------------------------------
    async def pending_everywhere(self, session_id: str | None = None) -> list[Question]:
        """The questions waiting here and those of sessions other processes run on this store."""
        found = self.pending(session_id)
        for s in await self._manager.waiting_elsewhere():
            if session_id in (None, s.id):
                found += [
                    q
                    for q in (Question.from_record(s.id, r) for r in _records(s.meta))
                    if q.state == "pending"
                ]
        return sorted(found, key=lambda q: (q.asked_at, q.n))

    async def answer_anywhere(
        self, session_id: str, n: int, choice: str | None, who: str
    ) -> Question:
        """:meth:`answer` for a question asked here; else posted for the process that asked,
        returning once it took the answer (NotWaiting when another answer was taken)."""
        if (session_id, n) in self._pending or self._manager.is_running_here(session_id):
            return self.answer(session_id, n, choice, who)
        q = await self._asked_elsewhere(session_id, n)
        if choice is not None and choice not in q.choices:
            raise ApprovalError(
                f"{choice!r} is not a choice of question {n} ({', '.join(q.choices)})"
            )
        if not await self._manager.post_answer(session_id, n, choice, who):
            raise NotWaiting(f"question {n} of session {session_id} was already answered")
        deadline = time.monotonic() + TAKEN_WITHIN_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            settled = await self._asked_elsewhere(session_id, n, settled=True)
            if settled.state == "pending":
                continue
            if settled.state == "answered" and (settled.answer, settled.who) == (choice, who):
                return settled
            raise NotWaiting(self._already(settled))
        raise ApprovalError(
            f"session {session_id} did not take the answer within {TAKEN_WITHIN_S:.0f} s: "
            "the process running it may have stopped"
        )

    async def _asked_elsewhere(self, session_id: str, n: int, settled: bool = False) -> Question:
        """Question ``n`` as the session's record says it (pending, unless ``settled``)."""
        session = await self._manager.get(session_id)
        for record in _records(session.meta):
            if record.get("n") == n:
                q = Question.from_record(session_id, record)
                if q.state != "pending" and not settled:
                    raise NotWaiting(self._already(q))
                return q
        raise NotWaiting(f"session {session_id} has no question {n}")

    @staticmethod
    def _already(q: Question) -> str:
        return f"question {q.n} of session {q.session_id} is already {q.state}" + (
            f" ({q.answer} by {q.who})" if q.who else ""
        )

    async def _take_posted(self) -> None:
        """While questions wait here, takes the answers other processes post for them."""
        while self._pending:
            await asyncio.sleep(POSTED_POLL_S)
            try:
                posted = await self._manager.posted_answers(list(self._pending))
            except Exception as exc:  # a store that fails: answers given here still work
                log.warning("cannot read answers posted by other processes: %s", exc)
                continue
            for key, (choice, who) in posted.items():
                q = self._pending.get(key)
                if q is not None:
                    self._settle(q, "answered", choice if choice in q.choices else None, who)

    # -- inside ------------------------------------------------------------------------------
    def _next_n(self, live: LiveSession) -> int:
        recorded = live.session.meta.get("approvals")
        return len(recorded) + 1 if isinstance(recorded, list) else 1

    def _why_not_pending(self, session_id: str, n: int) -> str:
        live = self._manager.live.get(session_id)
        if live is None:
            return f"session {session_id} is not waiting for an answer here"
        for item in _records(live.session.meta):
            if item.get("n") == n:
                return self._already(Question.from_record(session_id, item))
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
