"""The API server's channel websocket protocol (exec, attach, port-forward), as plain functions.

Every binary message starts with one byte naming its channel. For exec: 0 stdin, 1 stdout,
2 stderr, 3 the final ``Status`` (JSON), 4 terminal size (JSON ``{"Width", "Height"}``); the
``v5.channel.k8s.io`` protocol adds 255 "close" (``[255, channel]`` half-closes that stream, so
stdin can end without ending the session). For port-forward the i-th requested port uses
channels 2i (data) and 2i+1 (errors), and the server's first message on each starts with the
port number as two little-endian bytes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
#: Newest first: the server picks the first one it speaks.
EXEC_PROTOCOLS = (V5, V4)
PORT_FORWARD_PROTOCOLS = (V4,)


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes((channel,)) + data


def resize_frame(cols: int, rows: int) -> bytes:
    return frame(RESIZE, json.dumps({"Width": cols, "Height": rows}).encode())


def close_frame(channel: int) -> bytes:
    """v5 only: the client will send nothing more on ``channel``."""
    return frame(CLOSE, bytes((channel,)))


def split(message: bytes) -> tuple[int, bytes]:
    if not message:
        return -1, b""
    return message[0], message[1:]


@dataclass(frozen=True)
class ExecStatus:
    """What the status channel said about the command's end."""

    exit_code: int
    error: str | None = None  #: a failure that is not the command's own exit code

    @property
    def missing_program(self) -> bool:
        text = (self.error or "").lower()
        return "not found" in text or "no such file" in text


def exec_status(payload: bytes) -> ExecStatus:
    """The exit code from the final ``Status``: ``Success`` is 0, ``NonZeroExitCode`` carries
    the code as an ``ExitCode`` cause, anything else is an error with the server's message."""
    try:
        data = json.loads(payload)
    except ValueError:
        text = payload.decode("utf-8", "replace").strip()
        return ExecStatus(1, text[:500] or "the exec stream ended with an unreadable status")
    if not isinstance(data, dict):
        return ExecStatus(1, "the exec stream ended with an unreadable status")
    if data.get("status") == "Success":
        return ExecStatus(0)
    details = data.get("details") if isinstance(data.get("details"), dict) else {}
    for cause in (details or {}).get("causes") or []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return ExecStatus(int(str(cause.get("message"))))
            except ValueError:
                break
    message = str(data.get("message") or data.get("reason") or "the command failed")
    status = ExecStatus(1, message)
    return ExecStatus(127, message) if status.missing_program else status


def port_prefix(payload: bytes) -> tuple[int | None, bytes]:
    """Strips the two-byte port number from a channel's first message."""
    if len(payload) < 2:
        return None, payload
    (port,) = struct.unpack("<H", payload[:2])
    return int(port), payload[2:]
