"""Command blocks of an interactive shell, read from the marks its integration writes.

The marks (OSC 633 as VS Code's integration writes them, or OSC 133 as iTerm2, WezTerm and
many prompts do; OSC 7 for the directory) stay in the recorded output, so a replay is exact;
the parser only reads them. A mark split across two reads is joined. When a session has
written any OSC 633 mark, its OSC 133 marks are ignored (a prompt that writes both would
otherwise open every block twice). A block that starts while one runs (a nested shell with
its own integration) belongs to the outer one: its marks are read as the outer block's, so the
first end mark (the inner shell's first command) ends the outer block early; later end marks
with no block running are ignored.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ktl_lsp.sessions.errors import UnknownBlock
from ktl_lsp.sessions.model import iso
from ktl_lsp.sessions.search import PlainLines

#: A mark: OSC 633, 133 or 7, ended by BEL or ST.
_MARK = re.compile(rb"\x1b\](633|133|7);([^\x07\x1b]*)(?:\x07|\x1b\\)")
#: Longest unfinished mark carried into the next read.
MAX_CARRY = 8192
_HEX = re.compile(r"\\x([0-9a-fA-F]{2})|\\\\")


def unescape(value: str) -> str:
    """OSC 633's escaping: ``\\\\`` for a backslash, ``\\xNN`` for ``;`` and control bytes."""
    return _HEX.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else "\\", value)


