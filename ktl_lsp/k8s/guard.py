"""Contexts that must not be changed (read-only) or changed only with a person's yes (protected).

The policy is the settings' ``k8s.readOnlyContexts`` and ``k8s.protectedContexts``: shell-style
globs (``prod-*``) matched against the kubeconfig context's name. It is enforced by
:class:`~ktl_lsp.k8s.sessions.K8sSessions`, below every entry point, so no command, plan node or
gateway route reaches the API server around it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Literal

from ktl_lsp.errors import UserError

Protection = Literal["read-only", "protected", "open"]


class ReadOnlyContext(UserError):
    """A change asked of a context the settings keep read-only."""


@dataclass(frozen=True)
class ContextPolicy:
    read_only: tuple[str, ...] = field(default=())
    protected: tuple[str, ...] = field(default=())

    def of(self, context: str) -> Protection:
        """Read-only wins over protected when both match."""
        if any(fnmatch.fnmatchcase(context, g) for g in self.read_only):
            return "read-only"
        if any(fnmatch.fnmatchcase(context, g) for g in self.protected):
            return "protected"
        return "open"

    def refuse_read_only(self, context: str, action: str) -> None:
        """Raises ``ReadOnlyContext`` (saying which setting) when ``context`` is read-only."""
        if self.of(context) == "read-only":
            globs = ", ".join(g for g in self.read_only if fnmatch.fnmatchcase(context, g))
            raise ReadOnlyContext(
                f"context {context} is read-only (k8s.readOnlyContexts: {globs}): {action} refused"
            )


@dataclass(frozen=True)
class Mutation:
    """A change about to be made: the question's verb and object, and its choice to go ahead."""

    verb: str  #: "Apply", "Delete", "Exec", "Forward ports", "Run a Job"
    what: str  #: "3 objects", "into pod/web-0"
    preposition: str = "to"  #: "Apply 3 objects *to* prod / shop"
