"""Which template line wrote a rendered line: a Helm template read as YAML with actions.

A template is YAML whose lines carry Go-template actions. Read by indentation (actions masked,
lines holding only actions kept out of the structure), each literal key has a key path, and each
action that writes YAML (`include`, `template`, `toYaml`, `tpl`, or any output action alone on
its line) has the path of the mapping or sequence its output lands in (its `nindent` column).
A node of a rendered document is placed at the literal line of its key path when that line's
literal text matches the rendered line, else at the action that wrote under the longest prefix
of its path, else nowhere (the caller falls back to the template's first line).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_path import (
    Frame,
    PathPart,
    opens_block_scalar,
    push_frame,
    scan_line,
)

KeyPath = tuple[PathPart, ...]
Shape = tuple[str | None, ...]
"""A path with its sequence indexes blanked: what a template line and a rendered node share."""
Span = tuple[int, int]

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
MASK = "\x01"
_BLOCK_OPENERS = frozenset({"if", "range", "with", "define", "block"})
_CONTROL = _BLOCK_OPENERS | {"else", "end", "break", "continue"}
_INDENT = re.compile(r"\bn?indent\s+(\d+)")
_NAMED = re.compile(r'\b(include|template)\s+"([^"]+)"')
_TO_TEXT = re.compile(r"\b(toYaml|toJson|toPrettyJson|toRawJson|tpl)\s+\(?\s*(\$?\.[\w.]*)")
_PIPED = re.compile(r"^\(?\s*(\$?\.[\w.]*)\s*\)?\s*\|.*?\b(toYaml|toJson|toPrettyJson|tpl)\b")
_ASSIGN = re.compile(r"^\$\w*\s*:?=")
_MULTILINE_OUTPUT = re.compile(r"\b(?:include|template|toYaml|toJson|toPrettyJson|tpl|n?indent)\b")


def shape_of(path: Iterable[PathPart]) -> Shape:
    return tuple(p if isinstance(p, str) else None for p in path)


@dataclass(frozen=True, slots=True)
class Action:
    """One `{{ ... }}` starting on a line: its columns there and its text without delimiters,
    trim markers and surrounding blanks."""

    start: int
    end: int
    """On the action's first line (the line's end when the action goes on)."""
    text: str

    @property
    def word(self) -> str:
        return self.text.split(None, 1)[0] if self.text else ""

    @property
    def is_control(self) -> bool:
        text = self.text
        return (
            not text or text.startswith("/*") or self.word in _CONTROL or bool(_ASSIGN.match(text))
        )


@dataclass(frozen=True, slots=True)
class KeyLine:
    """A literal key (or `- ` item) of the template with its key path."""

    line: int
    document: int
    path: KeyPath
    key_span: Span | None
    """None on a `- value` item."""
    value_span: Span | None
    masked: str
    """The line with its actions masked (what the rendered line must look like)."""

    def matches(self, rendered_line: str) -> bool:
        return _line_pattern(self.masked).match(rendered_line) is not None


@dataclass(frozen=True, slots=True)
class Emitter:
    """An action that writes YAML lines (keys or items) under `parent`."""

    line: int
    document: int
    span: Span
    parent: KeyPath
    kind: str
    """"include", "template", "toYaml", "toJson", "tpl", ... or "output" (any other action)."""
    subject: str
    """The named template, or the values expression (".Values.resources"), or the action."""
    values_path: KeyPath | None
    """`subject` as a path into the values, when it is one."""

    def describe(self) -> str:
        if self.kind in ("include", "template"):
            return f'{self.kind} "{self.subject}"'
        if self.kind == "output":
            return f"{{{{ {self.subject} }}}}"
        return f"{self.kind} {self.subject}"


@dataclass
class TemplateShape:
    """The literal keys and emitting actions of one template (or one `define` body)."""

    keys: dict[Shape, list[KeyLine]] = field(default_factory=dict)
    emitters: list[Emitter] = field(default_factory=list)
    dynamic: set[Shape] = field(default_factory=set)
    """Sequences whose items actions add, repeat or drop: their indexes do not follow the text."""
    kinds: dict[int, str] = field(default_factory=dict)
    """The literal `kind:` of each template document."""


@dataclass
class Template:
    """A template file read once: its main body's shape and its `define`s."""

    lines: list[str]
    main: TemplateShape
    defines: dict[str, tuple[int, TemplateShape]]
    """name -> (line of the `define`, its body's shape)."""

    first_line: int
    """The first line of YAML outside actions and defines (where unplaceable findings go)."""


