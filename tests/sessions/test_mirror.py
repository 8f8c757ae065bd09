"""ktl-agent's MirrorFrame / MirrorSession shapes: exact writing, loose reading."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ktl_lsp.sessions.mirror import (
    MirrorEncoder,
    MirrorError,
    default_producer,
    frame_to_mirror,
    mirror_to_frame,
    mirror_to_session,
    session_to_mirror,
)
from ktl_lsp.sessions.model import Frame, FrameType, Session, State, event_data

SID = "pty-1739539740123456789"


def test_output_frame_is_ktl_agent_shape() -> None:
    frame = Frame(SID, 3, 1739539740123456789, FrameType.OUTPUT, b"hello \x1b[31mred\x1b[0m\r\n")
    obj = frame_to_mirror(frame, "pty:me@host")
    assert obj == {
        "session_id": SID,
        "producer": "pty:me@host",
        "sequence": "3",
        "received_unix_nano": "1739539740123456789",
        "raw": base64.b64encode(frame.data).decode(),
    }
    assert mirror_to_frame(obj) == frame


def test_zero_values_are_omitted() -> None:
    obj = frame_to_mirror(Frame("", 0, 0, FrameType.OUTPUT, b""))
    assert obj == {}
    assert frame_to_mirror(Frame(SID, 1, 5, FrameType.OUTPUT, b""), "") == {
        "session_id": SID,
        "sequence": "1",
        "received_unix_nano": "5",
    }


def test_non_output_frames_use_the_extension_or_nothing_in_compat() -> None:
    resize = Frame(SID, 2, 10, FrameType.RESIZE, event_data(cols=120, rows=40))
    obj = frame_to_mirror(resize, "p")
    assert obj["ktl_event"] == {"type": "resize", "json": '{"cols":120,"rows":40}'}
    assert "raw" not in obj
    assert mirror_to_frame(obj) == resize
    compat = frame_to_mirror(resize, "p", compat=True)
    assert compat == {
        "session_id": SID,
        "producer": "p",
        "sequence": "2",
        "received_unix_nano": "10",
    }
    # A strict reader gets an envelope with no payload: empty output, same sequence.
    back = mirror_to_frame(compat)
    assert (back.seq, back.type, back.data) == (2, FrameType.OUTPUT, b"")
    # Input that is not JSON (keystrokes) keeps its exact bytes as base64.
    key = Frame(SID, 4, 11, FrameType.INPUT, b"\x03\xff")
    obj = frame_to_mirror(key)
    assert obj["ktl_event"] == {"type": "input", "raw": base64.b64encode(b"\x03\xff").decode()}
    assert mirror_to_frame(obj) == key


def test_reading_is_loose_camel_case_numbers_and_url_safe_base64() -> None:
    data = b"\xfb\xff\xfe ok"
    obj = {
        "sessionId": SID,
        "sequence": 7,
        "receivedUnixNano": 1.0e9,
        "raw": base64.urlsafe_b64encode(data).decode().rstrip("="),
    }
    assert mirror_to_frame(obj) == Frame(SID, 7, 1_000_000_000, FrameType.OUTPUT, data)


def test_reading_ktl_agent_payloads() -> None:
    log = {
        "session_id": SID,
        "sequence": "1",
        "log": {"raw": "plain", "rendered": "\x1b[1mx\x1b[0m"},
    }
    assert mirror_to_frame(log).data == b"\x1b[1mx\x1b[0m\r\n"
    deploy = {"session_id": SID, "sequence": "2", "deploy": {"json": '{"kind":"phase"}'}}
    frame = mirror_to_frame(deploy)
    assert frame.type is FrameType.EVENT
    assert json.loads(frame.data) == {"deploy": {"json": '{"kind":"phase"}'}}


@pytest.mark.parametrize(
    "bad",
    [
        {"sequence": "x"},
        {"sequence": True},
        {"raw": "not base64!!"},
        {"raw": 12},
        {"ktl_event": {"type": "nope"}},
        {"ktl_event": "resize"},
        {"ktl_event": {"type": "event", "json": 3}},
    ],
)
def test_bad_frames_raise_mirror_error(bad: dict[str, object]) -> None:
    with pytest.raises(MirrorError):
        mirror_to_frame(bad)


@given(
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    ts=st.integers(min_value=0, max_value=2**63 - 1),
    ftype=st.sampled_from(list(FrameType)),
    data=st.binary(max_size=200),
    producer=st.text(max_size=10),
    sid=st.text(max_size=20),
)
def test_encoder_matches_frame_to_mirror_and_round_trips(
    seq: int, ts: int, ftype: FrameType, data: bytes, producer: str, sid: str
) -> None:
    frame = Frame(sid, seq, ts, ftype, data)
    for compat in (False, True):
        line = MirrorEncoder(sid, producer, compat=compat).line(frame)
        obj = frame_to_mirror(frame, producer, compat=compat)
        assert line == json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        assert json.loads(line) == obj
    back = mirror_to_frame(json.loads(MirrorEncoder(sid, producer).line(frame)))
    assert back == frame


def _session(**kw: object) -> Session:
    base: dict[str, object] = {
        "id": SID,
        "kind": "pty",
        "title": "make deploy",
        "created_ns": 1_700_000_000_000_000_000,
        "last_seq": 42,
        "meta": {
            "command": "make",
            "args": ["deploy", "-j2"],
            "requester": "ana@box",
            "kubeContext": "kind-dev",
            "namespace": "",
            "repo": "/src/app",
        },
        "tags": {"team": "a", "": "x", "empty": ""},
    }
    base.update(kw)
    return Session(**base)  # type: ignore[arg-type]


def test_session_shape() -> None:
    s = _session(state=State.DONE, exit_code=0, ended_ns=1_700_000_001_000_000_000)
    obj = session_to_mirror(s, compat=True)
    assert obj == {
        "session_id": SID,
        "created_unix_nano": "1700000000000000000",
        "last_seen_unix_nano": "1700000001000000000",
        "last_sequence": "42",
        "meta": {
            "command": "make",
            "args": ["deploy", "-j2"],
            "requester": "ana@box",
            "kube_context": "kind-dev",
        },
        "tags": {"team": "a"},
        "status": {
            "state": "MIRROR_SESSION_STATE_DONE",
            "completed_unix_nano": "1700000001000000000",
        },
    }
    full = session_to_mirror(s)
    assert full["ktl"]["repo"] == "/src/app" and full["ktl"]["kind"] == "pty"
    back = mirror_to_session(full)
    assert (back.id, back.state, back.exit_code, back.last_seq) == (SID, State.DONE, 0, 42)
    assert back.meta["repo"] == "/src/app" and back.meta["kubeContext"] == "kind-dev"
    assert default_producer(s) == "pty:ana@box"


@pytest.mark.parametrize(
    ("state", "exit_code", "error", "want"),
    [
        (State.RUNNING, None, None, {"state": "MIRROR_SESSION_STATE_RUNNING"}),
        (
            State.ERROR,
            2,
            "boom",
            {"state": "MIRROR_SESSION_STATE_ERROR", "exit_code": 2, "error_message": "boom"},
        ),
        (
            State.CANCELLED,
            None,
            None,
            {"state": "MIRROR_SESSION_STATE_DONE", "exit_code": 130, "error_message": "canceled"},
        ),
        (
            State.INTERRUPTED,
            None,
            None,
            {"state": "MIRROR_SESSION_STATE_ERROR", "exit_code": 1, "error_message": "interrupted"},
        ),
    ],
)
def test_session_states(
    state: State, exit_code: int | None, error: str | None, want: dict[str, object]
) -> None:
    s = _session(state=state, exit_code=exit_code, error=error)
    assert session_to_mirror(s)["status"] == want


def test_foreign_session_reads_loosely() -> None:
    obj = {
        "sessionId": "remote-logs-1",
        "createdUnixNano": 5,
        "lastSequence": "9",
        "meta": {"kubeContext": "prod", "command": "ktl logs"},
        "status": {"state": "MIRROR_SESSION_STATE_ERROR", "exitCode": 1, "errorMessage": "x"},
    }
    s = mirror_to_session(obj)
    assert (s.id, s.state, s.exit_code, s.error, s.last_seq) == (
        "remote-logs-1",
        State.ERROR,
        1,
        "x",
        9,
    )
    assert s.meta == {"kubeContext": "prod", "command": "ktl logs"}
    with pytest.raises(MirrorError):
        mirror_to_session({"created_unix_nano": "1"})
