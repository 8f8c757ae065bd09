"""Printing for the terminal commands: messages, JSON, tables, sizes and durations."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from typing import TypeAlias

    #: What ``add_subparsers`` returns; each command module adds its parser to it.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def err(message: str) -> None:
    print(f"ktl-lsp: {message}", file=sys.stderr)


def store_notice(message: str) -> None:
    """A session manager's notice, written for the editor where "ktl: " says who speaks."""
    err(message.removeprefix("ktl: "))


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Rows (the first one is the header) in columns as wide as their widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())


def size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def duration(ms: int) -> str:
    secs = ms / 1000
    if secs < 60:
        return f"{secs:.1f}s"
    if secs < 3600:
        return f"{int(secs // 60)}m{int(secs % 60):02d}s"
    return f"{int(secs // 3600)}h{int(secs % 3600 // 60):02d}m"


#: A shell's status for a process that SIGPIPE ended, as it reports `seq 1e9 | head -1`.
EXIT_BROKEN_PIPE = 128 + 13


def reader_gone() -> int:
    """The reader of our output left (``| head``): stop quietly, as coreutils do.

    Output still buffered would fail again when Python flushes stdout at exit; it goes to
    /dev/null instead."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE
