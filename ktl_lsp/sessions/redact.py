"""Redaction of well-known secrets in terminal output, with a marker where something was cut.

Two uses. Recording (opt-in): a session's output is scanned before it becomes a frame, so the
store and the editor's terminal see the same bytes, with an event frame ``{"redacted": [names],
"bytes": n}`` just before the output frame that holds a replacement (:class:`Redactor`).
Leaving the store (always, unless the token holder asks to ``reveal``): exports, bundles, the
gateway's API and SSE, remote attach and agents redact what they hand out, chunk by chunk
(:class:`Window`, ``sessions/scrub.py``). A match is replaced by ``[REDACTED <name>]``.

- The detectors are detect-secrets' regex plugins (AWS, GitHub, GitLab, Slack, Stripe, JWT,
  basic-auth URLs, ...; :data:`DETECTORS`) beside ours for what they do not cover or cover
  loosely (kubeconfig tokens and client keys, bearer tokens, private key blocks, secret flags
  on a command line, fine-grained GitHub tokens; :data:`WELL_KNOWN`) and the user's patterns.
  Each is compiled once as a byte regex and runs only on text holding one of its hints
  (literals every match holds, in any case: ``GR1348941`` or ``glpat-``, not ``gl``); all the
  hints are looked for in one Aho-Corasick pass over the lowered text, and masking and the
  real scan only follow a match on the raw bytes: scanning stays cheap on ordinary output.
- Patterns match token characters, so a replacement never lands inside a multi-byte UTF-8
  character. Escape sequences are masked (same length, NUL bytes) before the scan, so a match
  never takes in part of one (``\\x1b[1AKIA...`` is a cursor move followed by ``KIA...``, not a
  key) and colours right before a token do not hide it.
- A token split across two reads is still found: the recorder holds back the bytes after the
  last line break (at most ``MAX_CARRY``) until the next read, the end of the session, or
  ``FLUSH_S`` of quiet; a :class:`Window` sees ``CONTEXT`` bytes on either side of each chunk.
- Input typed with echo on is scanned too (each write on its own, no carry).

Not covered (say so rather than pretend): secrets that are not in a recognisable shape (a bare
password), private key blocks longer than ``MAX_KEY_BLOCK``, and a token dribbled out slower
than ``FLUSH_S`` per piece on a line without a break.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_AhoCorasick: Any = None
with contextlib.suppress(ImportError):  # a platform with no wheel looks for hints one by one
    from ahocorasick_rs import BytesAhoCorasick as _AhoCorasick

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

#: Longest private key block redacted whole (an RSA 8192 key is about 6.5 KB).
MAX_KEY_BLOCK = 16384
_KEY_BODY = rf"[A-Za-z0-9+/=\s:,.\-\0]{{0,{MAX_KEY_BLOCK}}}?"
_KEY_BEGIN = r"-{4,5} ?BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5}"
_KEY_END = _KEY_BEGIN.replace("BEGIN", "END")

_GITHUB = (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_")
_FLAGS = b"token|password|passwd|client-secret|secret|api-key|auth-token|bearer-token"
#: GitLab's token prefixes (detect-secrets' GitLab patterns each start with one): ``gl``
#: alone is in most ordinary output.
_GITLAB = (
    *(b"gl" + p + b"-" for p in (b"pat", b"dt", b"ft", b"soat", b"rt", b"cbt", b"imt", b"ptt")),
    *(b"glagent-", b"gloas-", b"GR1348941"),
)

#: Ours: name -> (pattern, group replaced, hints). Token characters only, never ESC or bytes
#: >= 0x80. Each pattern runs only on output holding one of its hints (in any case): every
#: match holds one of them (tests/sessions/test_redact.py checks on generated matches).
WELL_KNOWN: dict[str, tuple[str, int, tuple[bytes, ...]]] = {
    "aws-secret-access-key": (
        r"(?i:aws_secret_access_key|secretaccesskey)[\"']?\s*[=:]\s*[\"']?([A-Za-z0-9/+=]{40})\b",
        1,
        (b"secret",),
    ),
    # detect-secrets' GitHub detector knows the classic 36-character tokens only.
    "github-token": (
        r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})\b",
        0,
        _GITHUB,
    ),
    # All three parts (detect-secrets' JWT stops before the signature).
    "jwt": (r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", 0, (b"eyJ",)),
    "bearer-token": (
        r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)",
        1,
        (b"bearer",),
    ),
    # Only at the start of a line (after blanks or a list dash): checked after the match.
    "kubeconfig-token": (
        r"(?:token|client-key-data|password):[ \t]*[\"']?([A-Za-z0-9\-._~+/]{16,}=*)",
        1,
        (b"token:", b"password:", b"key-data:"),
    ),
    # A whole PEM block (detect-secrets' detector matches its first line only), or the rest of
    # one whose first line came before what is scanned.
    "private-key": (
        "|".join(
            (
                _KEY_BEGIN + _KEY_BODY + rf"(?:{_KEY_END}|(?=[^A-Za-z0-9+/=\s:,.\-\0])|\Z)",
                # (never across a first line: "-----" does not start its body)
                rf"\A(?:[A-Za-z0-9+/=\s:,.\0]|-(?!----)){{0,{MAX_KEY_BLOCK}}}?" + _KEY_END,
            )
        ),
        0,
        (b"PRIVATE KEY",),
    ),
    # A secret given as a flag on a command line (kubectl --token=..., --password ...).
    "secret-flag": (
        r"--(?i:" + _FLAGS.decode() + ")"
        r"(?:=|[ \t]+)[\"']?([!#-&(-~]{4,})",
        1,
        tuple(b"--" + w for w in _FLAGS.split(b"|")),
    ),
}
_LINE_START = frozenset({"kubeconfig-token"})

#: detect-secrets' regex plugins used: module.class -> (name of each of its patterns' matches, the
#: last one for the rest; hints, one of which each pattern's match holds, in any case). Left
#: out: keyword and entropy detectors (too loose for terminal output) and patterns with no
#: literal to find cheaply that do not concern cluster work (Discord, Mailchimp, Telegram,
#: Twilio, Artifactory, Cloudant, IBM, SoftLayer, public IPs).
DETECTORS: dict[str, tuple[tuple[str, tuple[bytes, ...]], ...]] = {
    "aws.AWSKeyDetector": (
        ("aws-access-key-id", (b"A3T", b"ABIA", b"ACCA", b"AKIA", b"ASIA")),
        ("aws-secret-access-key", (b"aws",)),
    ),
    "azure_storage_key.AzureStorageKeyDetector": (("azure-storage-key", (b"AccountKey=",)),),
    "basic_auth.BasicAuthDetector": (("basic-auth", (b"://",)),),
    "github_token.GitHubTokenDetector": (("github-token", _GITHUB),),
    "gitlab_token.GitLabTokenDetector": (("gitlab-token", _GITLAB),),
    "jwt.JwtTokenDetector": (("jwt", (b"eyJ",)),),
    "npm.NpmDetector": (("npm-token", (b"_authToken=",)),),
    "openai.OpenAIDetector": (("openai-key", (b"T3BlbkFJ",)),),
    "pypi_token.PypiTokenDetector": (("pypi-token", (b"pypi-",)),),
    "sendgrid.SendGridDetector": (("sendgrid-key", (b"SG.",)),),
    "slack.SlackDetector": (
        ("slack-token", (b"xox",)),
        ("slack-webhook", (b"hooks.slack.com",)),
    ),
    "square_oauth.SquareOAuthDetector": (("square-oauth-secret", (b"sq0csp-",)),),
    "stripe.StripeDetector": (("stripe-key", (b"k_live_",)),),
}
#: Detectors whose first group is the secret (the rest of the match names where it is).
_SECRET_GROUP = frozenset({"AWSKeyDetector", "BasicAuthDetector", "NpmDetector"})
_LEAD = frozenset(b" \t-")


class PatternError(ValueError):
    """A user pattern that cannot be used; the message says why."""


@dataclass(frozen=True)
class Rule:
    name: str
    regex: re.Pattern[bytes]
    group: int
    #: Run only when one of these occurs (in any case); empty: always.
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


def own_rules() -> list[Rule]:
    return [
        Rule(n, re.compile(p.encode()), g, hints, n in _LINE_START)
        for n, (p, g, hints) in WELL_KNOWN.items()
    ]


def detector_rules() -> list[Rule]:
    """detect-secrets' regex plugins (:data:`DETECTORS`) as byte rules (they run on text)."""
    import importlib

    rules: list[Rule] = []
    for path, named in DETECTORS.items():
        module, _, cls_name = path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls_name)
        except (ImportError, AttributeError):  # a detect-secrets without it: the rest still run
            continue
        for i, regex in enumerate(cls.denylist):
            compiled = re.compile(regex.pattern.encode("ascii"), regex.flags & ~re.UNICODE)
            group = 1 if cls_name in _SECRET_GROUP and compiled.groups else 0
            name, hints = named[min(i, len(named) - 1)]
            rules.append(Rule(name, compiled, group, hints))
    return rules


