"""Redaction of well-known secrets in recorded output (ktl_lsp/sessions/redact.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktl_lsp.lsp.settings import Settings
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.model import FrameType
from ktl_lsp.sessions.redact import (
    MAX_CARRY,
    PatternError,
    Redaction,
    Redactor,
    _candidates,
    _plan,
    compile_rule,
    well_known,
)

GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXBhcnQtaGVyZQ"
SECRETS = {
    "github-token": (f"token {GH} ok", GH),
    "aws-access-key-id": (f"key={AWS}\n", AWS),
    "jwt": (f"{JWT}\n", JWT),
    "bearer-token": ("Authorization: Bearer abcdefghijklmnop0123456789\n", "abcdefghijklmnop0123456789"),
    "kubeconfig-token": ("    token: c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1Ng==\n", "c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1Ng=="),
    "aws-secret-access-key": ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    "slack-token": ("xoxb-1234567890-abcdefghij\n", "xoxb-1234567890-abcdefghij"),
}  # fmt: skip


def run(redactor: Redactor, pieces: list[bytes]) -> tuple[bytes, list[str]]:
    out, names = b"", []
    for p in pieces:
        r = redactor.feed(p)
        out, names = out + r.data, names + r.names
    r = redactor.flush()
    return out + r.data, names + r.names


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_each_well_known_pattern(name: str) -> None:
    text, secret = SECRETS[name]
    out, names = run(Redaction.default().redactor(), [text.encode()])
    assert secret.encode() not in out
    assert f"[REDACTED {name}]".encode() in out and names == [name]


def test_ordinary_output_is_untouched_and_not_held() -> None:
    r = Redaction.default().redactor()
    text = b"\x1b[32mdeployment.apps/web configured\x1b[0m\r\nBearer of news\r\n"
    assert r.feed(text).data == text and not r.pending


def test_escape_sequences_neither_hide_nor_break() -> None:
    out, _ = run(Redaction.default().redactor(), [b"\x1b[31m" + AWS.encode() + b"\x1b[0m\n"])
    assert out == b"\x1b[31m[REDACTED aws-access-key-id]\x1b[0m\n"
    # a cursor move whose final byte is "A" followed by KIA...: not a key, left alone
    moved = b"\x1b[1" + AWS.encode() + b"\n"
    assert run(Redaction.default().redactor(), [moved])[0] == moved


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(SECRETS)),
    before=st.text(alphabet=st.sampled_from(list("ab é😀\x1b[0m\r\n")), max_size=30),
    after=st.text(alphabet=st.sampled_from(list(" é😀\r\n")), max_size=10),
    cuts=st.lists(st.integers(0, 200), max_size=6),
)
def test_a_secret_split_across_reads_is_still_redacted(
    name: str, before: str, after: str, cuts: list[int]
) -> None:
    text, secret = SECRETS[name]
    before = before.rstrip("\x1b[")
    blob = (before + ("\n" if before else "") + text + after).encode()
    points = sorted({min(c, len(blob)) for c in cuts})
    pieces = [blob[a:b] for a, b in zip([0, *points], [*points, len(blob)], strict=True)]
    out, names = run(Redaction.default().redactor(), pieces)
    assert secret.encode() not in out
    assert name in names
    # Everything else is kept exactly, and stays valid UTF-8.
    assert out.replace(f"[REDACTED {name}]".encode(), secret.encode()) == blob
    out.decode("utf-8")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=12))
def test_arbitrary_output_without_secrets_passes_through(pieces: list[bytes]) -> None:
    out, names = run(Redaction.default().redactor(), pieces)
    if not names:
        assert out == b"".join(pieces)


@pytest.mark.parametrize("index", range(len(well_known())))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_every_match_of_a_well_known_rule_holds_one_of_its_hints(
    index: int, data: st.DataObject
) -> None:
    """A rule runs only on text holding one of its hints: text it matches always holds one
    (in any case), whatever detect-secrets' version brings."""
    rule = well_known()[index]
    text = data.draw(st.from_regex(rule.regex))
    assert rule in _candidates(well_known(), text)


_HINTS = _plan(well_known()).hints


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_HINTS) | st.binary(max_size=8), max_size=12))
def test_the_hints_found_at_once_are_those_found_one_by_one(pieces: list[bytes]) -> None:
    """Hints overlapping each other ("--secret" holds "secret") or sharing a start are all
    found, as one substring search each finds them."""
    hay = b"".join(pieces).lower()
    one_by_one = {i for i, h in enumerate(_HINTS) if h in hay}
    assert set(_plan(well_known()).find(hay)) == one_by_one


def test_long_lines_are_not_held_forever() -> None:
    r = Redaction.default().redactor()
    got = r.feed(b"x" * (MAX_CARRY * 4))
    assert len(got.data) >= MAX_CARRY * 3 and len(r.carry) <= MAX_CARRY


def test_user_patterns_and_bad_ones() -> None:
    rule = compile_rule("ticket", r"TICKET-(\d{4})")
    out, names = run(Redactor([rule]), [b"see TICKET-1234 now\n"])
    assert out == b"see TICKET-[REDACTED ticket] now\n" and names == ["ticket"]
    with pytest.raises(PatternError):
        compile_rule("bad", "(")
    with pytest.raises(PatternError):
        compile_rule("empty", "x*")
    s = Settings.from_options({"redact": {"patterns": ["(", {"name": "t", "pattern": "T-\\d+"}]}})
    assert s.redact.rules() == [("t", "T-\\d+")]
    assert any("not a valid regex" in p for p in s.problems)
    assert Settings.from_options({"redact": {"enabled": False}}).redaction() is None


async def test_sessions_record_the_redacted_output_with_a_marker(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "s.db")
    manager.redaction = Redaction.default()  # opt-in (initializationOptions.redact.enabled)
    try:
        # The key in two writes on one line, with no pause: a split read is held back until
        # the rest arrives (within FLUSH_S; the split itself is covered by
        # test_a_secret_split_across_reads_is_still_redacted, without a clock).
        cmd = f"printf 'key: {AWS[:8]}'; printf '{AWS[8:]} done\\n'; echo {GH}"
        live = manager.start(RunSpec(argv=["sh", "-c", cmd], command=cmd))
        await asyncio.wait_for(live.done, 10)
        frames, _ = await manager.frames(live.id)
        out = b"".join(f.data for f in frames if f.type is FrameType.OUTPUT)
        assert AWS.encode() not in out and GH.encode() not in out
        assert b"key: [REDACTED aws-access-key-id] done" in out
        markers = [
            json.loads(f.data)
            for f in frames
            if f.type is FrameType.EVENT and b"redacted" in f.data
        ]
        assert [n for m in markers for n in m["redacted"]] == ["aws-access-key-id", "github-token"]
        # off: recorded as is
        manager.redaction = None
        live = manager.start(RunSpec(argv=["sh", "-c", f"echo {GH}"]))
        await asyncio.wait_for(live.done, 10)
        frames, _ = await manager.frames(live.id)
        assert GH.encode() in b"".join(f.data for f in frames)
    finally:
        manager.close()
