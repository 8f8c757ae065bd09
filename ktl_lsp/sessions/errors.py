"""What the sessions core refuses to do, each with a message meant for the person who asked.

Every entry point (the language server, the command line, the gateway) shows these messages as
they are: as an ``InvalidParams`` answer, an error line, or an HTTP status.
"""

from __future__ import annotations

from ktl_lsp.errors import UserError


class SessionError(UserError):
    """A request about sessions that cannot be done; ``str(err)`` says why."""


class UnknownSession(SessionError, KeyError):
    def __str__(self) -> str:
        return f"unknown session {self.args[0]}"


class SessionNotRunning(SessionError):
    pass


class RecordingOff(SessionError):
    """The store could not be opened or written: sessions run, but nothing is kept."""
