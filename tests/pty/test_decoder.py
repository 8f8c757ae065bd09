"""The UTF-8 splitter keeps every byte and never emits half a character, however reads fall."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from ktl_lsp.pty.decoder import Utf8Splitter


def _feed_in_pieces(data: bytes, cuts: list[int]) -> tuple[bytes, str]:
    splitter = Utf8Splitter()
    raw_parts, text_parts = [], []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        raw, text = splitter.feed(data[a:b])
        raw_parts.append(raw)
        text_parts.append(text)
    raw, text = splitter.flush()
    return b"".join(raw_parts) + raw, "".join(text_parts) + text


@given(st.text(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_text_survives_any_split(text: str, cuts: list[int]) -> None:
    data = text.encode("utf-8")
    raw, decoded = _feed_in_pieces(data, cuts)
    assert raw == data
    assert decoded == text


@given(st.binary(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_arbitrary_bytes_are_kept_exactly(data: bytes, cuts: list[int]) -> None:
    raw, decoded = _feed_in_pieces(data, cuts)
    assert raw == data
    assert decoded == data.decode("utf-8", errors="replace")


def test_each_piece_decodes_on_its_own() -> None:
    splitter = Utf8Splitter()
    rocket = "🚀".encode()
    pieces = [
        splitter.feed(rocket[:1]),
        splitter.feed(rocket[1:3]),
        splitter.feed(rocket[3:] + b"!"),
    ]
    assert pieces == [(b"", ""), (b"", ""), (rocket + b"!", "🚀!")]
