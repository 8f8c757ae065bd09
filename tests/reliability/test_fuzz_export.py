"""Fuzzing exports where ``tests/sessions/test_export.py`` leaves a gap.

NDJSON is already fuzzed there (arbitrary bytes through store -> NDJSON -> back). Asciicast
is text, so "bytes in == bytes out" means: the output events decode exactly like the whole
byte stream decoded at once (UTF-8 sequences split across frames are reassembled, invalid
bytes become U+FFFD the same way), and the times never go backwards.
"""

from __future__ import annotations

import codecs
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ktl_lsp.sessions.model import FrameType, State
from tests.reliability.conftest import count
from tests.sessions.test_export import exported, open_store, record

PIECES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20).map(lambda s: s.encode("utf-8")),
    st.sampled_from([b"\x1b[31m", b"\r\n", b"\xe2\x82", b"\xac", b"\xf0\x9f", b"\x98\x80"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(PIECES, max_size=25), st.booleans())
def test_asciicast_output_decodes_like_the_whole_stream(pieces: list[bytes], utf8: bool) -> None:
    count("asciicast round trip")
    if utf8:  # valid UTF-8 cut at arbitrary byte boundaries
        blob = b"".join(pieces).decode("utf-8", "replace").encode("utf-8")
        cuts = sorted({min(len(p), len(blob)) for p in pieces})
        pieces = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "s.db")
        try:
            s = record(
                store,
                [(i + 2, FrameType.OUTPUT, p) for i, p in enumerate(pieces)],
                state=State.DONE,
            )
            cast = exported(store, s.id, "asciicast").decode("utf-8")
        finally:
            store.close()
    lines = [line for line in cast.split("\n") if line]  # not splitlines(): U+0085, U+2028
    header = json.loads(lines[0])
    assert header["version"] == 2
    events = [json.loads(line) for line in lines[1:]]
    out = "".join(e[2] for e in events if e[1] == "o")
    whole = b"".join(pieces)
    want = codecs.getincrementaldecoder("utf-8")("replace").decode(whole, final=True)
    assert out == want
    times = [e[0] for e in events]
    assert times == sorted(times)