@dataclass
class Block:
    """One command of a shell session and the frames of its output."""

    index: int
    command: str
    cwd: str | None
    started_ns: int
    from_seq: int
    ended_ns: int | None = None
    exit_code: int | None = None
    to_seq: int | None = None

    @property
    def ended(self) -> bool:
        return self.ended_ns is not None

    def duration_ms(self, now: int) -> int:
        end = self.ended_ns if self.ended_ns is not None else now
        return max(0, (end - self.started_ns) // 1_000_000)

    def to_lsp(self, now: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "command": self.command,
            "cwd": self.cwd,
            "startedAt": iso(self.started_ns),
            "durationMs": self.duration_ms(now),
            "fromSeq": self.from_seq,
        }
        if self.ended_ns is not None:
            out["endedAt"] = iso(self.ended_ns)
            out["toSeq"] = self.to_seq
            if self.exit_code is not None:
                out["exitCode"] = self.exit_code
        return out

    def record(self) -> dict[str, Any]:
        """The ``block`` field of the event frame that records it (and the store's row)."""
        return {
            "index": self.index,
            "command": self.command,
            "cwd": self.cwd,
            "startedNs": self.started_ns,
            "endedNs": self.ended_ns,
            "exitCode": self.exit_code,
            "fromSeq": self.from_seq,
            "toSeq": self.to_seq,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Block:
        return cls(
            index=int(rec["index"]),
            command=str(rec.get("command") or ""),
            cwd=rec.get("cwd"),
            started_ns=int(rec["startedNs"]),
            from_seq=int(rec["fromSeq"]),
            ended_ns=rec.get("endedNs"),
            exit_code=rec.get("exitCode"),
            to_seq=rec.get("toSeq"),
        )


def block_label(block: dict[str, Any]) -> str:
    """A command block's chapter: ``$ cmd`` where it starts, ``exit N: cmd`` where it ends."""
    command = " ".join(str(block.get("command") or "").split())[:120]
    if block.get("endedNs") is None:
        return f"$ {command}"
    code = block.get("exitCode")
    return f"{'done' if code is None else f'exit {code}'}: {command}"


def block_of_event(data: bytes) -> Block | None:
    """The block an event frame records, if it is one."""
    if not data.startswith(b'{"block":'):
        return None
    try:
        return Block.from_record(json.loads(data)["block"])
    except (ValueError, KeyError, TypeError):
        return None


class MarkParser:
    """Reads marks from a session's output as it is recorded; ``feed`` answers the blocks
    that started or ended in that piece of output."""

    def __init__(self) -> None:
        self._carry = b""
        self.cwd: str | None = None
        self._command = ""
        self.current: Block | None = None
        self.count = 0
        self._osc633 = False

    def feed(self, data: bytes, seq: int, ts_ns: int) -> list[Block]:
        if self._carry:
            data, self._carry = self._carry + data, b""
        elif b"\x1b" not in data:
            return []
        changed: list[Block] = []
        end = 0
        for m in _MARK.finditer(data):
            end = m.end()
            block = self._mark(m.group(1), m.group(2).decode("utf-8", "replace"), seq, ts_ns)
            if block is not None:
                changed.append(dataclasses.replace(block))  # as it is at this mark
        rest = data.rfind(b"\x1b", end)
        if rest >= 0 and len(data) - rest <= MAX_CARRY and _unfinished(data[rest:]):
            self._carry = data[rest:]
        return changed

    def _mark(self, kind: bytes, body: str, seq: int, ts: int) -> Block | None:
        if kind == b"7":
            url = urllib.parse.urlsplit(body)
            if url.scheme == "file" and url.path:
                self.cwd = urllib.parse.unquote(url.path)
            return None
        if kind == b"633":
            self._osc633 = True
        elif self._osc633:
            return None
        letter, _, rest = body.partition(";")
        if letter == "P":
            key, _, value = rest.partition("=")
            if key == "Cwd" and value:
                self.cwd = unescape(value)
        elif letter == "E":
            line, _, _nonce = rest.partition(";")
            self._command = unescape(line)
        elif letter == "C":
            if self.current is None:
                self.current = Block(self.count, self._command, self.cwd, ts, seq)
                self.count += 1
                return self.current
        elif letter == "D":
            return self._end(seq, ts, rest)
        elif letter == "A" and self.current is not None and not self._osc633:
            # OSC 133 prompts may not write D: a new prompt means the command is over.
            return self._end(seq, ts, "")
        return None

    def close(self, seq: int, ts: int) -> Block | None:
        """Ends the block still running when the shell goes (it exited, was killed or the
        session cancelled): ended at ``seq``, its exit code unknown (None)."""
        return self._end(seq, ts, "")

    def _end(self, seq: int, ts: int, code: str) -> Block | None:
        block = self.current
        if block is None:
            return None
        self.current = None
        self._command = ""
        block.ended_ns, block.to_seq = ts, seq
        try:
            block.exit_code = int(code.split(";")[0])
        except ValueError:
            block.exit_code = None
        return block


def _unfinished(tail: bytes) -> bool:
    """``tail`` (from an ESC) may be the start of a mark that the next read finishes."""
    if len(tail) == 1:
        return True
    return tail[1:2] == b"]" and b"\x07" not in tail and b"\x1b\\" not in tail


_START = re.compile(rb"\x1b\](?:633|133);C[^\x07\x1b]*(?:\x07|\x1b\\)")
_END = re.compile(rb"\x1b\](?:633|133);D[^\x07\x1b]*(?:\x07|\x1b\\)")


def block_text(raw: bytes) -> str:
    """The plain output of a block's frames: after its start mark, before its end mark."""
    start = _START.search(raw)
    if start is not None:
        raw = raw[start.end() :]
    end = _END.search(raw)
    if end is not None:
        raw = raw[: end.start()]
    lines = PlainLines()
    out = lines.feed(raw)
    rest = lines.finish()
    if rest:
        out.append(rest)
    return "\n".join(out)


def parse_block_ref(ref: str, rest: str) -> int:
    """The block index of ``SESSION#blockN`` / ``SESSION#N`` (``rest``: what follows ``#``)."""
    digits = rest[5:] if rest.startswith("block") else rest
    if not digits.isdigit():
        raise UnknownBlock(f"{ref!r} is not SESSION#blockN (a session id, '#block' and a number)")
    return int(digits)
