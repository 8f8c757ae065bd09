"""Self-contained HTML export: one file that replays the session in a browser, with no network.

The page inlines xterm.js (``ktl_lsp/web/vendor``), the player (``ktl_lsp/web/player.js`` and
``player.css``), the session's metadata and its frames; a Content-Security-Policy forbids
every fetch, so nothing leaves the machine when the file is opened. Frames are written one
line at a time as they are read from the store (the page holds them all, the exporter not):
output as the session's NDJSON lines (the bytes of a bundle's ``frames.ndjson``, so a bundle
deflates them once for both members), resizes and markers as a short list after them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any

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
from ktl_lsp.sessions.export.ndjson import ndjson_lines
from ktl_lsp.sessions.model import Frame, FrameType, Session
from ktl_lsp.sessions.redact import Redactor
from ktl_lsp.sessions.store import Store

__all__ = ["CSP", "Marks", "html_head", "html_pieces", "html_tail", "iter_html", "script_safe"]

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


class Marks:
    """The frames the page takes from outside the NDJSON (resizes, markers, labelled events)
    as compact arrays (player.js), collected from frames passing :meth:`through` on their way
    to the NDJSON."""

    def __init__(self, session: Session) -> None:
        self.start = session.created_ns
        self.items: list[str] = []

    def through(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        for frame in frames:
            if frame.type is not FrameType.OUTPUT and frame.type is not FrameType.INPUT:
                mark = self._mark(frame)
                if mark is not None:
                    self.items.append(mark)
            yield frame

    def _mark(self, frame: Frame) -> str | None:
        t = max(0, frame.ts_ns - self.start) / 1e6
        tms = int(t) if t.is_integer() else round(t, 3)
        if frame.type is FrameType.RESIZE:
            size = resize_size(frame)
            return None if size is None else f'[{frame.seq},{tms},"r","{size[0]}x{size[1]}"]'
        label = frame_label(frame)
        if not label:
            return None
        obj = frame_json(frame)
        kind = "t" if obj is not None and trimmed_count(obj) is not None else "m"
        return f"[{frame.seq},{tms},{_script_json(kind)},{_script_json(label)}]"


def script_safe(lines: Iterable[bytes]) -> Iterator[bytes]:
    """NDJSON lines that may stand inside a <script> element: '<' only occurs in JSON strings
    (output is base64), where ``\\u003c`` is the same character."""
    for line in lines:
        yield line.replace(b"<", b"\\u003c") if b"<" in line else line


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
    :func:`first_size`'s. The output is the session's NDJSON lines (:func:`script_safe`), as
    they are: a bundle's replay holds its ``frames.ndjson`` member between :func:`html_head`
    and :func:`html_tail`."""
    marks = Marks(session)
    yield html_head(session)
    yield from script_safe(ndjson_lines(session, marks.through(frames)))
    yield html_tail(session, marks.items, size)


def html_head(session: Session) -> bytes:
    """The page up to the NDJSON lines: metadata, styles, the session."""
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
        '<script type="application/x-ndjson" id="ktl-frames">\n'
    )
    return head.encode()


def html_tail(session: Session, marks: Iterable[str], size: tuple[int, int]) -> bytes:
    """The page after the NDJSON lines: the marks (:class:`Marks`), the scripts, the start."""
    tail = (
        "</script>\n"
        '<script type="application/json" id="ktl-marks">[\n' + ",\n".join(marks) + "\n]</script>\n"
        f"<script>\n{_asset('vendor/xterm.min.js')}\n</script>\n"
        f"<script>\n{_asset('player.js')}\n</script>\n"
        "<script>\n"
        "KtlPlayer.mount(document.getElementById('ktl-player'), {\n"
        "  session: JSON.parse(document.getElementById('ktl-session').textContent),\n"
        "  frames: KtlPlayer.ndjsonFrames(\n"
        "    document.getElementById('ktl-frames').textContent,\n"
        "    JSON.parse(document.getElementById('ktl-marks').textContent),\n"
        f'    "{int(session.created_ns)}"\n'
        "  ),\n"
        f"  size: [{size[0]}, {size[1]}]\n"
        "});\n"
        "</script>\n</body>\n</html>\n"
    )
    return tail.encode()
