"""What the sessions core refuses to do, each with a message meant for the person who asked.

Every entry point (the language server, the command line, the gateway) shows these messages as
they are: as an ``InvalidParams`` answer, an error line, or an HTTP status.
"""

from __future__ import annotations

from ktl_lsp.errors import UserError


class SessionError(UserError):
    """A request about sessions that cannot be done; ``str(err)`` says why."""


#: Candidates an ambiguous prefix lists.
SHOWN_CANDIDATES = 5


class UnknownSession(SessionError, KeyError):
    """No session has this id (or this unique prefix). ``args``: the id, then a hint."""

    def __str__(self) -> str:
        hint = f" ({self.args[1]})" if len(self.args) > 1 else ""
        return f"unknown session {self.args[0]}{hint}"


class AmbiguousSession(UnknownSession):
    """A prefix that more than one session's id starts with.

    A kind of UnknownSession (no one session is known by that text): every handler that
    reports an unknown session reports this one correctly, with its candidates, and only
    callers with a better answer (the gateway's 409) need to tell them apart.
    """

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        super().__init__(prefix, candidates)
        self.prefix = prefix
        self.candidates = candidates

    def __str__(self) -> str:
        shown = ", ".join(self.candidates[:SHOWN_CANDIDATES])
        more = ", …" if len(self.candidates) > SHOWN_CANDIDATES else ""
        return f"ambiguous session {self.prefix}: it could be {shown}{more}"


class SessionNotRunning(SessionError):
    pass


class ImportedSession(SessionError):
    """A session loaded from a bundle: it can be replayed, searched, compared, pinned and
    deleted, never driven (input, resize, signals, cancel, rerun, resume)."""

    def __init__(self, session_id: str, source: str | None, action: str) -> None:
        where = f" from {source}" if source else ""
        super().__init__(
            f"session {session_id} was imported{where} and is read-only: it cannot {action}"
        )


class RecordingOff(SessionError):
    """The store could not be opened or written: sessions run, but nothing is kept."""


class UnknownBlock(SessionError):
    """A session has no command block with that index, or the reference is not one."""
