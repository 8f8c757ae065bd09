"""Whether an agent's changing call (``run``, ``plan_run``, ``k8s_apply``, ``k8s_delete``,
``session_cancel``) may go ahead.

Nothing changes without a person: ``agents.allowWrite`` off refuses every such call (the server
does not even offer the tools); on, a call goes ahead when it matches an allow-list entry the
user wrote, or when a person answers yes through the approvals service
(:class:`~ktl_lsp.sessions.approvals.Approvals`: the gateway's ``/api/v1/approvals``, the replay
UI's banner, the editor of the same process). No answer within ``approvalTimeout`` is no.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ktl_lsp.errors import UserError
from ktl_lsp.sessions.approvals import Approvals

APPROVE = "Approve"
DENY = "Deny"
#: The tools that change things, offered only with ``agents.allowWrite``.
WRITE_TOOLS = ("run", "plan_run", "k8s_apply", "k8s_delete", "session_cancel")
#: What an allow-list entry may name beside ``tool``, per tool.
ENTRY_KEYS = {
    "run": ("argv", "command", "cwd", "env"),
    "plan_run": ("path", "nodes"),
    "k8s_apply": ("path", "context", "namespace"),
    "k8s_delete": ("path", "context", "namespace"),
    "session_cancel": ("sessionId",),
}


class WriteRefused(UserError):
    """A changing call that may not go ahead; the message says why and what would allow it."""


def entry_problem(entry: Any) -> str | None:
    """Why ``entry`` cannot be an allow-list entry, or None."""
    if not isinstance(entry, Mapping):
        return "should be an object like {tool: run, argv: [make, test]}"
    tool = entry.get("tool")
    if tool not in ENTRY_KEYS:
        return f"tool should be one of {', '.join(WRITE_TOOLS)}, got {tool!r}"
    unknown = sorted(set(entry) - {"tool", *ENTRY_KEYS[tool]})
    if unknown:
        return f"{tool} entries may name {', '.join(ENTRY_KEYS[tool])}, not {unknown[0]}"
    argv = entry.get("argv")
    if argv is not None and not (
        isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)
    ):
        return "argv should be a non-empty list of strings"
    return None


def matches(entry: Mapping[str, Any], tool: str, args: Mapping[str, Any]) -> bool:
    """Whether a call is allowed by ``entry``: the same tool, ``argv`` a prefix of the call's
    argv, every other field the entry names equal to the call's; a call that sets ``env``
    matches only an entry naming the same ``env`` (it changes what a command does)."""
    if entry.get("tool") != tool:
        return False
    if args.get("env") and entry.get("env") != args.get("env"):
        return False
    for key, wanted in entry.items():
        got = args.get(key)
        if key == "tool":
            continue
        if key == "argv":
            if not isinstance(got, list) or got[: len(wanted)] != wanted:
                return False
        elif got != wanted:
            return False
    return True


@dataclass
class WritePolicy:
    allow_write: bool = False
    #: ``[{tool: run, argv: [make, test]}]``: calls that go ahead without a question.
    allow: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds a question waits for a person; no answer in time is no.
    timeout_s: float = 120.0

    def require_write(self, tool: str) -> None:
        if not self.allow_write:
            raise WriteRefused(
                f"{tool} changes things and agents.allowWrite is off; a person can turn it on"
            )

    def allowed(self, tool: str, args: Mapping[str, Any]) -> bool:
        return any(matches(e, tool, args) for e in self.allow)

    async def permit(
        self,
        approvals: Approvals,
        session_id: str,
        tool: str,
        args: Mapping[str, Any],
        question: str,
        detail: str | None = None,
    ) -> str:
        """How the call was allowed (``allow-list`` or ``approved by WHO``); raises
        WriteRefused. The question is the session's (``session_id``): it waits there, and its
        answer is recorded there."""
        self.require_write(tool)
        if self.allowed(tool, args):
            return "allow-list"
        q = await approvals.ask(
            session_id, question, [APPROVE, DENY], detail=detail, timeout_s=self.timeout_s
        )
        if q.answer == APPROVE:
            return f"approved by {q.who}"
        if q.state == "withdrawn":
            raise WriteRefused(f"{tool} refused: no answer within {self.timeout_s:g}s")
        raise WriteRefused(f"{tool} refused: {q.who} chose {q.answer or 'nothing (dismissed)'}")
