"""Go-template text of a Helm chart read without rendering: actions, `.Values` paths, named
templates and the functions called, each at its exact place in the file.

`scan(text)` never raises: an unclosed action ends at the end of its line (what the author is
typing), an unclosed string at the end of its action, an `end` without a block is ignored.
Offsets count code points in the text as given; `TemplateScan.position` turns them into
positions.

What a reference means follows the template's blocks: at the top of a file `.` is the chart's
context, `{{ with .Values.a }}` makes `.b` the path `a.b`, `range` makes `.` an element (no
longer a values path), a `define` body takes `.` as the chart's context (as `include "x" .`
passes it). A reference is guarded when the template tests it before use: it appears in the
condition of `if`/`with`/`range`, in the same expression as `default`, `required`, `hasKey`,
`empty`, `coalesce`, or a block around it tested it (or a path below it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Final

from ktl_lsp.documents.positions import LineIndex, Position, Range

#: Functions whose argument may be missing without an error (or that test for it).
GUARDS: Final = frozenset(
    {"default", "required", "hasKey", "empty", "coalesce", "ternary", "and", "or", "not"}
)
KEYWORDS: Final = frozenset(
    {"if", "else", "end", "with", "range", "define", "block", "template", "break", "continue"}
)
LITERALS: Final = frozenset({"true", "false", "nil"})
ROOT: Final = "$root"
"""`Dot` of the chart's context (`.Values`, `.Release`, ... are its fields)."""

#: What `.` is: the chart's context (ROOT), a values path, or unknown (None).
Dot = tuple[str, ...] | str | None


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    """field, var, ident, string, raw, char, number, pipe, lparen, rparen, assign, comma, other"""
    text: str
    start: int
    end: int
    value: str = ""
    """A string literal's value."""


@dataclass(frozen=True, slots=True)
class Action:
    start: int
    """Offset of `{{`."""
    end: int
    """Offset after `}}` (or where an unclosed action stops)."""
    body_start: int
    body_end: int
    closed: bool
    comment: bool
    tokens: tuple[Token, ...] = ()


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ValuesRef:
    path: tuple[str, ...]
    """Keys below `.Values` (empty: `.Values` itself)."""
    start: int
    end: int
    segments: tuple[Segment, ...]
    """The keys written in the reference (not the ones `with` supplied), with their spans."""
    guarded: bool
    tested: tuple[tuple[str, ...], ...] = ()
    """Paths above this one that a block around it tested (`{{ if .Values.tls }}` for
    `.Values.tls.secretName`): fields of an optional object, when the values leave it out."""


@dataclass(frozen=True, slots=True)
class Define:
    name: str
    name_start: int
    name_end: int
    """The name inside its quotes."""
    start: int
    """Offset of the `define` action."""
    body_start: int
    body_end: int


@dataclass(frozen=True, slots=True)
class Call:
    kind: str
    """include, template or block."""
    name: str
    start: int
    end: int
    """The string literal, quotes included."""


@dataclass(frozen=True, slots=True)
class FunctionUse:
    name: str
    start: int
    end: int


@dataclass(slots=True)
class TemplateScan:
    text: str
    actions: list[Action] = field(default_factory=list)
    refs: list[ValuesRef] = field(default_factory=list)
    defines: list[Define] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    functions: list[FunctionUse] = field(default_factory=list)
    contexts: dict[int, tuple[Dot, dict[str, Dot]]] = field(default_factory=dict)
    """By action start: what `.` and each variable are in that action."""
    _lines: LineIndex | None = None
    _starts: list[int] | None = None

    @property
    def lines(self) -> LineIndex:
        if self._lines is None:
            self._lines = LineIndex(self.text)
        return self._lines

    def position(self, offset: int) -> Position:
        return self.lines.offset_to_position(offset)

    def range(self, start: int, end: int) -> Range:
        return Range(self.position(start), self.position(end))

    def offset(self, position: Position) -> int:
        """Code-point offset of a code-point position (clamped to its line)."""
        lines = self.lines
        line = min(max(position.line, 0), max(lines.line_count() - 1, 0))
        if self._starts is None:
            self._starts = _starts(lines.text)
        return self._starts[line] + min(max(position.character, 0), len(lines.line_text(line)))

    def action_at(self, offset: int) -> Action | None:
        """The action holding `offset` (between its braces, or at its end while unclosed)."""
        for action in self.actions:
            if action.start < offset < action.end or (not action.closed and offset == action.end):
                return action
        return None