@functools.lru_cache(maxsize=4096)
def _line_pattern(masked: str) -> re.Pattern[str]:
    """A rendered line that a template line wrote: its literal text, any text for each action,
    blanks anywhere (trim markers and `nindent` move them)."""
    parts: list[str] = [r"\s*"]
    for piece in re.split(f"({MASK}+|\\s+)", masked.strip()):
        if not piece:
            continue
        if piece[0] == MASK:
            parts.append(".*?")
        elif piece.isspace():
            parts.append(r"\s*")
        else:
            parts.append(re.escape(piece))
    parts.append(r"\s*\Z")
    return re.compile("".join(parts))


def _actions(text: str, starts: Sequence[int]) -> tuple[str, dict[int, list[Action]]]:
    """The text with every action masked (newlines kept), and the actions by first line."""
    out: list[str] = []
    by_line: dict[int, list[Action]] = {}
    last = 0
    for match in _ACTION.finditer(text):
        start, end = match.span()
        out.append(text[last:start])
        out.append("".join(c if c == "\n" else MASK for c in text[start:end]))
        last = end
        inner = match.group(1)
        if inner[:1] == "-" and inner[1:2] in ("", " ", "\t", "\n", "\r"):
            inner = inner[1:]
        if inner[-1:] == "-" and inner[-2:-1] in ("", " ", "\t", "\n", "\r"):
            inner = inner[:-1]
        line = bisect.bisect_right(starts, start) - 1
        col = start - starts[line]
        next_start = starts[line + 1] - 1 if line + 1 < len(starts) else len(text)
        by_line.setdefault(line, []).append(
            Action(col, min(end, next_start) - starts[line], inner.strip())
        )
    out.append(text[last:])
    return "".join(out), by_line


def _line_starts(text: str) -> list[int]:
    starts = [0]
    find = text.find
    i = find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = find("\n", i + 1)
    return starts


def read_template(text: str) -> Template:
    """Read a template (or a helpers file) once; never raises."""
    text = text.replace("\r\n", "\n")
    starts = _line_starts(text)
    masked_text, actions = _actions(text, starts)
    lines = text.split("\n")
    masked = masked_text.split("\n")
    main: list[int] = []
    defines: dict[str, tuple[int, list[int]]] = {}
    depth = 0
    define: tuple[str, int, int, list[int]] | None = None  # name, line, depth, body
    for number in range(len(lines)):
        for action in actions.get(number, ()):
            word = action.word
            if word == "define" and define is None:
                named = re.match(r'define\s+"([^"]+)"', action.text)
                define = (named.group(1) if named else "", number, depth, [])
            if word in _BLOCK_OPENERS:
                depth += 1
            elif word == "end":
                depth -= 1
                if define is not None and depth == define[2]:
                    defines[define[0]] = (define[1], define[3])
                    define = None
        if define is not None:
            if number != define[1]:
                define[3].append(number)
        else:
            main.append(number)
    walk = functools.partial(_walk, masked, actions)
    first = next((n for n in main if masked[n].replace(MASK, "").strip()), 0)
    return Template(
        lines,
        walk(main),
        {name: (line, walk(body)) for name, (line, body) in defines.items()},
        first,
    )


@dataclass
class _Scope:
    word: str
    dot: str | None
    """What `.` stands for inside the block ("" the root context, None unknown)."""


def _resolve(expr: str, dot: str | None) -> str | None:
    if expr.startswith("$."):
        return expr[1:]
    if expr == ".":
        return dot or None
    if expr.startswith("."):
        if dot is None:
            return None
        return dot + expr
    return None


def _values_path(expr: str | None) -> KeyPath | None:
    if expr is None or not (expr == ".Values" or expr.startswith(".Values.")):
        return None
    return tuple(p for p in expr.split(".")[2:] if p)


