"""libFuzzer target: any bytes, cut into any chunks, parse to the same SSE events as whole."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from ktl_lsp.gateway.sse_client import SseParser


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntListInRange(fdp.ConsumeIntInRange(0, 8), 0, 4096))
    text = fdp.ConsumeUnicodeNoSurrogates(4096)
    whole = SseParser().feed(text)
    parser = SseParser()
    pieces, last = [], 0
    for cut in [c for c in cuts if c <= len(text)] + [len(text)]:
        pieces.extend(parser.feed(text[last:cut]))
        last = max(last, cut)
    # A trailing CR may still be deciding (whole text has it last too): both agree anyway.
    if pieces != whole:
        raise AssertionError(f"chunking changed the events: {text!r} at {cuts}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
