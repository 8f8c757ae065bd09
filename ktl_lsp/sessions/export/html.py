"""Self-contained HTML export: one file that replays the session in a browser, with no network.

The page inlines xterm.js (``ktl_lsp/web/vendor``), the player (``ktl_lsp/web/player.js`` and
``player.css``), the session's metadata and its frames; a Content-Security-Policy forbids
every fetch, so nothing leaves the machine when the file is opened. Frames are written one
line at a time as they are read from the store (the page holds them all, the exporter not).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any

import pybase64

from ktl_lsp.sessions.export._common import (
    ALL,
    Span,
    frame_json,
    frame_label,
    resize_size,
    scrubbed,
    trimmed_count,
)
from ktl_lsp.sessions.export.asciicast import first_size
from ktl_lsp.sessions.model import Frame, FrameType, Session
from ktl_lsp.sessions.redact import Redactor
from ktl_lsp.sessions.store import Store

__all__ = ["CSP", "html_pieces", "iter_html"]

CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'"
)


@cache
def _asset(name: str) -> str:
    text = resources.files("ktl_lsp.web").joinpath(name).read_text(encoding="utf-8")
    lowered = text.lower()
    if "</script" in lowered or "</style" in lowered or "<!--" in lowered:
        raise ValueError(f"ktl_lsp/web/{name} cannot be inlined: it contains a closing tag")
    return text


def _script_json(obj: Any) -> str:
    """JSON that is safe inside <script>: '<', '>' and '&' only occur in strings, so escape them."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _frames(session: Session, frames: Iterable[Frame]) -> Iterator[str]:
    """One compact array per frame, as player.js expects (input frames are not replayed)."""
    start = session.created_ns
    for frame in frames:
        t = max(0, frame.ts_ns - start) / 1e6
        tms = int(t) if t.is_integer() else round(t, 3)
        if frame.type is FrameType.OUTPUT:
            if frame.data:
                payload = pybase64.b64encode(frame.data).decode("ascii")
                yield f'[{frame.seq},{tms},"o","{payload}"]'
        elif frame.type is FrameType.RESIZE:
            size = resize_size(frame)
            if size is not None:
                yield f'[{frame.seq},{tms},"r","{size[0]}x{size[1]}"]'
        elif frame.type in (FrameType.EVENT, FrameType.MARKER):
            label = frame_label(frame)
            if label:
                obj = frame_json(frame)
                kind = "t" if obj is not None and trimmed_count(obj) is not None else "m"
                yield f"[{frame.seq},{tms},{_script_json(kind)},{_script_json(label)}]"


def iter_html(
    store: Store, session: Session, redactor: Redactor | None = None, span: Span = ALL
) -> Iterator[bytes]:
    """The page, in pieces: head and assets, then one frame per line, then the start-up script."""
    size, _ = first_size(store, session.id, span)
    return html_pieces(session, scrubbed(span.frames(store, session.id), redactor), size)


def html_pieces(
    session: Session, frames: Iterable[Frame], size: tuple[int, int]
) -> Iterator[bytes]:
    """:func:`iter_html` of ``frames`` (already redacted as wanted); ``size`` is
    :func:`first_size`'s."""
    title = html.escape(session.title or session.id)
    head = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="ktl-lsp">\n'
        f"<title>{title} · ktl-lsp session</title>\n"
        f"<style>\n{_asset('vendor/xterm.css')}\n</style>\n"
        f"<style>\n{_asset('player.css')}\n</style>\n"
        "</head>\n<body>\n"
        '<main id="ktl-player"></main>\n'
        "<noscript>This recorded session needs JavaScript to replay.</noscript>\n"
        '<script type="application/json" id="ktl-session">'
        f"{_script_json(session.to_lsp())}</script>\n"
        '<script type="application/json" id="ktl-frames">[\n'
    )
    yield head.encode()
    first = True
    for line in _frames(session, frames):
        yield (line if first else ",\n" + line).encode()
        first = False
    tail = (
        "\n]</script>\n"
        f"<script>\n{_asset('vendor/xterm.min.js')}\n</script>\n"
        f"<script>\n{_asset('player.js')}\n</script>\n"
        "<script>\n"
        "KtlPlayer.mount(document.getElementById('ktl-player'), {\n"
        "  session: JSON.parse(document.getElementById('ktl-session').textContent),\n"
        "  frames: JSON.parse(document.getElementById('ktl-frames').textContent),\n"
        f"  size: [{size[0]}, {size[1]}]\n"
        "});\n"
        "</script>\n</body>\n</html>\n"
    )
    yield tail.encode()
