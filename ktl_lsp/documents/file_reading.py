"""Read a file from disk as text, turning every kind of bad input into one clear problem.

Size is checked before reading (a 50 MB file is never loaded), binary content by NUL bytes, and
invalid UTF-8 is reported at the first bad byte's line and character.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from ktl_lsp.documents.positions import LineIndex, Position, Range
from ktl_lsp.documents.yaml_parse import MAX_TEXT_CHARS, YamlProblem, text_problem


@dataclass(frozen=True, slots=True)
class ReadResult:
    text: str | None
    problem: YamlProblem | None = None


def read_text_file(path: Path, max_bytes: int = MAX_TEXT_CHARS) -> ReadResult:
    """The file's text (BOM removed), or a problem explaining why it is not checked."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            mib = size / (1024 * 1024)
            return ReadResult(
                None,
                YamlProblem(
                    "file-too-large",
                    f"file is too large to check ({mib:.1f} MiB; the limit is "
                    f"{max_bytes / (1024 * 1024):.0f} MiB)",
                    Range.of(0, 0, 0, 0),
                    "warning",
                ),
            )
        data = path.read_bytes()
    except OSError as error:
        return ReadResult(
            None,
            YamlProblem(
                "file-unreadable",
                f"cannot read file: {error.strerror or error}",
                Range.of(0, 0, 0, 0),
            ),
        )
    return decode_bytes(data)


def decode_bytes(data: bytes) -> ReadResult:
    if b"\x00" in data[:8192]:
        problem = text_problem("\x00")
        return ReadResult(None, problem)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        prefix = data[: error.start].decode("utf-8", errors="replace")
        position = LineIndex(prefix).offset_to_position(len(prefix))
        rng = Range(position, Position(position.line, position.character + 1))
        return ReadResult(
            None,
            YamlProblem(
                "file-encoding",
                f"invalid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); "
                "the file is not checked",
                rng,
            ),
        )
    problem = text_problem(text)
    return ReadResult(None, problem) if problem is not None else ReadResult(text)