@functools.cache
def _default() -> Redaction:
    return Redaction()


@functools.cache
def well_known() -> tuple[Rule, ...]:
    """Ours and detect-secrets', compiled once per process."""
    return (*own_rules(), *detector_rules())


@dataclass(frozen=True)
class Redaction:
    """The rules in force: the well-known ones and the user's patterns (``extra``). The
    well-known ones are compiled on first use (detect-secrets takes ~200 ms to import)."""

    extra: tuple[Rule, ...] = ()

    @functools.cached_property
    def rules(self) -> tuple[Rule, ...]:
        """One tuple per redaction: scanners keep per-list state keyed by it."""
        return (*well_known(), *self.extra)

    @classmethod
    def default(cls) -> Redaction:
        return _default()

    @classmethod
    def build(
        cls, enabled: bool = True, patterns: Iterable[tuple[str, str]] = ()
    ) -> Redaction | None:
        if not enabled:
            return None
        return cls(tuple(compile_rule(n, p) for n, p in patterns))

    def redactor(self) -> Redactor:
        return Redactor(self.rules)

    def window(self) -> Window:
        return Window(self.rules)


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


@dataclass(frozen=True)
class _Plan:
    """Rules grouped for :func:`_candidates`: those with no hints, every hint once (lower
    case), the rules each hint lets through, and how to find the hints in lowered text."""

    free: tuple[Rule, ...]
    hints: tuple[bytes, ...]
    gated: tuple[tuple[Rule, ...], ...]  #: by hint, in ``hints``' order
    find: Callable[[bytes], Iterable[int]]  #: the hints (their indexes) occurring in a text


