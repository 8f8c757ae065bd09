"""The key path at a position of a YAML file, whether its document parses or not.

Hover, completion and code actions all start from "where is the cursor": which document, which
key path (``["spec", "template", "spec", "containers", 0, "image"]``), on the key or its value.
A document that parses answers from its composed nodes (exact for every YAML shape); one that
does not (the normal case while typing) answers from indentation and the lines above: block
mappings, ``- `` sequence items (``- name: x`` items included), sequences at their key's indent,
block scalars, and flow ``{}``/``[]`` collections on one line.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Literal

from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import get, scalar_text
from ktl_lsp.documents.yaml_parse import ParsedText, YamlDocument, parse_text, text_problem

PathPart = str | int
On = Literal["key", "value"]

__all__ = [
    "Frame",
    "LineShape",
    "PathPart",
    "YamlPath",
    "document_type",
    "opens_block_scalar",
    "path_at",
    "push_frame",
    "scan_line",
]


@dataclass(frozen=True, slots=True)
class YamlPath:
    """What the cursor is on."""

    path: tuple[PathPart, ...]
    """Keys and sequence indexes from the document's root to the key or item at the cursor.
    On a key still being typed (no colon yet), or on an empty line, the last part is the text
    typed so far ("" on an empty line)."""
    on: On
    key_range: Range | None
    """The file range of the path's last key (None when the path ends with an index)."""
    document: int
    """The document's index in the file, as `yaml.load_all` and `kubectl` count them."""
    parsed: bool
    """Answered from the composed document (else from indentation)."""

    @property
    def key(self) -> str | None:
        last = self.path[-1] if self.path else None
        return last if isinstance(last, str) else None


def path_at(
    source: str | ParsedText, line: int, character: int, layout_only: bool = False
) -> YamlPath | None:
    """The path at a 0-based (line, character in code points); None where there is none
    (past the end, on a comment or a `---` line, binary or oversized text). Never raises.

    `layout_only` reads indentation even where the document parses: a word typed on its own
    line under `image: nginx` parses as the rest of that value, while the person typing it
    means a new key."""
    if isinstance(source, str):
        if text_problem(source) is not None:
            return None
        source = parse_text(source)
    if source.problems or line < 0 or character < 0:
        return None
    lines = source.lines
    if line >= lines.line_count():
        return None
    text = lines.line_text(line)
    if character > len(text):
        return None
    located = _document_at(source, line)
    if located is None:
        return None
    start, index, document = located
    if line == start and (document is not None and _is_marker(text)):
        return None
    if document is not None and document.root is not None and not layout_only:
        hit = _tree(document.root, (line - start, character), ())
        if hit is not None:
            path, on, key = hit
            key_range = document.range_of(key) if key is not None else None
            return YamlPath(path, on, key_range, index, True)
    chunk = [lines.line_text(n) for n in range(start, line + 1)]
    if chunk and _is_marker(chunk[0]):
        chunk[0] = ""
    found = _by_indentation(chunk, character)
    if found is None:
        return None
    path, on, span = found
    key_range = None
    if span is not None:
        key_line = line if len(span) == 2 else start + span[2]
        key_range = Range.of(key_line, span[0], key_line, span[1])
    return YamlPath(path, on, key_range, index, False)


def document_type(source: ParsedText, index: int) -> tuple[str | None, str | None]:
    """The (apiVersion, kind) of a document, read from its top-level lines when it does not
    parse."""
    if not 0 <= index < len(source.documents):
        return None, None
    document = source.documents[index]
    root = document.root
    if root is not None:
        return scalar_text(get(root, "apiVersion")), scalar_text(get(root, "kind"))
    found: dict[str, str] = {}
    for n in range(document.start_line, document.end_line):
        match = _TOP_LEVEL.match(source.lines.line_text(n))
        if match and match.group(1) not in found:
            found[match.group(1)] = match.group(2).strip("'\"")
    return found.get("apiVersion"), found.get("kind")


_TOP_LEVEL = re.compile(r"^(apiVersion|kind):[ \t]+([^\s#\[\]{},&*!|>]+)")


def _is_marker(text: str) -> bool:
    return text.startswith(("---", "...")) and (len(text) == 3 or text[3] in " \t")


