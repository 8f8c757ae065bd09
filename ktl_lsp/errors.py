"""The one base for requests that cannot be done as asked, whatever part refuses them.

Its message is written for the person who asked; entry points show it as it is (the language
server as ``InvalidParams``, the command line as an error line, the gateway as a 4xx answer).
"""

from __future__ import annotations


class UserError(Exception):
    """A request that cannot be done as asked; ``str(err)`` says why."""


#: How much of a value it was given an error message repeats.
ECHO_CHARS = 200


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was: an error about a value
    from outside must not send megabytes of it back."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"
