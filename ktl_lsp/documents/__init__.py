"""YAML with positions, document splitting and caching, and file-kind detection.

Nothing here knows about LSP: positions are 0-based lines and code-point columns, converted to
the client's encoding with `LineIndex` at the boundary.

The names below load on first use: ``file_kinds`` alone must not pull in the YAML parser,
which the server's start-up would pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ktl_lsp.lazy import lazy_exports

if TYPE_CHECKING:
    from ktl_lsp.documents.file_kinds import FileKind, detect_file_kind, is_checkable_name
    from ktl_lsp.documents.file_reading import ReadResult, decode_bytes, read_text_file
    from ktl_lsp.documents.positions import LineIndex, Position, PositionEncoding, Range
    from ktl_lsp.documents.yaml_chunks import Chunk, split_documents
    from ktl_lsp.documents.yaml_parse import (
        DocumentCache,
        ParsedChunk,
        ParsedText,
        YamlDocument,
        YamlProblem,
        parse_chunk,
        parse_text,
    )

__getattr__ = lazy_exports(
    __name__,
    {
        "FileKind": "ktl_lsp.documents.file_kinds",
        "detect_file_kind": "ktl_lsp.documents.file_kinds",
        "is_checkable_name": "ktl_lsp.documents.file_kinds",
        "ReadResult": "ktl_lsp.documents.file_reading",
        "decode_bytes": "ktl_lsp.documents.file_reading",
        "read_text_file": "ktl_lsp.documents.file_reading",
        "LineIndex": "ktl_lsp.documents.positions",
        "Position": "ktl_lsp.documents.positions",
        "PositionEncoding": "ktl_lsp.documents.positions",
        "Range": "ktl_lsp.documents.positions",
        "Chunk": "ktl_lsp.documents.yaml_chunks",
        "split_documents": "ktl_lsp.documents.yaml_chunks",
        "DocumentCache": "ktl_lsp.documents.yaml_parse",
        "ParsedChunk": "ktl_lsp.documents.yaml_parse",
        "ParsedText": "ktl_lsp.documents.yaml_parse",
        "YamlDocument": "ktl_lsp.documents.yaml_parse",
        "YamlProblem": "ktl_lsp.documents.yaml_parse",
        "parse_chunk": "ktl_lsp.documents.yaml_parse",
        "parse_text": "ktl_lsp.documents.yaml_parse",
    },
)


__all__ = [
    "Chunk",
    "DocumentCache",
    "FileKind",
    "LineIndex",
    "ParsedChunk",
    "ParsedText",
    "Position",
    "PositionEncoding",
    "Range",
    "ReadResult",
    "YamlDocument",
    "YamlProblem",
    "decode_bytes",
    "detect_file_kind",
    "is_checkable_name",
    "parse_chunk",
    "parse_text",
    "read_text_file",
    "split_documents",
]
