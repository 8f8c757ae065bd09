"""How Kubernetes work looks in its session's terminal: one palette, one way to say it failed."""

from __future__ import annotations

GREEN, YELLOW, RED, DIM, BOLD, RESET = (
    "\x1b[32m",
    "\x1b[33m",
    "\x1b[31m",
    "\x1b[2m",
    "\x1b[1m",
    "\x1b[0m",
)


def error_line(message: str) -> str:
    return f"{RED}error: {message}{RESET}\r\n"
