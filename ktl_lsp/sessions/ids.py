"""Session ids: unique, sortable by creation time, and distinct in their first 8 characters.

A fixed-width base-36 rendering of the nanosecond clock sorts like the clock and changes its
8-character prefix every ~2 ms, so editor log prefixes tell sessions apart; a random suffix keeps
two processes (the editor's server and a CLI run) from ever colliding.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_WIDTH = 12  # 36**12 ns lasts until the year 2119
_lock = threading.Lock()
_last = 0


def _base36(n: int, width: int) -> str:
    chars = []
    while n:
        n, r = divmod(n, 36)
        chars.append(_ALPHABET[r])
    return "".join(reversed(chars)).rjust(width, "0")


def new_id() -> str:
    global _last
    with _lock:
        ns = max(time.time_ns(), _last + 1)
        _last = ns
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(4))
    return f"{_base36(ns, _WIDTH)}{suffix}"


def is_valid(session_id: str) -> bool:
    """Ids travel in URLs and file names: one path segment, printable, bounded."""
    return (
        0 < len(session_id) <= 200
        and session_id.strip() == session_id
        and all(c.isalnum() or c in "-_.:" for c in session_id)
        and session_id not in (".", "..")
    )
