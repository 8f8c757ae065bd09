"""Whether a changing call may go ahead (``agents/writes``): never without a person's yes or
an allow-list entry the user wrote, and never without the approvals service to ask."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ktl_lsp.agents.writes import APPROVE, DENY, WritePolicy, WriteRefused


class Person:
    """Stands where the approvals service's person stands: answers and remembers the asks."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, list[str]]] = []

    async def ask(self, session: str, question: str, choices: Sequence[str]) -> str:
        self.asked.append((session, question, list(choices)))
        return self.answer


RUN_TESTS = {"argv": ["make", "test"]}


async def test_nothing_changes_while_allow_write_is_off() -> None:
    person = Person(APPROVE)
    policy = WritePolicy(allow_write=False, allow=[{"tool": "run", **RUN_TESTS}], approvals=person)
    with pytest.raises(WriteRefused, match=r"agents\.allowWrite is off"):
        await policy.permit("s1", "run", RUN_TESTS, "Run make test?")
    assert person.asked == [] and not policy.offered


async def test_an_allow_list_entry_needs_no_question_other_calls_do() -> None:
    person = Person(APPROVE)
    policy = WritePolicy(allow_write=True, allow=[{"tool": "run", **RUN_TESTS}], approvals=person)
    assert policy.offered
    assert await policy.permit("s1", "run", RUN_TESTS, "Run make test?") == "allow-list"
    assert person.asked == []
    other = {"argv": ["make", "deploy"]}
    assert await policy.permit("s2", "run", other, "Run make deploy?") == "approved"
    assert person.asked == [("s2", "Run make deploy?", [APPROVE, DENY])]


async def test_a_no_refuses_and_says_so() -> None:
    policy = WritePolicy(allow_write=True, approvals=Person(DENY))
    with pytest.raises(WriteRefused, match="was not approved \\(Deny\\)"):
        await policy.permit("s1", "k8s_apply", {"path": "x.yaml"}, "Apply x.yaml?")


async def test_without_the_approvals_service_only_the_allow_list_passes() -> None:
    policy = WritePolicy(allow_write=True, allow=[{"tool": "run", **RUN_TESTS}])
    assert not policy.offered  # the server offers no changing tools then
    assert await policy.permit("s1", "run", RUN_TESTS, "?") == "allow-list"
    with pytest.raises(WriteRefused, match="no approvals service runs"):
        await policy.permit("s1", "session_cancel", {"sessionId": "abcd"}, "Cancel abcd?")
