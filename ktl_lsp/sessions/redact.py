"""Redaction of well-known secrets in recorded output, with a marker where something was cut.

A session's output is scanned before it becomes a frame (so the store, the gateway, exports and
the editor's terminal all see the same bytes). A match is replaced by ``[REDACTED <name>]`` and
an event frame ``{"redacted": [names], "bytes": n}`` is recorded just before the output frame
that holds the replacement.

- Patterns are byte regexes over ASCII token characters, so a replacement never lands inside a
  multi-byte UTF-8 character. Escape sequences are masked (same length, NUL bytes) before the
  scan, so a match never takes in part of one (``\\x1b[1AKIA...`` is a cursor move followed by
  ``KIA...``, not a key) and colours right before a token do not hide it.
- A token split across two reads is still found: the bytes after the last line break are held
  back (at most ``MAX_CARRY``) until the next read, the end of the session, or ``FLUSH_S`` of
  quiet, whichever comes first. Output that ends with a line break is never held.
- Input typed with echo on is scanned too (each write on its own, no carry).

Not covered (say so rather than pretend): secrets that are not in a recognisable shape (a bare
password), PEM private key blocks (multi-line), and a token dribbled out slower than ``FLUSH_S``
per piece on a line without a break.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: Longest run of bytes held back waiting for the rest of a possible token.
MAX_CARRY = 1024
#: Quiet time after which held-back bytes are released anyway (keystroke echo, prompts).
FLUSH_S = 0.02

_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    rb"|\x1b[PX^_][^\x1b\x07]*(?:\x07|\x1b\\)"  # DCS, SOS, PM, APC: all control
    rb"|\x1b[ -/]*[0-~]"  # two-byte and nF escapes
)
_OSC = re.compile(rb"(\x1b\][0-9]*;?)([^\x1b\x07]*)(\x07|\x1b\\)")

#: name -> (pattern, group replaced, hints). Token characters only, never ESC or bytes >= 0x80.
#: Each pattern starts with a literal (so the regex engine can skip ahead), and runs only on
#: output holding one of its hints (lower case): scanning stays cheap on ordinary output.
WELL_KNOWN: dict[str, tuple[str, int, tuple[bytes, ...]]] = {
    "aws-access-key-id": (r"(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0, (b"akia", b"asia")),
    "aws-secret-access-key": (
        r"(?i:aws_secret_access_key|secretaccesskey)[\"']?\s*[=:]\s*[\"']?([A-Za-z0-9/+=]{40})\b",
        1,
        (b"secret",),
    ),
    "github-token": (
        r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})\b",
        0,
        (b"gh",),
    ),
    "gitlab-token": (r"glpat-[A-Za-z0-9_\-]{20,}", 0, (b"glpat-",)),
    "slack-token": (r"xox[abposr]-[A-Za-z0-9\-]{10,}", 0, (b"xox",)),
    "jwt": (r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", 0, (b"eyj",)),
    "bearer-token": (r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)", 1, (b"bearer",)),
    # Only at the start of a line (after blanks or a list dash): checked after the match.
    "kubeconfig-token": (
        r"(?:token|client-key-data|password):[ \t]*[\"']?([A-Za-z0-9\-._~+/]{16,}=*)",
        1,
        (b"token:", b"password:", b"key-data:"),
    ),
}
_LINE_START = frozenset({"kubeconfig-token"})
_LEAD = frozenset(b" \t-")


class PatternError(ValueError):
    """A user pattern that cannot be used; the message says why."""


@dataclass(frozen=True)
class Rule:
    name: str
    regex: re.Pattern[bytes]
    group: int
    #: Run only when one of these (lower case) occurs; empty: always.
    hints: tuple[bytes, ...] = ()
    line_start: bool = False


def compile_rule(name: str, pattern: str) -> Rule:
    """A rule from a user's regex (Python syntax): group 1 is redacted if there is one."""
    try:
        regex = re.compile(pattern.encode("utf-8"))
    except (re.error, UnicodeError) as exc:
        raise PatternError(f"redact pattern {name!r} is not a valid regex: {exc}") from exc
    if regex.search(b"") is not None:
        raise PatternError(f"redact pattern {name!r} matches empty text")
    return Rule(name, regex, 1 if regex.groups >= 1 else 0)


def well_known() -> list[Rule]:
    return [
        Rule(n, re.compile(p.encode()), g, hints, n in _LINE_START)
        for n, (p, g, hints) in WELL_KNOWN.items()
    ]


@dataclass(frozen=True)
class Redaction:
    """The rules in force for sessions started from now on."""

    rules: tuple[Rule, ...]

    @classmethod
    def default(cls) -> Redaction:
        return cls(tuple(well_known()))

    @classmethod
    def build(
        cls, enabled: bool = True, patterns: Iterable[tuple[str, str]] = ()
    ) -> Redaction | None:
        if not enabled:
            return None
        return cls((*well_known(), *(compile_rule(n, p) for n, p in patterns)))

    def redactor(self) -> Redactor:
        return Redactor(self.rules)


def _masked(buf: bytes) -> bytes:
    """``buf`` with escape sequences replaced by NULs (OSC text kept: it may hold a URL)."""
    out = bytearray(buf)
    for m in _OSC.finditer(buf):
        for a, b in ((m.start(1), m.end(1)), (m.start(3), m.end(3))):
            out[a:b] = b"\0" * (b - a)
    for m in _ESCAPES.finditer(buf):
        out[m.start() : m.end()] = b"\0" * (m.end() - m.start())
    return bytes(out)


