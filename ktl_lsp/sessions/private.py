"""Owner-only files and directories for the session store and what is written from it.

The store holds everything a user typed and saw, so it is readable by its owner only, like the
gateway token beside it. Modes are given when a file or directory is created (``os.open`` /
``os.mkdir`` with a mode: the umask can only narrow it), never by changing the process-wide
umask, which other threads would see.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_dirs(path: Path) -> None:
    """Creates ``path`` and its missing parents, owner-only. Directories that exist are left
    as they are: a shared parent may be shared on purpose."""
    missing: list[Path] = []
    p = path
    while not os.path.lexists(p) and p.parent != p:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.mkdir(d, DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory")


def create_file(path: Path) -> None:
    """Creates ``path`` empty and owner-only, unless it exists. An empty file is a new SQLite
    database, and SQLite gives its ``-wal`` and ``-shm`` files the database's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def tighten(paths: Iterable[Path]) -> str | None:
    """Takes group and other bits off ``paths`` that exist; what could not be done, or None."""
    failed: list[str] = []
    for path in paths:
        try:
            st = os.stat(path)
            if st.st_mode & 0o077:
                os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:
            failed.append(f"{path} ({exc.strerror or exc})")
    if not failed:
        return None
    return f"cannot make {', '.join(failed)} readable by you only: other local users may read it"
