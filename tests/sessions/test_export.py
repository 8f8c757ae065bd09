"""Session export: NDJSON (ktl-agent shape), asciicast v2 (checked with the real asciinema), HTML."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktl_lsp.sessions import export
from ktl_lsp.sessions.export import (
    ExportWriteError,
    SessionNotFound,
    UnknownFormat,
    export_session,
    export_to_path,
    read_ndjson,
)
from ktl_lsp.sessions.model import Frame, FrameType, Session, State, event_data
from ktl_lsp.sessions.store import Store
from tests.needs import unavailable

T0 = 1_750_000_000_000_000_000
MS = 1_000_000
_ids = itertools.count(1)

Spec = tuple[int, FrameType, bytes]  # (ms after start, type, data)


def open_store(path: Path) -> Store:
    store = Store(path)
    store.open()
    return store


def record(
    store: Store,
    frames: Sequence[Spec],
    *,
    pty: bool = True,
    size: tuple[int, int] = (100, 30),
    **kw: Any,
) -> Session:
    """Writes a session straight into the store: like a PTY session, it starts with the
    ``running`` event and the initial resize, then ``frames``."""
    session = Session(
        id=kw.pop("id", f"pty-{next(_ids)}"),
        kind="pty",
        title=kw.pop("title", "make deploy"),
        created_ns=T0,
        meta=kw.pop(
            "meta",
            {"command": "make", "args": ["deploy"], "requester": "ana@box", "cwd": "/src"},
        ),
        tags={"team": "a"},
        **kw,
    )
    head: list[Spec] = []
    if pty:
        head = [
            (0, FrameType.EVENT, event_data(state="running")),
            (1, FrameType.RESIZE, event_data(cols=size[0], rows=size[1])),
        ]
    store.save_session(session)  # before its frames (they reference it)
    seq = 0
    for ms, ftype, data in [*head, *frames]:
        seq += 1
        store.append(Frame(session.id, seq, T0 + ms * MS, ftype, data))
    session.last_seq = seq
    if session.state.final and session.ended_ns is None:
        session.ended_ns = T0 + (frames[-1][0] + 5 if frames else 10) * MS
    store.save_session(session)
    store.flush_sync()
    return session


def exported(store: Store, session_id: str, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    export_session(store, session_id, fmt, buf, **kw)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "sessions.db")
    yield s
    s.close()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = open_store(tmp_path_factory.mktemp("export") / "sessions.db")
    yield s
    s.close()


# NDJSON --------------------------------------------------------------------------------------


def test_ndjson_is_one_mirror_frame_per_line_in_order(store: Store) -> None:
    s = record(
        store,
        [
            (10, FrameType.OUTPUT, b"hello\r\n"),
            (20, FrameType.INPUT, b"y\r"),
            (30, FrameType.EVENT, event_data(signal="INT")),
            (40, FrameType.OUTPUT, b"\x1b[32mok\x1b[0m\r\n"),
        ],
        state=State.DONE,
        exit_code=0,
    )
    body = exported(store, s.id, "ndjson")
    assert body.endswith(b"\n") and b"\r\n" not in body.replace(b"\\r\\n", b"")
    lines = [json.loads(x) for x in body.splitlines()]
    assert [x["sequence"] for x in lines] == ["1", "2", "3", "4", "5", "6"]
    assert all(x["session_id"] == s.id and x["producer"] == "pty:ana@box" for x in lines)
    assert lines[2]["received_unix_nano"] == str(T0 + 10 * MS)
    assert "raw" in lines[2] and "ktl_event" not in lines[2]
    assert lines[1]["ktl_event"] == {"type": "resize", "json": '{"cols":100,"rows":30}'}
    assert lines[3]["ktl_event"]["type"] == "input"
    frames = list(read_ndjson(io.BytesIO(body)))
    assert frames == store.frames(s.id)


def test_ndjson_compat_has_only_what_ktl_agent_knows(store: Store) -> None:
    s = record(store, [(5, FrameType.OUTPUT, b"x"), (6, FrameType.EVENT, b'{"signal":"INT"}')])
    lines = [json.loads(x) for x in exported(store, s.id, "jsonl", compat=True).splitlines()]
    known = {"session_id", "producer", "sequence", "received_unix_nano", "raw"}
    assert all(set(x) <= known for x in lines)
    assert [x["sequence"] for x in lines] == ["1", "2", "3", "4"]  # no gaps for strict readers


def test_binary_output_round_trips_exactly(store: Store) -> None:
    """``cat /bin/ls``: every byte survives store -> NDJSON -> read_ndjson."""
    blob = Path(sys.executable).resolve().read_bytes()[:300_000]
    chunks = [blob[i : i + 4096] for i in range(0, len(blob), 4096)]
    s = record(store, [(i, FrameType.OUTPUT, c) for i, c in enumerate(chunks, start=2)])
    frames = list(read_ndjson(io.BytesIO(exported(store, s.id, "ndjson"))))
    assert b"".join(f.data for f in frames if f.type is FrameType.OUTPUT) == blob
    assert frames == store.frames(s.id)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunks=st.lists(
        st.tuples(st.sampled_from([FrameType.OUTPUT, FrameType.INPUT]), st.binary(max_size=300)),
        max_size=30,
    ),
    compat=st.booleans(),
)
def test_any_bytes_round_trip_through_store_and_ndjson(
    shared_store: Store, chunks: list[tuple[FrameType, bytes]], compat: bool
) -> None:
    s = record(shared_store, [(i, t, d) for i, (t, d) in enumerate(chunks, start=2)])
    stored = shared_store.frames(s.id)
    assert [f.data for f in stored[2:]] == [d for _, d in chunks]
    back = list(read_ndjson(io.BytesIO(exported(shared_store, s.id, "ndjson"))))
    assert back == stored
    # The compat export keeps every output byte too (and only output).
    compat_back = list(
        read_ndjson(exported(shared_store, s.id, "ndjson", compat=True).splitlines())
    )
    want = b"".join(d for t, d in chunks if t is FrameType.OUTPUT)
    assert b"".join(f.data for f in compat_back if f.type is FrameType.OUTPUT) == want


def test_read_ndjson_names_the_bad_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        list(read_ndjson([b'{"raw":"aGk="}', b"{not json", b""]))


# asciicast -----------------------------------------------------------------------------------


def _cast(body: bytes) -> tuple[dict[str, Any], list[list[Any]]]:
    lines = body.decode("utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(x) for x in lines[1:]]


def test_asciicast_header_and_events(store: Store) -> None:
    s = record(
        store,
        [
            (500, FrameType.OUTPUT, "héllo ".encode()),
            (700, FrameType.OUTPUT, b"\xe2\x82"),  # a character split across two frames
            (800, FrameType.OUTPUT, b"\xac \x1b[1mbold\x1b[0m\r\n"),
            (900, FrameType.INPUT, b"q"),
            (950, FrameType.EVENT, event_data(input="hidden", bytes=15)),
            (1000, FrameType.RESIZE, event_data(cols=132, rows=43)),
            (1100, FrameType.EVENT, event_data(signal="INT")),
            (1150, FrameType.MARKER, json.dumps({"trimmed": {"from": 10, "to": 19}}).encode()),
            (1200, FrameType.EVENT, event_data(state="error", exitCode=130, signal="INT")),
        ],
        state=State.ERROR,
        exit_code=130,
        signal="INT",
        title="make deploy",
    )
    header, events = _cast(exported(store, s.id, "asciicast"))
    assert header["version"] == 2
    assert (header["width"], header["height"]) == (100, 30)
    assert header["timestamp"] == T0 // 10**9
    assert header["title"] == "make deploy" and header["command"] == "make deploy"
    assert header["env"] == {"TERM": "xterm-256color"}
    assert header["ktl"]["state"] == "error" and header["ktl"]["exit_code"] == 130
    out = "".join(e[2] for e in events if e[1] == "o")
    assert out == "héllo € \x1b[1mbold\x1b[0m\r\n"
    assert [e[2] for e in events if e[1] == "i"] == ["q"]
    assert [e[2] for e in events if e[1] == "r"] == ["132x43"]  # the first resize is the header
    assert [e[2] for e in events if e[1] == "m"] == [
        "state: running",
        "input hidden (15 bytes)",
        "signal: INT",
        "… 10 frames trimmed …",
        "state: error, exit 130, signal INT",
    ]
    times = [e[0] for e in events]
    assert times == sorted(times) and times[-1] == pytest.approx(1.2)
    assert next(e for e in events if e[1] == "o")[0] == pytest.approx(0.5)


#: (meta.command, meta.args, the command line shown) for each producer's shape.
COMMAND_SHAPES = [
    # Our argv runs: the whole line in command, argv[1:] in args (ktl-agent's field).
    ("bash -c echo hi", ["-c", "echo hi"], "bash -c echo hi"),
    # Our command-string runs, k8s sessions, plan nodes: the line only.
    ("echo hi | wc -c", [], "echo hi | wc -c"),
    # ktl-agent: the cobra path, and argv without argv[0] (it repeats the subcommand).
    ("ktl logs", ["logs", "web-1", "-n", "shop"], "ktl logs web-1 -n shop"),
    # Another producer keeping them apart.
    ("make", ["deploy"], "make deploy"),
    ("", ["kubectl", "get", "pods"], "kubectl get pods"),
]


@pytest.mark.parametrize(("command", "args", "shown"), COMMAND_SHAPES)
def test_asciicast_shows_the_command_once(
    shared_store: Store, command: str, args: list[str], shown: str
) -> None:
    s = record(shared_store, [(1, FrameType.OUTPUT, b"x")], meta={"command": command, "args": args})
    header, _ = _cast(exported(shared_store, s.id, "asciicast"))
    assert header["command"] == shown


def test_the_command_line_of_a_real_argv_run(tmp_path: Path) -> None:
    """What the manager records for ``argv`` and for ``command`` shows each word once."""
    import asyncio

    from ktl_lsp.sessions.manager import RunSpec, SessionManager

    async def main() -> list[str]:
        manager = SessionManager.open(tmp_path / "s.db")
        try:
            runs = [
                RunSpec(argv=["sh", "-c", "echo hi"]),
                RunSpec(argv=["sh", "-c", "echo hi"], command="echo hi"),
            ]
            done = [await manager.start(spec).done for spec in runs]
            assert manager.store is not None
            await manager.store.flush()
            return [_cast(exported(manager.store, x.id, "asciicast"))[0]["command"] for x in done]
        finally:
            manager.close()

    assert asyncio.run(main()) == ["sh -c echo hi", "echo hi"]


def test_asciicast_without_resize_defaults_and_marks_the_result(store: Store) -> None:
    s = record(
        store, [(3, FrameType.OUTPUT, b"\xff\xfebin")], pty=False, state=State.DONE, exit_code=0
    )
    header, events = _cast(exported(store, s.id, "asciicast"))
    assert (header["width"], header["height"]) == (80, 24)
    assert events[0] == [0.003, "o", "\ufffd\ufffdbin"]  # asciicast holds text: not UTF-8 -> U+FFFD
    assert events[-1][1:] == ["m", "done, exit 0"]


def _asciinema() -> list[str]:
    try:
        import asciinema  # noqa: F401
    except ImportError:
        unavailable("asciinema is not installed (the test extra: pip install -e '.[test]')")
    return [sys.executable, "-m", "asciinema"]


def test_real_asciinema_cat_reproduces_the_output(store: Store, tmp_path: Path) -> None:
    asciinema = _asciinema()
    output = [
        b"\x1b[?25l",
        "Übersicht: 日本語 ✓\r\n".encode(),
        b"\x1b[31merror\x1b[0m: \x1b[1mthing\x1b[0m\r\n",
        b"progress 10%\rprogress 100%\r\n",
        "emoji 🚀\r\n".encode()[:7],
        "emoji 🚀\r\n".encode()[7:],
        b"\x1b[?25h",
    ]
    frames: list[Spec] = [(10 * i, FrameType.OUTPUT, d) for i, d in enumerate(output, start=1)]
    frames.insert(3, (35, FrameType.RESIZE, event_data(cols=40, rows=10)))
    frames.insert(5, (45, FrameType.EVENT, event_data(signal="TERM")))
    s = record(store, frames, state=State.DONE, exit_code=0)
    path = export_to_path(store, s.id, "asciicast", tmp_path / "run.cast")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "ASCIINEMA_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [*asciinema, "cat", str(path)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # no controlling terminal: asciinema must not touch ours
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"".join(output)


# HTML ----------------------------------------------------------------------------------------


def _script(page: str, element_id: str, kind: str = "json") -> str:
    m = re.search(
        rf'<script type="application/{kind}" id="{element_id}">(.*?)</script>', page, re.S
    )
    assert m is not None
    return m.group(1)


def test_html_is_self_contained_and_embeds_the_frames(store: Store) -> None:
    s = record(
        store,
        [
            (10, FrameType.OUTPUT, b"\x1b[32mready\x1b[0m </script><script>alert(1)</script>\r\n"),
            (20, FrameType.OUTPUT, b"\xff\x00binary"),
            (30, FrameType.MARKER, b'{"trimmed":{"from":3,"to":7}}'),
            (40, FrameType.MARKER, b'{"label":"</script><!-- x"}'),
        ],
        title="</script><b>t</b>",
        state=State.DONE,
        exit_code=0,
    )
    page = exported(store, s.id, "html").decode("utf-8")
    assert page.startswith("<!doctype html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # No external resource of any kind: no src/href attributes, no @import, no url().
    assert not re.search(r"<(?:script|link|img|iframe)[^>]+(?:src|href)=", page, re.I)
    assert "@import" not in page
    assert page.count("</script>") == page.lower().count("<script")
    assert "<!--" not in page
    assert "<title>&lt;/script&gt;&lt;b&gt;t&lt;/b&gt; · ktl-lsp session</title>" in page
    session = json.loads(_script(page, "ktl-session"))
    assert session["title"] == "</script><b>t</b>" and session["exitCode"] == 0
    # Every frame as the NDJSON export has it ('<' escaped in JSON strings), the rest as marks.
    lines = _script(page, "ktl-frames", "x-ndjson").encode().splitlines()
    assert list(read_ndjson(lines)) == store.frames(s.id)
    marks = json.loads(_script(page, "ktl-marks"))
    assert marks[:2] == [[1, 0, "m", "state: running"], [2, 1, "r", "100x30"]]
    assert marks[2:4] == [[5, 30, "t", "… 5 frames trimmed …"], [6, 40, "m", "</script><!-- x"]]
    assert "KtlPlayer.mount" in page and "xterm.js 6.0.0" in page


# errors and files ----------------------------------------------------------------------------


def test_unknown_format_and_session(store: Store, tmp_path: Path) -> None:
    s = record(store, [(1, FrameType.OUTPUT, b"x")])
    with pytest.raises(
        UnknownFormat, match=r"unknown export format 'pdf': use one of ndjson, asciicast, html"
    ):
        export_to_path(store, s.id, "pdf", tmp_path / "x.pdf")
    with pytest.raises(SessionNotFound, match="no session 'nope'"):
        export_to_path(store, "nope", "ndjson", tmp_path / "x.ndjson")
    with pytest.raises(SessionNotFound):
        exported(store, "nope", "html")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sessions.db",
        "sessions.db-shm",
        "sessions.db-wal",
    ]


def test_export_to_path_is_atomic_and_handles_directories(store: Store, tmp_path: Path) -> None:
    s = record(store, [(1, FrameType.OUTPUT, b"hello")], id="pty-42")
    target = export_to_path(store, s.id, "cast", tmp_path)
    assert target == tmp_path / "pty-42.cast"
    assert target.read_bytes().startswith(b'{"version": 2')
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)  # like the store: owner-only
    out = export_to_path(store, s.id, "ndjson", str(tmp_path / "a.ndjson"))
    assert list(read_ndjson(out.read_bytes().splitlines())) == store.frames(s.id)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unwritable_targets_give_clear_errors(store: Store, tmp_path: Path) -> None:
    s = record(store, [(1, FrameType.OUTPUT, b"x")])
    with pytest.raises(
        ExportWriteError, match=r"cannot write .*: the folder .*missing does not exist"
    ):
        export_to_path(store, s.id, "ndjson", tmp_path / "missing" / "x.ndjson")
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportWriteError, match="is not a directory"):
        export_to_path(store, s.id, "ndjson", tmp_path / "file" / "x.ndjson")
    with pytest.raises(ExportWriteError, match=r"cannot write /proc/x\.ndjson"):
        export_to_path(store, s.id, "ndjson", "/proc/x.ndjson")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(ExportWriteError, match="Permission denied"):
            export_to_path(store, s.id, "html", ro / "x.html")


def test_disk_full_leaves_nothing_behind(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = record(store, [(1, FrameType.OUTPUT, b"x" * 1000)])
    with (
        open("/dev/full", "wb", buffering=0) as full,
        pytest.raises(ExportWriteError, match="No space left"),
    ):
        export_session(store, s.id, "ndjson", full)
    target = tmp_path / "keep.ndjson"
    target.write_bytes(b"old")

    def broken(out: Any, parts: Any, chunk: int = 0) -> None:
        out.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ktl_lsp.sessions.export.write_chunks", broken)
    with pytest.raises(
        ExportWriteError, match=r"cannot write .*keep.ndjson: No space left on device"
    ):
        export_to_path(store, s.id, "ndjson", target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("sessions.db")) == [
        "keep.ndjson"
    ]


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_exports_stream_from_the_store(
    store: Store, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exporters pull frames as they write: the first piece needs only the first batch."""
    s = record(store, [(i, FrameType.OUTPUT, b"line\r\n") for i in range(5000)])
    pulled = 0
    real = store.iter_frames

    def counting(session_id: str, from_seq: int = 1, batch: int = 2000) -> Iterator[Frame]:
        nonlocal pulled
        for f in real(session_id, from_seq, batch):
            pulled += 1
            yield f

    monkeypatch.setattr(store, "iter_frames", counting)
    pieces = export.iter_export(store, s.id, fmt)
    next(pieces)
    next(pieces)
    assert pulled < 2100
    rest = b"".join(pieces)
    assert rest and pulled >= 5002


