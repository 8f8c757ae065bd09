"""Whether a changing call may go ahead (``agents/writes``), against the real approvals service
of a real session manager: never without ``allowWrite``, then an allow-list entry or a person's
yes; no answer in time is no; two answers or an answer racing a cancel decide once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ktl_lsp.agents.writes import APPROVE, DENY, WritePolicy, WriteRefused, entry_problem, matches
from ktl_lsp.sessions.approvals import NotWaiting, Question
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager

RUN_TESTS = {"tool": "run", "argv": ["make", "test"]}


@pytest_asyncio.fixture
async def manager(tmp_path: Path) -> AsyncIterator[SessionManager]:
    m = SessionManager.open(tmp_path / "s.db")
    yield m
    m.close()


def _call(manager: SessionManager) -> LiveSession:
    return manager.create(RunSpec(argv=[], command="mcp tool run", kind="agent"))


async def _asked(manager: SessionManager, session_id: str) -> Question:
    for _ in range(200):
        pending = manager.approvals.pending(session_id)
        if pending:
            return pending[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no question was asked")


def test_allow_list_entries_match_as_documented() -> None:
    assert matches(RUN_TESTS, "run", {"argv": ["make", "test"]})
    assert matches(RUN_TESTS, "run", {"argv": ["make", "test", "-j4"], "cwd": "/src"})
    assert not matches(RUN_TESTS, "run", {"argv": ["make"]})
    assert not matches(RUN_TESTS, "run", {"argv": ["make", "deploy"]})
    # A shell line is never matched by argv: "make test && rm -rf ~" starts the same way.
    assert not matches(RUN_TESTS, "run", {"command": "make test && rm -rf ~"})
    assert matches({"tool": "run", "command": "make test"}, "run", {"command": "make test"})
    # An environment changes what a command does: only an entry naming it matches.
    assert not matches(RUN_TESTS, "run", {"argv": ["make", "test"], "env": {"LD_PRELOAD": "x"}})
    assert not matches(RUN_TESTS, "plan_run", {"argv": ["make", "test"]})
    assert matches({"tool": "k8s_apply", "context": "kind"}, "k8s_apply", {"context": "kind"})
    assert entry_problem({"tool": "rm"}) is not None
    assert entry_problem({"tool": "run", "path": "x"}) is not None
    assert entry_problem({"tool": "run", "argv": []}) is not None
    assert entry_problem(RUN_TESTS) is None


async def test_nothing_changes_while_allow_write_is_off(manager: SessionManager) -> None:
    call = _call(manager)
    policy = WritePolicy(allow_write=False, allow=[RUN_TESTS])
    with pytest.raises(WriteRefused, match=r"agents\.allowWrite is off"):
        await policy.permit(manager.approvals, call.id, "run", {"argv": ["make", "test"]}, "?")
    assert manager.approvals.pending() == []


async def test_allow_listed_goes_ahead_other_calls_ask_and_record_the_answer(
    manager: SessionManager,
) -> None:
    call = _call(manager)
    policy = WritePolicy(allow_write=True, allow=[RUN_TESTS])
    how = await policy.permit(manager.approvals, call.id, "run", {"argv": ["make", "test"]}, "?")
    assert how == "allow-list" and manager.approvals.pending() == []

    asking = asyncio.create_task(
        policy.permit(manager.approvals, call.id, "run", {"argv": ["make", "deploy"]}, "Deploy?")
    )
    q = await _asked(manager, call.id)
    assert (q.text, q.choices) == ("Deploy?", [APPROVE, DENY])
    manager.approvals.answer(call.id, q.n, APPROVE, "alice")
    assert await asking == "approved by alice"
    recorded = call.session.meta["approvals"]
    assert [(r["answer"], r["who"]) for r in recorded] == [(APPROVE, "alice")]

    asking = asyncio.create_task(
        policy.permit(manager.approvals, call.id, "k8s_apply", {"path": "x.yaml"}, "Apply?")
    )
    q = await _asked(manager, call.id)
    manager.approvals.answer(call.id, q.n, DENY, "bob")
    with pytest.raises(WriteRefused, match="bob chose Deny"):
        await asking


async def test_no_answer_in_time_is_no(manager: SessionManager) -> None:
    call = _call(manager)
    policy = WritePolicy(allow_write=True, timeout_s=0.2)
    with pytest.raises(WriteRefused, match=r"no answer within 0\.2s"):
        await policy.permit(manager.approvals, call.id, "run", {"argv": ["x"]}, "?")
    assert manager.approvals.pending() == []
    assert call.session.meta["approvals"][0]["state"] == "withdrawn"


async def test_two_answers_and_an_answer_racing_a_cancel_decide_once(
    manager: SessionManager,
) -> None:
    call = _call(manager)
    policy = WritePolicy(allow_write=True)
    went_ahead: list[str] = []

    async def guarded() -> None:
        await policy.permit(manager.approvals, call.id, "run", {"argv": ["x"]}, "?")
        went_ahead.append("ran")

    task = asyncio.create_task(guarded())
    q = await _asked(manager, call.id)
    manager.approvals.answer(call.id, q.n, APPROVE, "first agent's person")
    with pytest.raises(NotWaiting, match="already answered"):
        manager.approvals.answer(call.id, q.n, APPROVE, "second")
    await task
    assert went_ahead == ["ran"]

    # The call is cancelled (its client went away) while it waits: the question is withdrawn
    # and a late yes finds nothing to approve.
    task = asyncio.create_task(guarded())
    q = await _asked(manager, call.id)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(NotWaiting, match="already withdrawn"):
        manager.approvals.answer(call.id, q.n, APPROVE, "late")
    assert went_ahead == ["ran"]
