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


#: Lines that differ in what happened, not in timing or generated names: after normalising they
#: must still differ, or a comparison would hide the change. (Known limits: a duration is always
#: volatile, so "timeout after 30s" and "300s" match; a user's name ending in five characters
#: with a digit reads as a pod suffix.)
REAL_CHANGES = [
    ("pod web-5d8f7c9b6-x2kzq Ready", "pod api-5d8f7c9b6-x2kzq Ready"),
    ("pod web-5d8f7c9b6-x2kzq Ready", "pod web-5d8f7c9b6-x2kzq NotReady"),
    ("exit code 1", "exit code 2"),
    ("exit 0 in 1.2s", "exit 1 in 1.2s"),
    ("replicas: 3", "replicas: 5"),
    ("image nginx:1.25", "image nginx:1.26"),
    ("version v1.2.3", "version v1.2.4"),
    ("chart redis-17.3.2", "chart redis-18.0.0"),
    ("listening on port 80", "listening on port 8080"),
    ("3/3 ready", "2/3 ready"),
    ("3 errors", "4 errors"),
    ("memory 10Mi", "memory 20Mi"),
    ("deployment.apps/web configured", "deployment.apps/web unchanged"),
    ("HTTP 404", "HTTP 500"),
    ("retries 5", "retries 50"),
    ("node worker-1 Ready", "node worker-2 Ready"),
    ("pod web-0 Running", "pod web-1 Running"),
    ("configmap app-v2 created", "configmap app-v3 created"),
    ("ERROR disk full", "WARN disk full"),
    ("ns team-a", "ns team-b"),
    ("commit abc1234", "commit abc1235"),
]


def test_real_changes_survive_normalizing() -> None:
    same = [(a, b) for a, b in REAL_CHANGES if normalize_line(a) == normalize_line(b)]
    assert same == [], [(a, b, normalize_line(a)) for a, b in same]


def test_a_real_change_next_to_volatile_tokens_shows_in_the_diff() -> None:
    a = Session(id="a", kind="pty", title="t", state=State.DONE, created_ns=0, ended_ns=1)
    b = Session(id="b", kind="pty", title="t", state=State.DONE, created_ns=0, ended_ns=1)
    la = ["2026-11-26T15:04:05Z pod web-5d8f7c9b6-x2kzq image nginx:1.25 in 1.2s"]
    lb = ["2026-11-27T09:00:00Z pod web-7c9b6d8f5-q9wer image nginx:1.26 in 0.8s"]
    diff = compare(a, la, b, lb).output_diff
    assert "-" in diff and "nginx:1.25" in diff and "nginx:1.26" in diff, diff
