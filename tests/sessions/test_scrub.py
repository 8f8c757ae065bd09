"""Frames redacted as one stream on their way out (ktl_lsp/sessions/scrub.py): a secret split
across frames is found whole, the frames keep their numbers, the rest is left exactly."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ktl_lsp.sessions.model import Frame, FrameType
from ktl_lsp.sessions.redact import CONTEXT, FLUSH_S, Redaction
from ktl_lsp.sessions.scrub import Paced, Scrubber, scrub_frames
from tests.sessions.test_redact import SECRETS

KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\r\n"
    + "".join(f"MIIEowIBAAKCAQEA{i:02d}" + "x" * 40 + "\r\n" for i in range(30))
    + "-----END RSA PRIVATE KEY-----"
)
CASES = {**SECRETS, "private-key": (f"{KEY}\r\n", KEY)}


def _frames(blob: bytes, points: list[int]) -> list[Frame]:
    cuts = sorted({min(p, len(blob)) for p in points})
    pieces = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]
    return [Frame("s", i, i, FrameType.OUTPUT, p) for i, p in enumerate(pieces, 1)]


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(CASES)),
    before=st.text(alphabet=st.sampled_from(list("ab é😀\x1b[0m\r\n")), max_size=30),
    filler=st.integers(0, 2 * CONTEXT),
    cuts=st.lists(st.integers(0, 2 * CONTEXT + 2200), max_size=8),
)
# A frame holding only the middle of a secret, the start of its name in the frame before.
@example(name="aws-secret-access-key", before="", filler=0, cuts=[2, 26])
def test_a_secret_split_across_frames_is_replaced_whole(
    name: str, before: str, filler: int, cuts: list[int]
) -> None:
    text, secret = CASES[name]
    before = before.rstrip("\x1b[")
    head = ("z " * (filler // 2) + "\n" + before + ("\n" if before else "")).encode()
    blob = head + text.encode() + b"tail\r\n"
    frames = _frames(blob, cuts)
    out = list(scrub_frames(frames, Redaction.default().rules))
    assert [f.seq for f in out] == [f.seq for f in frames]
    joined = b"".join(f.data for f in out)
    assert joined == blob.replace(secret.encode(), f"[REDACTED {name}]".encode())
    joined.decode("utf-8")


def test_held_until_enough_follows_and_events_keep_their_place() -> None:
    s = Scrubber.of(Redaction.default())
    aws = "AKIA" + "IOSFODNN7EXAMPLE"
    assert s.push(Frame("s", 1, 1, FrameType.OUTPUT, f"key {aws[:6]}".encode())) == []
    resize = Frame("s", 2, 2, FrameType.RESIZE, b'{"cols":80,"rows":24}')
    assert s.push(resize) == []  # after a held frame: waits its turn
    s.push(Frame("s", 3, 3, FrameType.OUTPUT, f"{aws[6:]} ok\n".encode()))
    out = s.flush()
    assert [f.seq for f in out] == [1, 2, 3] and out[1] is resize
    assert out[0].data == b"key [REDACTED aws-access-key-id]" and out[2].data == b" ok\n"
    # A frame followed by CONTEXT bytes goes out at once; an unchanged one as the same object.
    plain = Frame("s", 4, 4, FrameType.OUTPUT, b"ready\n")
    assert s.push(plain) == []
    got = s.push(Frame("s", 5, 5, FrameType.OUTPUT, b"x" * CONTEXT))
    assert got == [plain] and got[0] is plain


def test_input_alone_and_events_as_json() -> None:
    gh = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    key = (
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBx" + "y" * 60 + "\n-----END EC PRIVATE KEY-----"
    )
    event = json.dumps({"error": f"failed: {key}", "token": "plain-looking"}).encode()
    frames = [
        Frame("s", 1, 1, FrameType.INPUT, f"export T={gh}\r".encode()),
        Frame("s", 2, 2, FrameType.EVENT, event),
        Frame("s", 3, 3, FrameType.EVENT, b'{"state":"running"}'),
    ]
    out = list(scrub_frames(frames, Redaction.default().rules))
    assert out[0].data == b"export T=[REDACTED github-token]\r"
    obj = json.loads(out[1].data)
    assert obj == {"error": "failed: [REDACTED private-key]", "token": "[REDACTED]"}
    assert out[2] is frames[2]


def test_paced_lets_a_steady_trickle_through() -> None:
    """Short lines every 10 ms never add up to CONTEXT bytes: every FLUSH_S all but the newest
    frame go out (with it as what follows them); after FLUSH_S of quiet, the newest too."""
    now = [0.0]
    paced = Paced(Scrubber.of(Redaction.default()), clock=lambda: now[0])
    sent: list[int] = []
    for seq in range(1, 8):
        now[0] = seq * 0.01
        sent += [f.seq for f in paced.push(Frame("s", seq, seq, FrameType.OUTPUT, b"line\r\n"))]
        wait = paced.timeout(None)
        assert wait is not None and wait <= FLUSH_S
        if now[0] + 0.01 >= now[0] + wait:  # the next line comes after the deadline
            now[0] += wait
            sent += [f.seq for f in paced.due()]
    assert sent and sent == list(range(1, max(sent) + 1)) and max(sent) < 7
    now[0] += FLUSH_S
    sent += [f.seq for f in paced.due()]
    assert sent == list(range(1, 8)) and paced.timeout(None) is None