def _emitter_kind(action: Action, dot: str | None) -> tuple[str, str, str | None]:
    """(kind, subject, the values expression it reads) of an action that writes YAML."""
    text = action.text
    named = _NAMED.search(text)
    if named:
        return named.group(1), named.group(2), None
    to_text = _TO_TEXT.search(text)
    piped = _PIPED.match(text)
    found = (to_text[1], to_text[2]) if to_text else (piped[2], piped[1]) if piped else None
    if found is not None:
        fn, expr = found
        resolved = _resolve(expr, dot)
        return fn, resolved or expr, resolved
    return "output", text if len(text) <= 60 else text[:57] + "...", None


def _walk(masked: list[str], actions: dict[int, list[Action]], numbers: list[int]) -> TemplateShape:
    shape = TemplateShape()
    frames: list[Frame] = []
    scopes: list[_Scope] = [_Scope("", "")]
    document = 0
    block_col: int | None = None  # inside a block scalar owned by the element at this column
    for number in numbers:
        text = masked[number]
        line_actions = actions.get(number, ())
        only_actions = not text.replace(MASK, "").strip()
        if block_col is not None:
            if not text.strip() or _indent(text) > block_col:
                _track_scopes(scopes, line_actions)
                continue
            block_col = None
        if text.startswith("---") and text[3:4] in ("", " ", "\t"):
            frames = []
            document += 1
            continue
        if only_actions:
            for action in line_actions:
                if not action.is_control:
                    _emit_alone(shape, frames, action, number, document, scopes[-1].dot)
            if line_actions:
                column = _indent(text)
                shape.dynamic.add(shape_of(_path(_above(frames, column))))
            _track_scopes(scopes, line_actions)
            continue
        line = scan_line(text)
        if line is None:
            _track_scopes(scopes, line_actions)
            continue
        for col in line.dashes:
            push_frame(frames, col, "seq", "")
        key_span = line.key_span
        if line.key is not None and key_span is not None and MASK not in line.key:
            push_frame(frames, key_span[0], "map", line.key)
            path = _path(frames)
            if len(path) == 1 and line.key == "kind" and MASK not in line.value and line.value:
                shape.kinds.setdefault(document, line.value.strip("'\""))
        elif line.key is not None and key_span is not None:
            # A templated key (`{{ $k }}: v`): its value belongs to no literal path.
            push_frame(frames, key_span[0], "map", MASK)
            key_span = None
            path = ()
        elif line.dashes:
            path = _path(frames)
        else:
            path = ()
        if path and MASK not in path:
            value_span = None
            if line.value_col is not None and line.value:
                value_span = (line.value_col, line.value_col + len(line.value))
            entry = KeyLine(number, document, path, key_span, value_span, text)
            shape.keys.setdefault(shape_of(path), []).append(entry)
            for action in line_actions:
                if action.start >= (line.value_col or 0) and _MULTILINE_OUTPUT.search(action.text):
                    _add_emitter(shape, action, number, document, path, scopes[-1].dot)
        if opens_block_scalar(line.value):
            owner = line.key_span or ((line.dashes or [0])[-1], 0)
            block_col = owner[0]
        _track_scopes(scopes, line_actions)
    return shape


def _emit_alone(
    shape: TemplateShape,
    frames: list[Frame],
    action: Action,
    number: int,
    document: int,
    dot: str | None,
) -> None:
    indent = _INDENT.search(action.text)
    column = int(indent.group(1)) if indent else action.start
    parent = _path(_above(frames, column))
    if MASK in parent:
        return
    shape.dynamic.add(shape_of(parent))
    _add_emitter(shape, action, number, document, parent, dot)


def _add_emitter(
    shape: TemplateShape,
    action: Action,
    number: int,
    document: int,
    parent: KeyPath,
    dot: str | None,
) -> None:
    kind, subject, expr = _emitter_kind(action, dot)
    shape.emitters.append(
        Emitter(
            number,
            document,
            (action.start, action.end),
            parent,
            kind,
            subject,
            _values_path(expr),
        )
    )