def _document_at(source: ParsedText, line: int) -> tuple[int, int, YamlDocument | None] | None:
    """(first line, index, document) of the document holding `line`; the comments before the
    first document count as the start of document 0."""
    documents = source.documents
    starts = [d.start_line for d in documents]
    at = bisect.bisect_right(starts, line) - 1
    if at >= 0 and line < documents[at].end_line:
        return documents[at].start_line, documents[at].index, documents[at]
    if at < 0:
        return 0, 0, None
    return None


# -- from the composed document ---------------------------------------------------------------

Hit = tuple[tuple[PathPart, ...], On, Node | None]


def _before(a: tuple[int, int], node: Node, end: bool) -> bool:
    mark = node.end_mark if end else node.start_mark
    return a < (mark.line, mark.column)


def _on_scalar(node: Node, pos: tuple[int, int]) -> bool:
    s, e = node.start_mark, node.end_mark
    return (s.line, s.column) <= pos <= (e.line, e.column)


def _in_collection(node: Node, pos: tuple[int, int]) -> bool:
    s, e = node.start_mark, node.end_mark
    return (s.line, s.column) <= pos < (e.line, e.column)


def _key_text(key: Node) -> str:
    return str(key.value) if isinstance(key, ScalarNode) else ""


def _tree(node: Node, pos: tuple[int, int], path: tuple[PathPart, ...]) -> Hit | None:
    """The hit at `pos` (chunk-relative) under `node`, or None on whitespace between nodes."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            key_path = (*path, _key_text(key))
            if _on_scalar(key, pos):
                return key_path, "key", key
            if isinstance(value, MappingNode | SequenceNode):
                if _in_collection(value, pos):
                    return _tree(value, pos, key_path)
            elif _on_scalar(value, pos) and value.start_mark.index != value.end_mark.index:
                return key_path, "value", key
            key_end = (key.end_mark.line, key.end_mark.column)
            if pos[0] == key_end[0] and pos > key_end:
                # after the key on its own line: its colon, an empty value, a nested block
                if isinstance(value, ScalarNode) and value.start_mark.index != value.end_mark.index:
                    if _before(pos, value, end=False):
                        return key_path, "value", key
                elif isinstance(value, ScalarNode) or value.start_mark.line > pos[0]:
                    return key_path, "value", key
        return None
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            item_path = (*path, index)
            if isinstance(item, MappingNode | SequenceNode):
                if _in_collection(item, pos):
                    return _tree(item, pos, item_path)
            elif _on_scalar(item, pos) and item.start_mark.index != item.end_mark.index:
                return item_path, "value", None
        return None
    if _on_scalar(node, pos):
        return path, "value", None
    return None


# -- from indentation ---------------------------------------------------------------------------

Span = tuple[int, int]
LineSpan = Span | tuple[int, int, int]
"""Columns on the cursor's line, or (start, end, line in the chunk)."""
Found = tuple[tuple[PathPart, ...], On, LineSpan | None]


@dataclass(slots=True)
class LineShape:
    """One line's structure: its `- ` dashes, then an optional key, then the value text."""

    dashes: list[int]
    key: str | None = None
    key_span: Span | None = None
    value_col: int | None = None
    """Where the value (after the colon, or after the last dash) starts; None when empty."""
    value: str = ""
    content_col: int | None = None
    """The first column of the key or the value after the dashes; None on an empty item."""


@dataclass(slots=True)
class Frame:
    col: int
    kind: Literal["map", "seq"]
    part: PathPart