#: Plans by the identity of their rule list (kept in the value, so the id is not reused):
#: hashing 30 rules per chunk would cost more than the scan it saves.
_PLANS: dict[int, tuple[Sequence[Rule], _Plan]] = {}


def _plan(rules: Sequence[Rule]) -> _Plan:
    known = _PLANS.get(id(rules))
    if known is not None and known[0] is rules:
        return known[1]
    if len(_PLANS) > 256:
        _PLANS.clear()
    plan = _make_plan(rules)
    _PLANS[id(rules)] = (rules, plan)
    return plan


def _make_plan(rules: Sequence[Rule]) -> _Plan:
    gated: dict[bytes, list[Rule]] = {}
    for r in rules:
        for h in dict.fromkeys(h.lower() for h in r.hints):
            gated.setdefault(h, []).append(r)
    hints = tuple(gated)
    return _Plan(
        tuple(r for r in rules if not r.hints),
        hints,
        tuple(tuple(v) for v in gated.values()),
        _finder(hints),
    )


def _finder(hints: tuple[bytes, ...]) -> Callable[[bytes], Iterable[int]]:
    """Which of ``hints`` occur in a text: all in one pass with Aho-Corasick (about 40 hints
    in 0.2 s per 100 MB, where a substring search each took 1 s), else one search each."""
    if _AhoCorasick is None or not hints:
        return lambda hay: [i for i, h in enumerate(hints) if h in hay]
    automaton = _AhoCorasick(list(hints))

    def find(hay: bytes) -> Iterable[int]:
        # Overlapping: a hint inside another one's match ("secret" in "--secret") counts too.
        return {m[0] for m in automaton.find_matches_as_indexes(hay, overlapping=True)}

    return find


def _candidates(rules: Sequence[Rule], buf: bytes) -> list[Rule]:
    """The rules that may match in ``buf``, cheaply: their hints first (all at once, in the
    lowered text), then each rule on the raw bytes (a regex that starts with a literal skips
    ahead at memchr speed). Masking and the real scan follow only for these."""
    plan = _plan(rules)
    out = [r for r in plan.free if r.regex.search(buf) is not None]
    if not plan.hints:
        return out
    seen: set[int] = set()
    for i in plan.find(buf.lower()):
        for r in plan.gated[i]:
            if id(r) not in seen:
                seen.add(id(r))
                if r.regex.search(buf) is not None:
                    out.append(r)
    return out


#: Whether a chunk may hold a secret, per chunk and rule list: a live session's frame goes to
#: every client tailing it (the same bytes object), and each client's stream redactor asks.
_MAY_HOLD: dict[bytes, tuple[Sequence[Rule], bool]] = {}
_MAY_HOLD_MAX = 256
#: Chunks shorter than this are looked at each time (cheaper than remembering).
_MAY_HOLD_FROM = 512