def _track_scopes(scopes: list[_Scope], line_actions: Iterable[Action]) -> None:
    for action in line_actions:
        word = action.word
        dot = scopes[-1].dot
        if word == "with":
            expr = action.text.split(None, 1)[1] if " " in action.text else ""
            scopes.append(_Scope(word, _resolve(expr.split("|")[0].strip(), dot)))
        elif word == "range":
            scopes.append(_Scope(word, None))
        elif word in ("define", "block"):
            scopes.append(_Scope(word, ""))
        elif word == "if":
            scopes.append(_Scope(word, dot))
        elif word == "end" and len(scopes) > 1:
            scopes.pop()


def _above(frames: list[Frame], column: int) -> list[Frame]:
    """The frames a line starting at `column` sits under."""
    return [f for f in frames if f.col < column]


def _path(frames: Iterable[Frame]) -> KeyPath:
    return tuple(f.part for f in frames)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" \t"))


# -- rendered nodes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Located:
    """A node of a rendered document: its key path, whether it is the key, and the lines (in the
    document) where each part of the path sits."""

    path: KeyPath
    on: Literal["key", "value"]
    lines: tuple[int, ...]
    """`lines[i]`: the line of the key or item `path[i]`."""

    @property
    def line(self) -> int:
        return self.lines[-1] if self.lines else 0


def locate(root: Node, rng: Range) -> Located:
    """The node a finding's range covers: exactly (key or value) when one does, else the
    deepest node holding its start."""
    start = (rng.start.line, rng.start.character)
    end = (rng.end.line, rng.end.character)
    path: list[PathPart] = []
    lines: list[int] = []
    node = root
    while True:
        children: list[tuple[PathPart, Node | None, Node]]
        if isinstance(node, MappingNode):
            children = [
                (str(k.value) if isinstance(k, ScalarNode) else "", k, v) for k, v in node.value
            ]
        elif isinstance(node, SequenceNode):
            children = [(i, None, item) for i, item in enumerate(node.value)]
        else:
            break
        deeper: tuple[PathPart, Node | None, Node] | None = None
        for part, key, value in children:
            anchor = key if key is not None else value
            if key is not None and _span(key) == (start, end):
                return Located((*path, part), "key", (*lines, _line(anchor)))
            if _span(value) == (start, end):
                return Located((*path, part), "value", (*lines, _line(anchor)))
            if _holds(key, value, start):
                deeper = (part, key, value)
        if deeper is None:
            break
        part, key, value = deeper
        path.append(part)
        lines.append(_line(key if key is not None else value))
        if key is not None and _holds(key, key, start) and not _holds(None, value, start):
            return Located(tuple(path), "key", tuple(lines))
        node = value
    return Located(tuple(path), "value", tuple(lines))


def _span(node: Node) -> tuple[tuple[int, int], tuple[int, int]]:
    s, e = node.start_mark, node.end_mark
    return (s.line, s.column), (e.line, e.column)


def _holds(key: Node | None, value: Node, pos: tuple[int, int]) -> bool:
    first = key if key is not None else value
    s = (first.start_mark.line, first.start_mark.column)
    e = (value.end_mark.line, value.end_mark.column)
    return s <= pos < e or (s <= pos and pos == e and isinstance(value, ScalarNode))


def _line(node: Node) -> int:
    return int(node.start_mark.line)


# -- placement -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placed:
    """Where in the template a rendered node was written."""

    line: int
    span: Span
    key_line: KeyLine | None = None
    emitter: Emitter | None = None
    remainder: KeyPath = ()
    """The part of the node's path the emitter wrote (below its parent)."""