def _at_line_start(buf: bytes, start: int) -> bool:
    line = max(buf.rfind(b"\n", 0, start), buf.rfind(b"\r", 0, start)) + 1
    return all(b in _LEAD or b == 0 for b in buf[line:start])


def _spans(rules: Sequence[Rule], buf: bytes) -> list[tuple[int, int, str]]:
    lowered = buf.lower()
    seen: dict[bytes, bool] = {}

    def has(hint: bytes) -> bool:
        found = seen.get(hint)
        if found is None:
            found = seen[hint] = hint in lowered
        return found

    active = [r for r in rules if not r.hints or any(has(h) for h in r.hints)]
    if not active:
        return []
    masked = _masked(buf)
    found: list[tuple[int, int, str]] = []
    for rule in active:
        for m in rule.regex.finditer(masked):
            if rule.line_start and not _at_line_start(masked, m.start()):
                continue
            a, b = m.span(rule.group)
            if a >= 0 and b > a:
                found.append((a, b, rule.name))
    found.sort()
    merged: list[tuple[int, int, str]] = []
    for a, b, name in found:
        if merged and a < merged[-1][1]:
            pa, pb, pname = merged[-1]
            merged[-1] = (pa, max(pb, b), pname)
        else:
            merged.append((a, b, name))
    return merged


@dataclass
class Redacted:
    data: bytes
    names: list[str]
    bytes_removed: int = 0


class Redactor:
    """One session's scanner: ``feed`` each read, ``flush`` when quiet or at the end."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules
        self.carry = b""

    @property
    def pending(self) -> bool:
        return bool(self.carry)

    def feed(self, data: bytes) -> Redacted:
        buf = self.carry + data
        cut = self._safe_cut(buf)
        spans = _spans(self.rules, buf)
        for a, b, _ in spans:
            if a < cut < b:
                cut = a  # never emit half a secret: hold the whole of it
        self.carry = buf[cut:]
        return self._apply(buf[:cut], [s for s in spans if s[1] <= cut])

    def flush(self) -> Redacted:
        buf, self.carry = self.carry, b""
        return self.scan(buf)

    def scan(self, data: bytes) -> Redacted:
        """One complete piece (input, or the end of the output): no carry."""
        return self._apply(data, _spans(self.rules, data))

    @staticmethod
    def _safe_cut(buf: bytes) -> int:
        """Where to stop emitting: after the last line break, or, for a long line, at a
        plain ASCII byte ``MAX_CARRY`` before the end that starts no escape sequence."""
        brk = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
        if len(buf) - brk <= MAX_CARRY:
            return brk
        cut = len(buf) - MAX_CARRY
        lo = max(brk, cut - 64)
        while cut > lo and (buf[cut] >= 0x80 or buf[cut - 1] == 0x1B or buf[cut] == 0x1B):
            cut -= 1
        # inside an escape sequence? back up to its ESC
        esc = buf.rfind(b"\x1b", lo, cut)
        if esc >= 0 and not _ESCAPES.match(buf, esc, cut):
            m = _ESCAPES.match(buf, esc)
            if m is None or m.end() > cut:
                cut = esc
        return cut

    @staticmethod
    def _apply(buf: bytes, spans: list[tuple[int, int, str]]) -> Redacted:
        if not spans:
            return Redacted(buf, [])
        out = bytearray()
        last = 0
        removed = 0
        names: list[str] = []
        for a, b, name in spans:
            out += buf[last:a] + b"[REDACTED " + name.encode() + b"]"
            removed += b - a
            last = b
            if name not in names:
                names.append(name)
        out += buf[last:]
        return Redacted(bytes(out), names, removed)


#: Names whose values are secrets whatever they look like (a key in JSON, an option, a variable).
SECRET_KEY = re.compile(r"(?i)token|password|passwd|secret|credential|api[-_]?key|private")
_SECRET_NAME = r"[\w.-]*(?:token|password|passwd|secret|credential|api[-_]?key|private)[\w.-]*"
#: ``--password=x``, ``GITHUB_TOKEN=x``, ``password: x``, and ``--token x`` on a command line.
_VALUE = r"(\"[^\"]*\"|'[^']*'|[^\s\"',;]+)"
_ASSIGNED = re.compile(rf"(?i)(\b{_SECRET_NAME}[ \t]*[=:][ \t]*){_VALUE}")
_OPTION = re.compile(rf"(?i)((?:^|\s)--?{_SECRET_NAME}[ \t]+)(?!-){_VALUE}")


def redact_assignments(text: str) -> str:
    """``text`` (a command line) with values given to secret-looking names replaced: a bare
    password is in no well-known shape, but ``--password=...`` says what it is."""
    text = _ASSIGNED.sub(r"\1[REDACTED]", text)
    return _OPTION.sub(r"\1[REDACTED]", text)


def redact_value(value: Any, text: Callable[[str], str]) -> Any:
    """``value`` (JSON-like) with each string passed through ``text`` and the values under
    secret-looking keys (``token``, ``password``, ...) hidden."""
    if isinstance(value, str):
        return text(value) if value else value
    if isinstance(value, list | tuple):
        return [redact_value(v, text) for v in value]
    if isinstance(value, dict):
        return {
            k: "[REDACTED]" if SECRET_KEY.search(str(k)) and v else redact_value(v, text)
            for k, v in value.items()
        }
    return value
