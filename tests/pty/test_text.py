from __future__ import annotations

from ktl_lsp.pty.text import LineSplitter, newest_line, strip_ansi


def test_strip_ansi_removes_csi_osc_and_keeps_text() -> None:
    s = "\x1b[1;31mred\x1b[0m \x1b]0;title\x07plain \x1b[2K\x1b[1Gdone\x1b(B"
    assert strip_ansi(s) == "red plain done"


def test_newest_line_prefers_the_redraw_in_progress() -> None:
    assert newest_line("build\n\r 10%\r 55%") == "55%"
    assert newest_line("first\nsecond\n") == "second"
    assert newest_line("\x1b[32mok\x1b[0m\n\n") == "ok"
    assert newest_line("") == ""


def test_line_splitter_keeps_partial_lines() -> None:
    s = LineSplitter()
    assert s.feed("a\nb") == ["a"]
    assert s.feed("c\n\rx\ry\n") == ["bc", "y"]
    assert s.current() == ""
