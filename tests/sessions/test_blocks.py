"""Reading shell integration marks as command blocks (sessions/blocks.py)."""

from __future__ import annotations

from ktl_lsp.sessions.blocks import MarkParser, block_text, unescape


def _feed_all(parser: MarkParser, pieces: list[bytes]) -> list[tuple[int, str, int | None]]:
    seen = []
    for seq, piece in enumerate(pieces, 1):
        for b in parser.feed(piece, seq, seq * 1_000_000):
            seen.append((b.index, b.command, b.exit_code if b.ended else None))
    return seen


def test_a_command_from_start_to_end() -> None:
    p = MarkParser()
    stream = (
        b"\x1b]633;P;Cwd=/srv\x07\x1b]633;A\x07$ \x1b]633;B\x07ls\r\n"
        b"\x1b]633;E;ls -l\x07\x1b]633;C\x07a\r\nb\r\n\x1b]633;D;2\x07"
    )
    blocks = p.feed(stream, 7, 5)
    shown = [(b.index, b.command, b.cwd, b.from_seq, b.to_seq, b.exit_code) for b in blocks]
    # Its start, then its end: each as it was at its mark.
    assert shown == [(0, "ls -l", "/srv", 7, None, None), (0, "ls -l", "/srv", 7, 7, 2)]


def test_marks_split_across_reads_at_every_byte() -> None:
    stream = b"\x1b]633;E;echo a\\x3bb\x07\x1b]633;C\x07out\r\n\x1b]633;D;0\x07"
    for cut in range(1, len(stream)):
        p = MarkParser()
        seen = _feed_all(p, [stream[:cut], stream[cut:]])
        assert seen[-1] == (0, "echo a;b", 0), cut


def test_osc133_is_ignored_once_633_is_seen() -> None:
    p = MarkParser()
    stream = (
        b"\x1b]633;A\x07\x1b]133;A\x07$ \x1b]633;E;make\x07\x1b]633;C\x07\x1b]133;C\x07"
        b"x\r\n\x1b]133;D;0\x07\x1b]633;D;1\x07"
    )
    assert _feed_all(p, [stream]) == [(0, "make", None), (0, "make", 1)]


def test_osc133_alone_and_osc7_cwd() -> None:
    p = MarkParser()
    stream = b"\x1b]7;file://host/tmp/a%20b\x07\x1b]133;A\x07$ \x1b]133;C\x07x\x1b]133;D;0\x1b\\"
    blocks = p.feed(stream, 1, 1)
    assert blocks[-1].cwd == "/tmp/a b" and blocks[-1].exit_code == 0


def test_nested_shell_marks_belong_to_the_outer_block() -> None:
    p = MarkParser()
    seen = _feed_all(
        p,
        [
            b"\x1b]633;E;ssh box\x07\x1b]633;C\x07",
            b"\x1b]633;A\x07$ \x1b]633;B\x07\x1b]633;E;ls\x07\x1b]633;C\x07",  # inner prompt
            b"\x1b]633;D;0\x07",  # the inner command ends the outer block early
            b"\x1b]633;D;5\x07",  # and the outer end is then ignored
        ],
    )
    assert seen == [(0, "ssh box", None), (0, "ssh box", 0)]
    assert p.current is None and p.count == 1


def test_control_characters_in_a_command_line() -> None:
    assert unescape("a\\x1bb\\\\c\\x3b") == "a\x1bb\\c;"
    p = MarkParser()
    blocks = p.feed(b"\x1b]633;E;printf '\\x07'\x07\x1b]633;C\x07", 1, 1)
    assert blocks[0].command == "printf '\x07'"


def test_a_prompt_without_an_end_mark_ends_the_block() -> None:
    p = MarkParser()
    seen = _feed_all(p, [b"\x1b]133;C\x07x\r\n", b"\x1b]133;A\x07$ "])
    assert seen[-1][0] == 0 and p.current is None


def test_block_text_is_between_its_marks() -> None:
    raw = (
        b"$ echo hi\r\n\x1b]633;E;echo hi\x07\x1b]633;C\x07hi \x1b[32mthere\x1b[0m\r\n"
        b"50%\r100%\r\n\x1b]633;D;0\x07\x1b]633;A\x07$ "
    )
    assert block_text(raw) == "hi there\n100%"
