"""The one base for requests that cannot be done as asked, whatever part refuses them.

Its message is written for the person who asked; entry points show it as it is (the language
server as ``InvalidParams``, the command line as an error line, the gateway as a 4xx answer).
"""

from __future__ import annotations


class UserError(Exception):
    """A request that cannot be done as asked; ``str(err)`` says why."""
