from __future__ import annotations

from ktl_lsp.sessions.compare import compare, normalize_line, visible_lines
from ktl_lsp.sessions.model import Session, State


def test_volatile_tokens_are_normalized() -> None:
    a = normalize_line("2026-11-26T15:04:05Z pod web-5d8f7c9b6-x2kzq Ready in 1.23s")
    b = normalize_line("2026-11-27T09:00:00Z pod web-7c9b6d8f5-q9wer Ready in 0.87s")
    assert a == b


def test_visible_lines_resolve_redraws_and_colors() -> None:
    assert visible_lines(["\x1b[32mok\x1b[0m\r\n", "\r10%\r55%\r100%\r\n", "done"]) == [
        "ok",
        "100%",
        "done",
    ]


def test_compare_shows_only_real_changes() -> None:
    a = Session(
        id="a",
        kind="pty",
        title="run",
        state=State.DONE,
        created_ns=0,
        ended_ns=2_000_000_000,
        exit_code=0,
    )
    b = Session(
        id="b",
        kind="pty",
        title="run",
        state=State.ERROR,
        created_ns=0,
        ended_ns=3_500_000_000,
        exit_code=1,
    )
    la = ["start 10:00:01", "pod api-5d8f7c9b6-x2kzq ready", "all good"]
    lb = ["start 11:30:17", "pod api-6f7d8c9b5-a1b2c ready", "error: image pull failed"]
    out = compare(a, la, b, lb).to_lsp()
    assert out["durationDeltaMs"] == 1500 and out["exitCodes"] == [0, 1]
    diff = out["outputDiff"]
    assert "-all good" in diff and "+error: image pull failed" in diff
    assert "start" not in diff.replace("@@", "").split("\n", 3)[-1].replace(" start <time>", "")
    assert "-pod" not in diff
