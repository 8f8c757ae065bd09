"""Plain data and the sink protocol shared by the POSIX and Windows runners."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class PtyError(Exception):
    """Base class for runner errors."""


class SpawnError(PtyError):
    """The child could not be started; the message says why in the user's terms."""


@dataclass(frozen=True)
class PtySpec:
    argv: list[str]
    cwd: str | None = None
    env: Mapping[str, str] | None = None
    cols: int = 120
    rows: int = 30


@dataclass(frozen=True)
class ExitInfo:
    exit_code: int
    signal: str | None = None
    #: Why it ended, when that is not the program's own exit code (a remote exec that failed).
    error: str | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> ExitInfo:
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            return cls(128 + signum, signal_name(signum))
        return cls(os.waitstatus_to_exitcode(status))


class PtySink(Protocol):
    """Receives what the child does. Called on the event loop thread."""

    def on_output(self, raw: bytes, text: str) -> None: ...


@dataclass
class Resolved:
    argv: list[str]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)


SIGNALS = {
    "INT": signal.SIGINT,
    "TERM": signal.SIGTERM,
    "KILL": signal.SIGKILL,
    "HUP": signal.SIGHUP,
}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name.removeprefix("SIG")
    except ValueError:
        return str(signum)


def child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The parent's environment plus the caller's, with a terminal that supports colour."""
    env = dict(os.environ)
    env.update({"TERM": "xterm-256color", "COLORTERM": "truecolor"})
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    if extra:
        env.update(extra)
    return env


def resolve(spec: PtySpec) -> Resolved:
    """Checks argv and cwd up front so failures are clear messages, not a dead child."""
    if not spec.argv or not spec.argv[0]:
        raise SpawnError("empty command")
    cwd = os.path.abspath(os.path.expanduser(spec.cwd)) if spec.cwd else os.getcwd()
    if not os.path.exists(cwd):
        raise SpawnError(f"working directory does not exist: {cwd}")
    if not os.path.isdir(cwd):
        raise SpawnError(f"working directory is not a directory: {cwd}")
    if not os.access(cwd, os.X_OK):
        raise SpawnError(f"permission denied entering working directory: {cwd}")
    env = child_env(spec.env)
    program = spec.argv[0]
    if os.sep in program or (os.altsep and os.altsep in program):
        path = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not os.path.exists(path):
            raise SpawnError(f"executable not found: {program}")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise SpawnError(f"permission denied: {program} is not executable")
    else:
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is None:
            raise SpawnError(f"executable not found: {program} (not on PATH)")
        path = found
    return Resolved([path, *spec.argv[1:]], cwd, env)
