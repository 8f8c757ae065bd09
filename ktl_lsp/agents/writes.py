"""Whether an agent's changing call (``run``, ``plan_run``, ``k8s_apply``, ``k8s_delete``,
``session_cancel``) may go ahead.

Nothing changes without a person: ``agents.allowWrite`` off refuses every such call; on, a call
goes ahead when it matches an allow-list entry the user wrote, or when a person answers yes
through the approvals service (``Approvals.ask``: the editor asks, the replay UI can answer).
Without an approvals service the server offers no changing tools at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ktl_lsp.errors import UserError

APPROVE = "Approve"
DENY = "Deny"


class Approvals(Protocol):
    """The approvals service: asks a person (about a session) and waits for their answer, one
    of ``choices``; raises when nobody can be asked."""

    async def ask(self, session: str, question: str, choices: Sequence[str]) -> str: ...


class WriteRefused(UserError):
    """A changing call that may not go ahead; the message says why and what would allow it."""


def _matches(entry: dict[str, Any], tool: str, args: dict[str, Any]) -> bool:
    return entry.get("tool") == tool and all(
        args.get(key) == wanted for key, wanted in entry.items() if key != "tool"
    )


@dataclass
class WritePolicy:
    allow_write: bool = False
    #: ``[{tool: run, argv: [make, test]}]``: calls equal to an entry in every field it names.
    allow: list[dict[str, Any]] = field(default_factory=list)
    approvals: Approvals | None = None

    @property
    def offered(self) -> bool:
        """Whether changing tools are offered at all (they need a way to ask a person)."""
        return self.allow_write and self.approvals is not None

    async def permit(self, session: str, tool: str, args: dict[str, Any], question: str) -> str:
        """How the call was allowed (``allow-list`` or ``approved``); raises WriteRefused."""
        if not self.allow_write:
            raise WriteRefused(
                f"{tool} changes things and agents.allowWrite is off; a person can turn it on"
            )
        if any(_matches(e, tool, args) for e in self.allow):
            return "allow-list"
        if self.approvals is None:
            raise WriteRefused(f"{tool} needs a person's approval and no approvals service runs")
        answer = await self.approvals.ask(session, question, [APPROVE, DENY])
        if answer != APPROVE:
            raise WriteRefused(f"{tool} was not approved ({answer or 'no answer'})")
        return "approved"
