"""UTF-8 decoding across reads: a character split between two reads is emitted whole, once."""

from __future__ import annotations

import codecs


class Utf8Splitter:
    """Splits a byte stream into (raw, text) pieces that each end on a character boundary.

    The raw pieces concatenate to exactly the input bytes, so the store keeps every byte while the
    editor gets text that never carries half a character.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._carry = b""

    def feed(self, data: bytes) -> tuple[bytes, str]:
        text = self._decoder.decode(data)
        pending = self._decoder.getstate()[0]
        whole = self._carry + data if self._carry else data
        cut = len(whole) - len(pending)
        self._carry = whole[cut:]
        return whole[:cut], text

    def flush(self) -> tuple[bytes, str]:
        text = self._decoder.decode(b"", final=True)
        raw, self._carry = self._carry, b""
        return raw, text
