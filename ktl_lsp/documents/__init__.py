"""YAML with positions, document splitting and caching, and file-kind detection.

Nothing here knows about LSP: positions are 0-based lines and code-point columns, converted to
the client's encoding with `LineIndex` at the boundary.
"""

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