def _starts(text: str) -> list[int]:
    starts = [0]
    i = text.find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = text.find("\n", i + 1)
    return starts


# -- lexing ------------------------------------------------------------------------------------
def _ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _dotted_end(text: str, j: int, n: int) -> int:
    """Where a run of identifier characters and inner dots (`Values.a.b`) starting at `j` ends."""
    while j < n and (
        _ident_char(text[j]) or (text[j] == "." and j + 1 < n and _ident_char(text[j + 1]))
    ):
        j += 1
    return j


def _lex(text: str, start: int, limit: int) -> tuple[list[Token], int, bool]:
    """Tokens of an action body from `start`: (tokens, offset of the closing `}}` or where the
    action stops, closed)."""
    tokens: list[Token] = []
    i = start
    n = limit
    while i < n:
        ch = text[i]
        if ch == "\n" and not _closes_later(text, i, n):
            return tokens, i, False
        if ch in " \t\r\n":
            i += 1
            continue
        if text.startswith("}}", i):
            return tokens, i, True
        if ch == "-" and text.startswith(" -}}", i - 1) and text.startswith("-}}", i):
            return tokens, i, True
        if text.startswith("{{", i):
            return tokens, i, False
        if ch == '"' or ch == "'":
            j, value = _quoted(text, i, n, ch)
            tokens.append(Token("string" if ch == '"' else "char", text[i:j], i, j, value))
            i = j
        elif ch == "`":
            end = text.find("`", i + 1, n)
            j = n if end < 0 else end + 1
            tokens.append(Token("raw", text[i:j], i, j, text[i + 1 : max(j - 1, i + 1)]))
            i = j
        elif ch == ".":
            j = _dotted_end(text, i + 1, n)
            if i + 1 < n and text[i + 1].isdigit():
                tokens.append(Token("number", text[i:j], i, j))
            else:
                tokens.append(Token("field", text[i:j], i, j))
            i = j
        elif ch == "$":
            j = _dotted_end(text, i + 1, n)
            tokens.append(Token("var", text[i:j], i, j))
            i = j
        elif ch.isdigit() or (ch in "+-" and i + 1 < n and text[i + 1].isdigit()):
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "._+-"):
                j += 1
            tokens.append(Token("number", text[i:j], i, j))
            i = j
        elif _ident_char(ch):
            j = _dotted_end(text, i + 1, n)
            tokens.append(Token("ident", text[i:j], i, j))
            i = j
        elif ch == ":" and text.startswith(":=", i):
            tokens.append(Token("assign", ":=", i, i + 2))
            i += 2
        else:
            kind = {"|": "pipe", "(": "lparen", ")": "rparen", "=": "assign", ",": "comma"}
            tokens.append(Token(kind.get(ch, "other"), ch, i, i + 1))
            i += 1
    return tokens, n, False


def _closes_later(text: str, i: int, n: int) -> bool:
    """An action may span lines (Go allows it) when `}}` comes before the next `{{`."""
    close = text.find("}}", i, n)
    if close < 0:
        return False
    opening = text.find("{{", i, close)
    return opening < 0


def _quoted(text: str, i: int, n: int, quote: str) -> tuple[int, str]:
    """End offset and value of a quoted literal; an unclosed one ends at its line's end."""
    out: list[str] = []
    j = i + 1
    while j < n:
        ch = text[j]
        if ch == "\\" and j + 1 < n:
            nxt = text[j + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(nxt, nxt))
            j += 2
            continue
        if ch == quote:
            return j + 1, "".join(out)
        if ch == "\n":
            return j, "".join(out)
        out.append(ch)
        j += 1
    return n, "".join(out)