def _may_hold(rules: Sequence[Rule], data: bytes) -> bool:
    """``bool(_candidates(rules, data))``, remembered for the last chunks asked about (the
    rule list is kept with the answer: an answer is never taken for another list)."""
    if len(data) < _MAY_HOLD_FROM:
        return bool(_candidates(rules, data))
    known = _MAY_HOLD.get(data)
    if known is not None and known[0] is rules:
        return known[1]
    hot = bool(_candidates(rules, data))
    if len(_MAY_HOLD) >= _MAY_HOLD_MAX:
        _MAY_HOLD.clear()
    _MAY_HOLD[data] = (rules, hot)
    return hot


def _spans(rules: Sequence[Rule], buf: bytes) -> list[tuple[int, int, str]]:
    active = _candidates(rules, buf)
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


#: Bytes a :class:`Window` sees on either side of a chunk: longer than any token it finds whole
#: (a service account's JWT is about 1 KB, an RSA 4096 key block 3.3 KB).
CONTEXT = 4096
#: Bytes on either side of a chunk boundary looked at before deciding a chunk needs no scan
#: with its context: longer than the start of any secret whose pattern does not match a part
#: of it (the lenient ones, JWT, key blocks, tokens after ``token:``, match their first part).
SEAM = 256


class Window:
    """Redacts one stream chunk by chunk (frames over SSE, in an export), each chunk with up to
    ``CONTEXT`` bytes of what came before it and of what follows (``after``, when known).

    A secret split across chunks is found whole: the chunk it starts in shows the marker, the
    rest of it is removed from the chunks after. Chunk boundaries stay where they were (a frame
    keeps its sequence number), only the bytes of secrets change.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules
        self.before = b""  #: the last raw bytes of the stream before the next chunk
        self.owed = 0  #: bytes of a secret already marked that the next chunk starts with
        self.hot = False  #: something may match in the previous chunk
        #: the seam after the previous chunk (its end and the start of what followed it), and
        #: whether something may match there: the next chunk's first seam, looked at once
        self.seam: tuple[bytes, bool] = (b"", False)

    def _seam(self, a: bytes, b: bytes) -> bool:
        # A seam just after a line break joins no token (a key block, which does span lines,
        # is found from its first line, in the chunk before).
        if not a or not b or a[-1:] == b"\n":
            return False
        seam = a[-SEAM:] + b[:SEAM]
        if seam != self.seam[0]:
            self.seam = (seam, bool(_candidates(self.rules, seam)))
        return self.seam[1]

    def prime(self, before: bytes) -> None:
        """Starts mid-stream (a resumed tail): ``before`` is the raw output up to here."""
        self.before = before[-CONTEXT:]
        self.owed = 0
        self.hot = bool(before)

    def redact(self, data: bytes, after: bytes = b"") -> Redacted:
        before = self.before
        # Most chunks hold nothing: scanned on their own and at their two seams, once each.
        hot = _may_hold(self.rules, data)
        if not (
            hot or self.hot or self.owed or self._seam(before, data) or self._seam(data, after)
        ):
            self.before = (before + data)[-CONTEXT:] if len(data) < CONTEXT else data[-CONTEXT:]
            return Redacted(data, [])
        self.hot = hot
        lo, hi = len(before), len(before) + len(data)
        buf = before + data + after[:CONTEXT] if before or after else data
        cuts: list[tuple[int, int, str | None]] = []
        owed = min(self.owed, len(data))
        if owed:
            cuts.append((0, owed, None))
        next_owed = self.owed - owed
        for a, b, name in _spans(self.rules, buf):
            if b > hi:
                # It reaches into the next chunk, whose own checks may not see it (its part
                # there holds no hint): that chunk is scanned with its context too.
                self.hot = True
            if b <= lo or a >= hi:
                continue
            cuts.append((max(a, lo) - lo, min(b, hi) - lo, name if a >= lo else None))
            next_owed = max(next_owed, b - hi)
        self.before = (before + data)[-CONTEXT:] if len(data) < CONTEXT else data[-CONTEXT:]
        self.owed = next_owed
        if not cuts:
            return Redacted(data, [])
        cuts.sort(key=lambda c: (c[0], -c[1]))
        merged = [cuts[0]]
        for a, b, label in cuts[1:]:
            pa, pb, plabel = merged[-1]
            if a < pb:
                merged[-1] = (pa, max(pb, b), plabel or label)
            else:
                merged.append((a, b, label))
        out = bytearray()
        last = 0
        names: list[str] = []
        for a, b, marked in merged:
            out += data[last:a]
            if marked is not None:
                out += b"[REDACTED " + marked.encode() + b"]"
                if marked not in names:
                    names.append(marked)
            last = b
        out += data[last:]
        return Redacted(bytes(out), names, len(data) - len(out))


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
            k: "[REDACTED]" if v and SECRET_KEY.search(str(k)) else redact_value(v, text)
            for k, v in value.items()
        }
    return value
