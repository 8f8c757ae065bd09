"""The session host's socket: where it is, who may use it, and the messages on it.

One host per user and store: its socket is in an owner-only directory (``$KTL_LSP_HOST_DIR``,
else ``$XDG_RUNTIME_DIR/ktl-lsp``, else ``ktl-lsp-<uid>`` in the temp directory), named after a
hash of the store's path. A lock file beside it (``flock``) says which host owns the name, so of
two hosts starting at once exactly one serves; a socket left by a host that died is replaced.

A message is two big-endian 32-bit lengths, a JSON header (orjson) and a binary payload (frame
data, typed input), so terminal output crosses the socket without being re-encoded:

- request ``{"op", "id"?, ...}``: answered ``{"id", "ok": {...}}`` or ``{"id", "error"}`` when
  it has an ``id`` (input, resize, signal and cancel are sent without one);
- ``{"ev": "frame", "sid", "seq", "ts", "type"}`` + data: a frame the host recorded;
- ``{"ev": "state", "session": {...}}``: a watched session changed state (it ended).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ktl_lsp.errors import UserError
from ktl_lsp.sessions.manager import RunSpec
from ktl_lsp.sessions.model import Frame, FrameType, Session, State

_LENGTHS = struct.Struct(">II")
#: The largest header or payload taken from the socket (input and frames are far smaller).
MAX_PART = 64 * 1024 * 1024
#: The longest socket path every platform binds (sockaddr_un holds 104 bytes on macOS).
MAX_SOCKET_PATH = 103


class HostError(UserError):
    """The session host cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class HostPaths:
    """Where the host of one store listens, and its lock and log files."""

    directory: Path
    socket: Path
    lock: Path
    log: Path

    @classmethod
    def of(cls, store: Path) -> HostPaths:
        base = os.environ.get("KTL_LSP_HOST_DIR")
        if base:
            directory = Path(base)
        elif os.environ.get("XDG_RUNTIME_DIR"):
            directory = Path(os.environ["XDG_RUNTIME_DIR"]) / "ktl-lsp"
        else:
            directory = Path(tempfile.gettempdir()) / f"ktl-lsp-{os.getuid()}"
        digest = hashlib.sha256(os.fsencode(os.path.realpath(store))).hexdigest()[:16]
        stem = f"host-{digest}"
        return cls(
            directory,
            directory / f"{stem}.sock",
            directory / f"{stem}.lock",
            directory / f"{stem}.log",
        )

    def private_dir(self) -> None:
        """Creates the directory owner-only, or checks one that exists is ours and private
        (a directory of another user is refused: its sockets could be anyone's)."""
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            st = os.lstat(self.directory)
        except OSError as exc:
            raise HostError(f"cannot create the session host's directory: {exc}") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise HostError(f"{self.directory} is not a directory: the session host cannot use it")
        if st.st_uid != os.getuid():
            raise HostError(
                f"{self.directory} belongs to another user: the session host will not use it "
                "(set KTL_LSP_HOST_DIR to a directory of yours)"
            )
        if st.st_mode & 0o077:
            os.chmod(self.directory, 0o700)
        if len(os.fsencode(self.socket)) > MAX_SOCKET_PATH:
            raise HostError(
                f"the session host's socket path {self.socket} is too long for a Unix socket: "
                "set KTL_LSP_HOST_DIR to a shorter directory"
            )

    def check_socket(self) -> bool:
        """Whether a socket is there; raises HostError for one that is not ours."""
        try:
            st = os.lstat(self.socket)
        except FileNotFoundError:
            return False
        if st.st_uid != os.getuid():
            raise HostError(
                f"{self.socket} belongs to another user: refusing to talk to it "
                "(remove it, or set KTL_LSP_HOST_DIR)"
            )
        if not stat.S_ISSOCK(st.st_mode):
            raise HostError(f"{self.socket} is not a socket: remove it to use the session host")
        return True


def pack(header: dict[str, Any], payload: bytes = b"") -> bytes:
    head = orjson.dumps(header)
    return _LENGTHS.pack(len(head), len(payload)) + head + payload


async def read_message(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes] | None:
    """The next message, or None at the end of the stream."""
    try:
        sizes = await reader.readexactly(_LENGTHS.size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    head_len, data_len = _LENGTHS.unpack(sizes)
    if head_len > MAX_PART or data_len > MAX_PART:
        raise HostError("the session host's socket sent a message too large to be one of ours")
    try:
        head = await reader.readexactly(head_len)
        payload = await reader.readexactly(data_len) if data_len else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    header = orjson.loads(head)
    if not isinstance(header, dict):
        raise HostError("the session host's socket sent a message that is not ours")
    return header, payload


def frame_message(frame: Frame) -> bytes:
    header = {
        "ev": "frame",
        "sid": frame.session_id,
        "seq": frame.seq,
        "ts": frame.ts_ns,
        "type": str(frame.type),
    }
    return pack(header, frame.data)


def frame_of(header: dict[str, Any], payload: bytes) -> Frame:
    return Frame(header["sid"], header["seq"], header["ts"], FrameType(header["type"]), payload)


def session_to_wire(session: Session) -> dict[str, Any]:
    return {**dataclasses.asdict(session), "state": str(session.state)}


def session_of(wire: dict[str, Any]) -> Session:
    return Session(**{**wire, "state": State(wire["state"])})


def spec_to_wire(spec: RunSpec) -> dict[str, Any]:
    """A terminal session's spec (one that opens a local process: no ``opener``)."""
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name != "opener"}


def spec_of(wire: dict[str, Any]) -> RunSpec:
    names = {f.name for f in dataclasses.fields(RunSpec)} - {"opener"}
    return RunSpec(**{k: v for k, v in wire.items() if k in names})