def _actions(text: str) -> list[Action]:
    out: list[Action] = []
    n = len(text)
    i = text.find("{{")
    while i >= 0:
        body = i + 2
        if (
            text.startswith("- ", body)
            or text.startswith("-\t", body)
            or text.startswith("-\n", body)
        ):
            body += 1
        stripped = body
        while stripped < n and text[stripped] in " \t\r\n":
            stripped += 1
        if text.startswith("/*", stripped):
            close = text.find("*/", stripped + 2)
            if close >= 0:
                after = close + 2
                end = text.find("}}", after)
                nxt = text.find("{{", after)
                if end >= 0 and (nxt < 0 or end < nxt):
                    out.append(Action(i, end + 2, stripped, after, True, True))
                    i = text.find("{{", end + 2)
                    continue
            line_end = text.find("\n", stripped)
            stop = n if line_end < 0 else line_end
            out.append(Action(i, stop, stripped, stop, False, True))
            i = text.find("{{", stop)
            continue
        tokens, stop, closed = _lex(text, body, n)
        body_end = stop
        if closed and text.startswith("-}}", stop):
            end = stop + 3
        elif closed:
            end = stop + 2
        else:
            end = stop
        out.append(Action(i, end, body, body_end, closed, False, tuple(tokens)))
        i = text.find("{{", max(end, i + 2))
    return out


# -- meaning -----------------------------------------------------------------------------------
@dataclass(slots=True)
class _Frame:
    kind: str
    dot: Dot
    outer_dot: Dot
    guards: list[tuple[str, ...]]
    define: tuple[str, int, int, int, int] | None = None
    """(name, name start, name end, action start, body start) of a `define`/`block`."""