def _skip_blanks(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def _comment_free(s: str, i: int) -> str:
    """The text from `i` up to a comment (` #`), outside quotes."""
    quote = ""
    for j in range(i, len(s)):
        ch = s[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'" and (j == i or s[j - 1] in " \t,[{:"):
            quote = ch
        elif ch == "#" and (j == i or s[j - 1] in " \t"):
            return s[i:j].rstrip()
    return s[i:].rstrip()


def _key_at(s: str, i: int) -> tuple[str, int, int, int] | None:
    """(key, start, end, colon column) of a block mapping key starting at `i`."""
    if i >= len(s):
        return None
    ch = s[i]
    if ch in "\"'":
        j = i + 1
        while j < len(s):
            if s[j] == ch:
                if ch == "'" and s[j + 1 : j + 2] == "'":
                    j += 2
                    continue
                break
            j += 2 if ch == '"' and s[j] == "\\" else 1
        if j >= len(s):
            return None
        k = _skip_blanks(s, j + 1)
        if s[k : k + 1] == ":" and (k + 1 == len(s) or s[k + 1] in " \t"):
            return s[i + 1 : j].replace("''", "'"), i, j + 1, k
        return None
    if ch in "[]{}>|!&*%@`#,?":
        return None
    for j in range(i, len(s)):
        if s[j] == ":" and (j + 1 == len(s) or s[j + 1] in " \t"):
            key = s[i:j].rstrip()
            return key, i, i + len(key), j
        if s[j] == "#" and s[j - 1] in " \t":
            return None
    return None


def scan_line(s: str) -> LineShape | None:
    """The structure of a line; None when it is blank or only a comment."""
    i = _skip_blanks(s, 0)
    if i == len(s) or s[i] == "#":
        return None
    line = LineShape([])
    while s[i : i + 1] == "-" and (i + 1 == len(s) or s[i + 1] in " \t"):
        line.dashes.append(i)
        i = _skip_blanks(s, i + 1)
    if i == len(s) or s[i] == "#":
        return line
    line.content_col = i
    key = _key_at(s, i)
    if key is not None:
        line.key, start, end, colon = key
        line.key_span = (start, end)
        i = _skip_blanks(s, colon + 1)
        if i == len(s) or s[i] == "#":
            return line
    line.value_col = i
    line.value = _comment_free(s, i)
    return line


def push_frame(stack: list[Frame], col: int, kind: Literal["map", "seq"], key: str) -> None:
    """An element at `col`: a `- ` item (kind "seq") or a key (kind "map")."""
    while stack and stack[-1].col > col:
        stack.pop()
    if stack and stack[-1].col == col:
        top = stack[-1]
        if kind == "seq":
            if top.kind == "seq":
                assert isinstance(top.part, int)
                top.part += 1
            else:  # a sequence at its key's indentation
                stack.append(Frame(col, "seq", 0))
            return
        if top.kind == "seq":  # that sequence ended: the key belongs to the mapping around it
            stack.pop()
            if stack and stack[-1].col == col and stack[-1].kind == "map":
                stack[-1].part = key
                return
        else:
            top.part = key
            return
    stack.append(Frame(col, kind, 0 if kind == "seq" else key))


def opens_block_scalar(value: str) -> bool:
    return bool(re.fullmatch(r"[|>][-+0-9]*", value))


def _flow_balance(value: str) -> int:
    depth = 0
    quote = ""
    for ch in value:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def _indent(s: str) -> int:
    return len(s) - len(s.lstrip(" \t"))


def _by_indentation(chunk: list[str], character: int) -> Found | None:
    """The path at (last line of `chunk`, character) from the lines' structure alone."""
    stack: list[Frame] = []
    block_col: int | None = None  # inside a block scalar owned by the element at this column
    block_key: LineSpan | None = None
    flow_depth = 0  # inside a flow collection that spans lines
    for number, text in enumerate(chunk[:-1]):
        if block_col is not None:
            if not text.strip() or _indent(text) > block_col:
                continue
            block_col = None
        if flow_depth > 0:
            flow_depth += _flow_balance(_comment_free(text, 0))
            continue
        line = scan_line(text)
        if line is None:
            continue
        for col in line.dashes:
            push_frame(stack, col, "seq", "")
        if line.key is not None and line.key_span is not None:
            push_frame(stack, line.key_span[0], "map", line.key)
        if opens_block_scalar(line.value):
            owner = line.key_span[0] if line.key_span else (line.dashes or [0])[-1]
            block_col = owner
            span = line.key_span
            block_key = (span[0], span[1], number) if span is not None else None
        elif line.value[:1] in ("[", "{"):
            flow_depth = max(0, _flow_balance(line.value))
    if block_col is not None and (not chunk[-1].strip() or _indent(chunk[-1]) > block_col):
        return _path(stack), "value", block_key
    return _on_line(stack, chunk[-1], character)


def _path(stack: list[Frame]) -> tuple[PathPart, ...]:
    return tuple(frame.part for frame in stack)


def _on_line(stack: list[Frame], text: str, character: int) -> Found | None:
    line = scan_line(text)
    if line is None:
        comment = text.find("#")
        if comment >= 0 and character > comment:
            return None
        push_frame(stack, character, "map", "")
        return _path(stack), "key", (character, character)
    first = line.dashes[0] if line.dashes else line.content_col
    if first is None or character < first:
        return None
    for col in line.dashes:
        push_frame(stack, col, "seq", "")
        if character <= col:
            return _path(stack), "value", None
    if line.key is not None and line.key_span is not None:
        start, end = line.key_span
        push_frame(stack, start, "map", line.key)
        if character <= end:
            return _path(stack), "key", line.key_span
        flow = line.value_col is not None and line.value[:1] in ("[", "{")
        if flow and line.value_col is not None and character >= line.value_col:
            return _in_flow(_path(stack), line.value, line.value_col, character, line.key_span)
        return _path(stack), "value", line.key_span
    if line.value_col is None:  # an empty item: `- `
        return _path(stack), "value", None
    if line.value[:1] in ("[", "{"):
        return _in_flow(_path(stack), line.value, line.value_col, character, None)
    if not line.dashes:  # a key being typed, no colon yet
        word = line.value
        push_frame(stack, line.value_col, "map", word)
        return _path(stack), "key", (line.value_col, line.value_col + len(word))
    return _path(stack), "value", None


_FLOW_TOKEN = re.compile(
    r"""\s*(?:([\[\]{},])|(:)(?=[\s\[\]{},]|$)|("(?:[^"\\]|\\.)*"?|'(?:[^']|'')*'?)|((?:[^\s\[\]{},:]|:(?![\s\[\]{},]|$))(?:[^\[\]{},:]|:(?![\s\[\]{},]|$))*))"""
)


def _in_flow(
    base: tuple[PathPart, ...], value: str, col: int, character: int, key_span: Span | None
) -> Found:
    """The path inside a one-line flow collection starting at `col`."""
    frames: list[list[PathPart | str | None]] = []  # [kind, part, state]
    pos = 0
    last_key_span: Span | None = None
    while pos < len(value):
        match = _FLOW_TOKEN.match(value, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        punct, colon, quoted, plain = match.groups()
        start = col + match.start(match.lastindex or 0)
        end = col + match.end()
        if start > character:
            break
        top = frames[-1] if frames else None
        if punct in ("[", "{"):
            frames.append(["seq", 0, None] if punct == "[" else ["map", None, "key"])
        elif punct in ("]", "}"):
            if character < end or not frames:
                break
            frames.pop()
        elif punct == ",":
            if top is not None and top[0] == "seq":
                top[1] = int(top[1] or 0) + 1
            elif top is not None:
                top[1], top[2] = None, "key"
        elif colon:
            if top is not None and top[0] == "map":
                top[2] = "value"
        else:
            text = plain if plain is not None else _unquote(quoted or "")
            if top is not None and top[0] == "map" and top[2] == "key":
                top[1] = text.rstrip()
                last_key_span = (start, start + len(text.rstrip()))
                if character <= start + len(text.rstrip()):
                    return (*base, *_flow_parts(frames)), "key", last_key_span
            elif character <= end:
                return (*base, *_flow_parts(frames)), "value", _owner_span(frames, last_key_span)
    if frames and frames[-1][0] == "map" and frames[-1][2] == "key":
        frames[-1][1] = ""
        return (*base, *_flow_parts(frames)), "key", (character, character)
    if not frames:
        return base, "value", key_span
    return (*base, *_flow_parts(frames)), "value", _owner_span(frames, last_key_span)


def _flow_parts(frames: list[list[PathPart | str | None]]) -> tuple[PathPart, ...]:
    parts: list[PathPart] = []
    for kind, part, _ in frames:
        if part is None:
            break
        parts.append(int(part) if kind == "seq" else str(part))
    return tuple(parts)


def _owner_span(frames: list[list[PathPart | str | None]], span: Span | None) -> Span | None:
    return span if frames and frames[-1][0] == "map" else None


def _unquote(text: str) -> str:
    if text[:1] == "'":
        return text.strip("'").replace("''", "'")
    return text.strip('"')