@given(
    t=st.floats(min_value=0, max_value=1e7, allow_nan=False).map(lambda x: round(x, 6)),
    text=st.text(),
)
def test_asciicast_fast_event_encoding_matches_json(t: float, text: str) -> None:
    from ktl_lsp.sessions.export.asciicast import _event, _line

    assert _event(t, "o", text) == _line([t, "o", text])
    assert json.loads(_event(t, "o", text)) == [t, "o", text]


def test_ndjson_output_lines_read_as_mirror_to_frame_reads_them() -> None:
    """Output lines as we write them are read on a fast path; every spelling protojson
    accepts (URL-safe or unpadded base64, camelCase, numbers as numbers) reads the same."""
    import base64

    from ktl_lsp.sessions.export.ndjson import read_ndjson
    from ktl_lsp.sessions.mirror import mirror_to_frame

    data = bytes(range(256)) + b"\xfb\xff"
    raw = base64.b64encode(data).decode()
    ours = {"session_id": "s1", "sequence": "7", "received_unix_nano": "123", "raw": raw}
    spellings = [
        ours,
        {**ours, "raw": ours["raw"].replace("+", "-").replace("/", "_")},
        {**ours, "raw": ours["raw"].rstrip("=")},
        {"sessionId": "s1", "sequence": 7, "receivedUnixNano": 123, "raw": ours["raw"]},
        {**ours, "sequence": " 7 "},
    ]
    lines = [json.dumps(obj) for obj in spellings]
    frames = list(read_ndjson(lines))
    assert frames == [mirror_to_frame(obj) for obj in spellings]
    assert {(f.session_id, f.seq, f.ts_ns, f.type, f.data) for f in frames} == {
        ("s1", 7, 123, FrameType.OUTPUT, data)
    }