class _Reader:
    """Meaning of one action's tokens in its blocks."""

    def __init__(self, scan: TemplateScan) -> None:
        self.scan = scan
        self.stack: list[_Frame] = [_Frame("file", ROOT, ROOT, [])]
        self.vars: dict[str, Dot] = {"$": ROOT}

    @property
    def dot(self) -> Dot:
        return self.stack[-1].dot

    def guarded_by_blocks(self, path: tuple[str, ...]) -> bool:
        size = len(path)
        return any(g[:size] == path for frame in self.stack for g in frame.guards)

    def tested_above(self, path: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
        return tuple(
            g
            for frame in self.stack
            for g in frame.guards
            if g and len(g) < len(path) and path[: len(g)] == g
        )

    def read(self, action: Action) -> None:
        self.scan.contexts[action.start] = (self.dot, dict(self.vars))
        tokens = list(action.tokens)
        if not tokens:
            return
        first = tokens[0]
        word = first.text if first.kind == "ident" else ""
        if word == "end":
            self._end(action)
            return
        if word == "else":
            rest = tokens[1:]
            frame = self.stack[-1]
            frame.dot = frame.outer_dot
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                refs = self._pipeline(rest[1:], condition=True)
                frame.guards.extend(r.path for r in refs)
                if rest[0].text == "with":
                    frame.dot = self._value_of(rest[1:])
            return
        if word in ("if", "with", "range"):
            body = tokens[1:]
            declared = _declaration(body)
            refs = self._pipeline(body[2 * len(declared) :], condition=True)
            guards = [r.path for r in refs] + self._has_key_guards(body)
            outer = self.dot
            if word == "with":
                dot = self._value_of(body)
            elif word == "range":
                dot = None
            else:
                dot = outer
            frame = _Frame(word, dot, outer, guards)
            self.stack.append(frame)
            for variable in declared:
                self.vars[variable] = None
            if word == "with" and len(declared) == 1:
                self.vars[declared[0]] = dot
            return
        if word in ("define", "block"):
            name = tokens[1] if len(tokens) > 1 and tokens[1].kind in ("string", "raw") else None
            define = None
            if name is not None:
                inner = name.start + 1, max(name.start + 1, name.start + 1 + len(name.value))
                define = (name.value, *inner, action.start, action.end)
                if word == "block":
                    self.scan.calls.append(Call("block", name.value, name.start, name.end))
            if word == "block":
                self._pipeline(tokens[2:], condition=False)
            self.stack.append(_Frame(word, ROOT, ROOT, [], define))
            return
        if word == "template":
            if len(tokens) > 1 and tokens[1].kind in ("string", "raw"):
                name = tokens[1]
                self.scan.calls.append(Call("template", name.value, name.start, name.end))
            self._pipeline(tokens[2:], condition=False)
            return
        declared = _declaration(tokens)
        if declared and len(tokens) > 2:
            value = self._value_of(tokens[2:])
            self._pipeline(tokens[2:], condition=False)
            self.vars[declared[0]] = value
            return
        self._pipeline(tokens, condition=False)

    def _end(self, action: Action) -> None:
        if len(self.stack) == 1:
            return
        frame = self.stack.pop()
        if frame.define is not None:
            name, name_start, name_end, start, body_start = frame.define
            self.scan.defines.append(
                Define(name, name_start, name_end, start, body_start, action.start)
            )

    def close(self, end: int) -> None:
        """Blocks left open at the end of the text (a define still being typed)."""
        while len(self.stack) > 1:
            frame = self.stack.pop()
            if frame.define is not None:
                name, name_start, name_end, start, body_start = frame.define
                self.scan.defines.append(Define(name, name_start, name_end, start, body_start, end))

    def _has_key_guards(self, tokens: list[Token]) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for i, token in enumerate(tokens):
            if token.kind == "ident" and token.text == "hasKey" and i + 2 < len(tokens):
                found = self._operand(tokens, i + 1)
                key = _at(tokens, found[1]) if found is not None else None
                if found is not None and key is not None and key.kind in ("string", "raw"):
                    out.append((*found[0].path, key.value))
        return out

    def _value_of(self, tokens: list[Token]) -> Dot:
        """What a pipeline gives when it is one values path (`with`, `$x :=`); else unknown."""
        body = tokens[2:] if _declaration(tokens) else tokens
        if len(body) == 1 and body[0].text == ".":
            return self.dot
        if len(body) == 1 and body[0].kind == "var" and "." not in body[0].text:
            return self.vars.get(body[0].text)
        found = self._operand(body, 0)
        if found is None or found[1] != len(body):
            return None
        return found[0].path

    def _operand(self, tokens: list[Token], i: int) -> tuple[ValuesRef, int] | None:
        """The values path starting at token `i` (a field, a variable, or `index X "a" ...`)
        and the index after it; None when that token is no values path."""
        if i >= len(tokens):
            return None
        token = tokens[i]
        if token.kind == "ident" and token.text in ("index", "get") and i + 1 < len(tokens):
            base = self._operand(tokens, i + 1)
            if base is None:
                return None
            ref, j = base
            keys, segments = list(ref.path), list(ref.segments)
            end = ref.end
            while j < len(tokens) and tokens[j].kind in ("string", "raw"):
                key = tokens[j]
                keys.append(key.value)
                segments.append(Segment(key.value, key.start, key.end))
                end = key.end
                j += 1
            return ValuesRef(tuple(keys), token.start, end, tuple(segments), False), j
        if token.kind == "field":
            base_dot = self.dot
        elif token.kind == "var":
            name, _, _ = token.text.partition(".")
            base_dot = self.vars.get(name)
        else:
            return None
        parts = _fields(token)
        if token.kind == "var":
            parts = parts[1:]
        if base_dot == ROOT:
            if not parts or parts[0].key != "Values":
                return None
            written = parts[1:]
            prefix: tuple[str, ...] = ()
        elif isinstance(base_dot, tuple):
            written, prefix = parts, base_dot
        else:
            return None
        path = (*prefix, *(s.key for s in written))
        return ValuesRef(path, token.start, token.end, tuple(written), False), i + 1

    def _pipeline(self, tokens: list[Token], condition: bool) -> list[ValuesRef]:
        """Records the values paths, calls and functions of a pipeline; returns its refs."""
        groups = _groups(tokens)
        guarded_groups = {
            groups[i] for i, t in enumerate(tokens) if t.kind == "ident" and t.text in GUARDS
        }
        found: list[ValuesRef] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token.kind == "ident":
                if token.text == "include" and i + 1 < len(tokens):
                    name = tokens[i + 1]
                    if name.kind in ("string", "raw"):
                        self.scan.calls.append(Call("include", name.value, name.start, name.end))
                if token.text not in KEYWORDS and token.text not in LITERALS:
                    self.scan.functions.append(FunctionUse(token.text, token.start, token.end))
            operand = self._operand(tokens, i)
            if operand is None:
                i += 1
                continue
            ref, j = operand
            guarded = (
                condition
                or bool(_chain(groups[i]) & guarded_groups)
                or self.guarded_by_blocks(ref.path)
            )
            tested = () if guarded else self.tested_above(ref.path)
            ref = ValuesRef(ref.path, ref.start, ref.end, ref.segments, guarded, tested)
            found.append(ref)
            self.scan.refs.append(ref)
            i = j
        return found


def _at(tokens: list[Token], i: int) -> Token | None:
    return tokens[i] if i < len(tokens) else None


def _declaration(tokens: list[Token]) -> list[str]:
    """Variables a pipeline declares (`$x :=`, `$k, $v :=`)."""
    names: list[str] = []
    for i, token in enumerate(tokens):
        if token.kind == "var":
            names.append(token.text)
        elif token.kind == "comma":
            continue
        elif token.kind == "assign" and names:
            return names if i == 2 * len(names) - 1 else []
        else:
            return []
    return []


def _fields(token: Token) -> list[Segment]:
    """The `.a.b` parts of a field or variable token with their spans."""
    out: list[Segment] = []
    offset = token.start
    for index, part in enumerate(token.text.split(".")):
        if (index > 0 and part) or (index == 0 and token.kind == "var"):
            out.append(Segment(part, offset, offset + len(part)))
        offset += len(part) + 1
    return out


def _groups(tokens: list[Token]) -> list[tuple[int, ...]]:
    """Each token's chain of enclosing parentheses (outermost first), as opening indices."""
    stack: list[int] = [-1]
    out: list[tuple[int, ...]] = []
    for i, token in enumerate(tokens):
        if token.kind == "lparen":
            out.append(tuple(stack))
            stack.append(i)
            continue
        if token.kind == "rparen" and len(stack) > 1:
            out.append(tuple(stack))
            stack.pop()
            continue
        out.append(tuple(stack))
    return out


def _chain(group: tuple[int, ...]) -> set[tuple[int, ...]]:
    """A group and every group around it."""
    return {group[: k + 1] for k in range(len(group))}


def scan(text: str) -> TemplateScan:
    """Actions, references, defines and calls of one template text; never raises."""
    result = TemplateScan(text)
    try:
        result.actions = _actions(text)
        reader = _Reader(result)
        for action in result.actions:
            if not action.comment:
                reader.read(action)
        reader.close(len(text))
    except Exception:
        pass
    return result


_CACHE: dict[str, TemplateScan] = {}
_CACHE_LOCK = threading.Lock()
MAX_CACHED = 4096


def scan_cached(text: str) -> TemplateScan:
    """`scan`, remembered per text (a chart's templates are scanned once per edit of one)."""
    with _CACHE_LOCK:
        found = _CACHE.get(text)
    if found is not None:
        return found
    found = scan(text)
    with _CACHE_LOCK:
        if len(_CACHE) >= MAX_CACHED:
            _CACHE.clear()
        _CACHE[text] = found
    return found
