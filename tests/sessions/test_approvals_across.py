"""Questions asked in one process and answered in another (two session managers on one real
store file, as the editor's server and ``ktl-lsp mcp`` are): the first answer is the only one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ktl_lsp.sessions.approvals import ApprovalError, NotWaiting, Question
from ktl_lsp.sessions.manager import RunSpec, SessionManager


@pytest_asyncio.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[SessionManager, SessionManager]]:
    asker = SessionManager.open(tmp_path / "s.db")
    other = SessionManager.open(tmp_path / "s.db")
    yield asker, other
    other.close()
    asker.close()


async def _seen(other: SessionManager) -> Question:
    for _ in range(400):
        found = await other.approvals.pending_everywhere()
        if found:
            return found[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the other process never saw the question")


async def test_answered_in_another_process_once(
    two: tuple[SessionManager, SessionManager],
) -> None:
    asker, other = two
    live = asker.create(RunSpec(argv=[], command="deploy", kind="agent"))
    asking = asyncio.create_task(asker.approvals.ask(live.id, "Deploy?", ["Go", "Stop"]))
    q = await _seen(other)
    assert (q.session_id, q.n, q.text, q.choices) == (live.id, 1, "Deploy?", ["Go", "Stop"])
    assert other.approvals.pending() == []  # not this process's own
    with pytest.raises(ApprovalError, match="'Maybe' is not a choice"):
        await other.approvals.answer_anywhere(live.id, 1, "Maybe", "bob")
    first, second = await asyncio.gather(
        other.approvals.answer_anywhere(live.id, 1, "Go", "alice"),
        other.approvals.answer_anywhere(live.id, 1, "Stop", "bob"),
        return_exceptions=True,
    )
    answered = [r for r in (first, second) if isinstance(r, Question)]
    refused = [r for r in (first, second) if isinstance(r, NotWaiting)]
    assert len(answered) == 1 and len(refused) == 1
    settled = await asyncio.wait_for(asking, 10)
    assert (settled.answer, settled.who) == (answered[0].answer, answered[0].who)
    record = live.session.meta["approvals"][-1]
    assert record["state"] == "answered" and record["who"] == settled.who
    assert await other.approvals.pending_everywhere() == []


async def test_an_answer_given_here_first_wins_over_one_posted(
    two: tuple[SessionManager, SessionManager],
) -> None:
    asker, other = two
    live = asker.create(RunSpec(argv=[], command="deploy", kind="agent"))
    asking = asyncio.create_task(asker.approvals.ask(live.id, "Deploy?", ["Go", "Stop"]))
    await _seen(other)
    asker.approvals.answer(live.id, 1, "Stop", "here")
    with pytest.raises(NotWaiting, match=r"already answered \(Stop by here\)"):
        await other.approvals.answer_anywhere(live.id, 1, "Go", "there")
    assert (await asking).answer == "Stop"


async def test_a_withdrawn_question_takes_no_answer(
    two: tuple[SessionManager, SessionManager],
) -> None:
    asker, other = two
    live = asker.create(RunSpec(argv=[], command="deploy", kind="agent"))
    asking = asyncio.create_task(asker.approvals.ask(live.id, "Deploy?", ["Go", "Stop"]))
    await _seen(other)
    asking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asking
    await asker.flush()
    with pytest.raises(NotWaiting, match="already withdrawn"):
        await other.approvals.answer_anywhere(live.id, 1, "Go", "late")
    with pytest.raises(NotWaiting, match="has no question 7"):
        await other.approvals.answer_anywhere(live.id, 7, "Go", "late")