def place(
    shape: TemplateShape,
    located: Located,
    rendered_lines: Sequence[str],
    documents: frozenset[int] | None,
    confirm: Callable[[Emitter, KeyPath], bool] | None = None,
    literal_lines: bool = True,
) -> Placed | None:
    """The template place of a located rendered node: its literal line, else the action that
    emitted it. A literal line whose sequence indexes differ (an item of a `range`, or items an
    action adds) yields to an action whose source (`confirm`) holds the node. Without
    `literal_lines`, only an action."""
    path = located.path
    rendered_line = rendered_lines[located.line] if located.line < len(rendered_lines) else ""
    literal, exact = _literal(shape, path, rendered_line, documents)
    if not literal_lines:
        literal, exact = None, False
    if literal is not None and exact:
        return _at_literal(literal, located.on)
    emitted = _emitter(shape, path, documents, confirm)
    if literal is not None and (emitted is None or not emitted[1]):
        return _at_literal(literal, located.on)
    # A flow collection or an inline value: the node sits on an ancestor's literal line.
    for k in range(len(path) - 1, 0, -1) if literal_lines else ():
        if located.lines[k - 1] != located.line:
            break
        ancestor, _ = _literal(shape, path[:k], rendered_line, documents)
        if ancestor is not None:
            return _at_literal(ancestor, "value")
    if emitted is None:
        return None
    (emitter, remainder), _ = emitted
    return Placed(emitter.line, emitter.span, emitter=emitter, remainder=remainder)


def place_line(shape: TemplateShape, rendered_line: str) -> Placed | None:
    """The literal line that wrote a rendered line, when exactly one can have (for rendered
    text that does not parse, so has no key paths)."""
    if not rendered_line.strip():
        return None
    found = {
        e.line: e for entries in shape.keys.values() for e in entries if e.matches(rendered_line)
    }
    if len(found) != 1:
        return None
    (entry,) = found.values()
    return _at_literal(entry, "value")


def _at_literal(literal: KeyLine, on: Literal["key", "value"]) -> Placed:
    if on == "value" and literal.value_span is not None:
        span = literal.value_span
    else:
        span = literal.key_span or literal.value_span or (0, 0)
    return Placed(literal.line, span, key_line=literal)


def _emitter(
    shape: TemplateShape,
    path: KeyPath,
    documents: frozenset[int] | None,
    confirm: Callable[[Emitter, KeyPath], bool] | None,
) -> tuple[tuple[Emitter, KeyPath], bool] | None:
    """((emitter, the path below it), whether its source holds that path) for the deepest
    emitter the node's path passes through."""
    for k in range(len(path) - 1, -1, -1):
        prefix = shape_of(path[:k])
        found = [
            e
            for e in shape.emitters
            if shape_of(e.parent) == prefix and (documents is None or e.document in documents)
        ]
        if not found:
            continue
        remainder = path[k:]
        confirmed = next((e for e in found if confirm and confirm(e, remainder)), None)
        return (confirmed or found[0], remainder), confirmed is not None
    return None


def _literal(
    shape: TemplateShape, path: KeyPath, rendered_line: str, documents: frozenset[int] | None
) -> tuple[KeyLine | None, bool]:
    """The literal line of `path` that matches the rendered line, and whether all its sequence
    indexes agree."""
    best: tuple[int, KeyLine] | None = None
    for entry in shape.keys.get(shape_of(path), ()):
        if documents is not None and entry.document not in documents:
            continue
        score = _index_score(shape, entry.path, path)
        if score < 0 or not entry.matches(rendered_line):
            continue
        if best is None or score > best[0]:
            best = (score, entry)
    if best is None:
        return None, False
    return best[1], best[0] == sum(1 for p in path if isinstance(p, int))


def _index_score(shape: TemplateShape, template_path: KeyPath, path: KeyPath) -> int:
    """How many sequence indexes agree (-1: an index of a sequence the text fixes differs)."""
    score = 0
    for i, (mine, theirs) in enumerate(zip(template_path, path, strict=True)):
        if not isinstance(mine, int):
            continue
        if mine == theirs:
            score += 1
        elif shape_of(path[:i]) not in shape.dynamic:
            return -1
    return score


def documents_for(shape: TemplateShape, index: int, kind: str | None) -> frozenset[int] | None:
    """The template documents a rendered document may come from (by its kind, else its index);
    None: any."""
    if not shape.kinds:
        return None
    by_kind = frozenset(d for d, k in shape.kinds.items() if k == kind)
    if len(by_kind) == 1:
        return by_kind
    if by_kind and index in by_kind:
        return frozenset({index})
    return by_kind or None
