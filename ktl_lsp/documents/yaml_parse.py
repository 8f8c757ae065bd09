"""Fast YAML parsing with positions: libyaml's composer per document chunk, cached by text.

PyYAML's C composer keeps start/end marks on every node and is an order of magnitude faster than a
round-trip parser; ruamel.yaml stays for edits that must preserve formatting. Composition runs with
the cyclic garbage collector paused (it otherwise rescans the growing node graph again and again,
tripling the time on large files). Every chunk is also checked for what would make later walks
unsafe (alias bombs, recursive aliases, extreme nesting) so checkers can trust `usable` chunks.

A parse costs far more memory than its text (a node and two marks per scalar: about 45 bytes per
source byte for a flow mapping), so the cache is bounded by the estimated bytes its parses hold.
"""

from __future__ import annotations

import gc
import hashlib
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from ktl_lsp.documents.edits import Edit, Fix
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import LineIndex, Range
from ktl_lsp.documents.yaml_chunks import Chunk, split_documents
from ktl_lsp.documents.yaml_nodes import last_leaf

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_IMPLICIT = {
    first: [(tag, regexp) for tag, regexp in resolvers]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


class _TooManyNodes(Exception):
    pass


class _Loader(_BaseLoader):
    """The safe loader's tag resolution without path resolvers (unused): ~30% faster composing.

    `resolve` is called once per node, also by libyaml's composer: it counts them and stops a
    document past `MAX_DOCUMENT_NODES` before it holds gigabytes (16 MB of `[0,0,...]` is 8
    million nodes, ~3 GB composed).
    """

    nodes = 0

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        self.nodes += 1
        if self.nodes > MAX_DOCUMENT_NODES:
            raise _TooManyNodes
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return str(tag)
            return _STR_TAG
        return _SEQ_TAG if kind is SequenceNode else _MAP_TAG


MAX_TEXT_CHARS = 16 * 1024 * 1024
"""Larger texts get one `file-too-large` problem instead of a parse (bounded time and memory)."""
MAX_DEPTH = 200
"""Deeper documents are refused: checkers recurse, and no real manifest nests this deep."""
MAX_DOCUMENT_NODES = 500_000
"""A document with more nodes is not composed (~200 MB at `NODE_BYTES`); real manifests, the
largest CRDs included, have tens of thousands."""
MAX_FILE_NODES = 1_500_000
"""Documents after this many nodes in one file are not composed (~600 MB): a 16 MB file of
`- 0` lines is 4 million."""
MAX_EXPANDED_NODES = 1_000_000
"""Aliases may not expand a document beyond this many nodes (the billion-laughs guard)."""
NODE_BYTES = 400
"""Memory one composed node holds with its two marks and value, measured as RSS growth over
parses of 7.7 MB flow and block mappings (about 340 MB for 834k nodes; tracemalloc, which does
not count allocator overhead, sees 345-360 bytes a node)."""
CACHE_BYTES = 256 * 1024 * 1024
"""What the parse cache may hold by default, in estimated bytes (`ParsedChunk.cost`)."""
MAX_ENCODING_PROBLEMS = 20
"""Lone surrogates reported per text (the last one says how many more there are)."""

Severity = Literal["error", "warning", "information", "hint"]


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """Something wrong with the text itself; ranges are relative to the chunk (or the file)."""

    code: str
    message: str
    range: Range
    severity: Severity = "error"
    related: tuple[tuple[Range, str], ...] = ()
    fixes: tuple[Fix, ...] = ()


@dataclass(slots=True)
class ParsedChunk:
    """One composed document, position-relative to its chunk; immutable once built."""

    text: str
    root: Node | None
    problems: list[YamlProblem]
    usable: bool
    """The root exists and is safe to walk recursively (no syntax error, bomb or deep nesting)."""
    digest: str
    node_count: int = 0
    memo: dict[str, Any] = field(default_factory=dict)
    """Facts derived from this chunk by checkers (chunk-relative), computed once per text."""

    @property
    def cost(self) -> int:
        """Estimated bytes this parse holds: its text and its nodes."""
        return sys.getsizeof(self.text) + self.node_count * NODE_BYTES


@dataclass(slots=True)
class YamlDocument:
    """A parsed chunk placed in its file."""

    index: int
    """Position in the YAML stream, as `yaml.load_all` and `kubectl` count documents."""
    start_line: int
    end_line: int
    """Exclusive."""
    chunk: ParsedChunk

    @property
    def root(self) -> Node | None:
        return self.chunk.root if self.chunk.usable else None

    def range_of(self, node: Node) -> Range:
        """The file range of a node of this document."""
        start, end = node.start_mark, node.end_mark
        return Range.of(
            start.line + self.start_line,
            start.column,
            end.line + self.start_line,
            end.column,
        )

    @property
    def range(self) -> Range:
        return Range.of(self.start_line, 0, self.end_line, 0)


@dataclass(slots=True)
class ParsedText:
    """A whole file: its documents and any problem that stopped parsing altogether."""

    text: str
    documents: list[YamlDocument]
    problems: list[YamlProblem] = field(default_factory=list)
    _lines: LineIndex | None = None

    @property
    def lines(self) -> LineIndex:
        if self._lines is None:
            self._lines = LineIndex(self.text)
        return self._lines


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building large node graphs (they hold no garbage cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _mark_range(mark: yaml.Mark | None, width: int = 1) -> Range:
    if mark is None:
        return Range.of(0, 0, 0, 0)
    return Range.of(mark.line, mark.column, mark.line, mark.column + width)


def _syntax_problem(error: yaml.YAMLError) -> YamlProblem:
    if isinstance(error, yaml.MarkedYAMLError):
        message = error.problem or error.context or "invalid YAML"
        mark = error.problem_mark or error.context_mark
        related: tuple[tuple[Range, str], ...] = ()
        if error.context and error.context_mark is not None and error.problem:
            related = ((_mark_range(error.context_mark), error.context),)
            if error.context_mark.line != (mark.line if mark else -1):
                # An unclosed { or [ is noticed lines later: say where it was opened.
                opened = error.context_mark.line + 1
                message = f"{message} ({error.context} that starts on line {opened})"
        return YamlProblem("yaml-syntax", message, _mark_range(mark), "error", related)
    return YamlProblem("yaml-syntax", str(error) or "invalid YAML", Range.of(0, 0, 0, 1))


def _node_range(node: Node) -> Range:
    s, e = node.start_mark, node.end_mark
    return Range.of(s.line, s.column, e.line, e.column)


def _scan(root: Node, may_alias: bool) -> tuple[list[YamlProblem], bool, int]:
    """Duplicate keys, depth and aliases in one iterative pass; returns (problems, usable, nodes).

    Without any `&` in the text there are no anchors, hence no shared nodes to track.
    """
    problems: list[YamlProblem] = []
    seen: set[int] = set()
    shared = False
    count = 0
    stack: list[tuple[Node, int]] = [(root, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        count += 1
        kind = type(node)
        if kind is ScalarNode:
            continue
        if may_alias:
            if id(node) in seen:
                shared = True
                continue
            seen.add(id(node))
        if depth >= MAX_DEPTH:
            problems.append(
                YamlProblem(
                    "yaml-too-complex",
                    f"nesting deeper than {MAX_DEPTH} levels; this document is not checked",
                    _node_range(node),
                )
            )
            return problems, False, count
        depth += 1
        if kind is MappingNode:
            pairs = node.value
            if len(pairs) > 1:
                names = {k.value for k, _ in pairs if type(k) is ScalarNode}
                if len(names) < len(pairs):
                    _duplicates(pairs, problems, block=not getattr(node, "flow_style", True))
            for key, value in pairs:
                if type(key) is not ScalarNode:
                    push((key, depth))
                if type(value) is not ScalarNode:
                    push((value, depth))
                else:
                    count += 1
            count += len(pairs)
        else:
            for item in node.value:
                push((item, depth))
    if shared:
        problem = _check_aliases(root)
        if problem is not None:
            problems.append(problem)
            return problems, False, count
    return problems, True, count


def _duplicates(pairs: list[tuple[Node, Node]], problems: list[YamlProblem], block: bool) -> None:
    keys: dict[tuple[str, str], Node] = {}
    for key, value in pairs:
        if type(key) is not ScalarNode or key.value == "<<":
            continue
        ident = (key.tag, key.value)
        first = keys.get(ident)
        if first is None:
            keys[ident] = key
            continue
        problems.append(
            YamlProblem(
                "yaml-duplicate-key",
                f'duplicate key "{key.value}"',
                _node_range(key),
                "error",
                ((_node_range(first), "first occurrence"),),
                _remove_pair(key, value) if block else (),
            )
        )


def _remove_pair(key: Node, value: Node) -> tuple[Fix, ...]:
    """Deletes a later duplicate of a block mapping: its key's line to its value's last line
    (comments after it stay)."""
    end = last_leaf(value).end_mark
    end_line = end.line if end.column == 0 and end.line > key.start_mark.line else end.line + 1
    rng = Range.of(key.start_mark.line, 0, end_line, 0)
    return (Fix(f'Remove the later "{key.value}"', (Edit(rng, ""),), preferred=True),)


def _check_aliases(root: Node) -> YamlProblem | None:
    """Expanded size (memoised, so shared nodes cost once) and recursive aliases."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        ident = id(node)
        children: list[Node]
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        else:
            size[ident] = 1
            continue
        if done:
            on_path.discard(ident)
            total = 1 + sum(size[id(c)] for c in children)
            size[ident] = total
            if total > MAX_EXPANDED_NODES:
                return YamlProblem(
                    "yaml-too-complex",
                    f"aliases expand this document to more than {MAX_EXPANDED_NODES:,} nodes "
                    "(an alias bomb?); it is not checked",
                    _node_range(root),
                )
            continue
        if ident in size:
            continue
        if ident in on_path:
            return YamlProblem(
                "yaml-too-complex",
                "recursive alias: a node contains itself; this document is not checked",
                _node_range(node),
            )
        on_path.add(ident)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                return YamlProblem(
                    "yaml-too-complex",
                    "recursive alias: a node contains itself; this document is not checked",
                    _node_range(child),
                )
            if id(child) not in size:
                stack.append((child, False))
    return None


def parse_chunk(text: str) -> ParsedChunk:
    """Compose one chunk; never raises for bad input."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as error:
        return ParsedChunk(text, None, [_syntax_problem(error)], False, digest)
    except _TooManyNodes:
        problem = YamlProblem(
            "yaml-too-complex",
            f"more than {MAX_DOCUMENT_NODES:,} YAML nodes in one document; it is not checked",
            Range.of(0, 0, 0, 1),
            "warning",
        )
        return ParsedChunk(text, None, [problem], False, digest)
    except RecursionError:  # the pure-Python composer on deep nesting
        problem = YamlProblem(
            "yaml-too-complex",
            "nesting too deep to parse; this document is not checked",
            Range.of(0, 0, 0, 1),
        )
        return ParsedChunk(text, None, [problem], False, digest)
    finally:
        loader.dispose()
    if root is None:
        return ParsedChunk(text, None, [], True, digest)
    problems, usable, count = _scan(root, "&" in text)
    if not usable:
        # Never walked (`YamlDocument.root` is None): an alias bomb or deep nesting keeps no nodes.
        return ParsedChunk(text, None, problems, False, digest)
    return ParsedChunk(text, root, problems, usable, digest, count)


class DocumentCache:
    """Parsed chunks keyed by their exact text (LRU), so an edit re-parses only what it touched.

    Bounded by the estimated memory its parses hold (`ParsedChunk.cost`), not by their count
    or characters: one flow mapping of 8 MB holds about 340 MB. A parse larger than the whole
    budget is returned but not kept. Thread-safe (parsing itself runs outside the lock).
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self._chunks: OrderedDict[str, ParsedChunk] = OrderedDict()
        self._lock = threading.Lock()
        self._held = 0
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> ParsedChunk:
        with self._lock:
            parsed = self._chunks.get(text)
            if parsed is not None:
                self._chunks.move_to_end(text)
                self.hits += 1
                return parsed
            self.misses += 1
        parsed = parse_chunk(text)
        with self._lock:
            self._remove(text)  # parsed meanwhile by another thread: keep one
            if parsed.cost > self.max_bytes:
                return parsed
            self._chunks[text] = parsed
            self._held += parsed.cost
            while self._held > self.max_bytes and self._chunks:
                self._remove(next(iter(self._chunks)))
        return parsed

    def discard(self, texts: Iterable[str]) -> None:
        """Forgets these chunks' parses (a closed buffer's: the editor may never show it again)."""
        with self._lock:
            for text in texts:
                self._remove(text)

    def _remove(self, text: str) -> None:
        old = self._chunks.pop(text, None)
        if old is not None:
            self._held -= old.cost

    @property
    def held_bytes(self) -> int:
        """Estimated bytes held by the cached parses."""
        return self._held

    def __len__(self) -> int:
        return len(self._chunks)


def text_problem(text: str) -> YamlProblem | None:
    """A problem that stops any parsing of this text (size, binary content)."""
    if len(text) > MAX_TEXT_CHARS:
        mib = len(text) / (1024 * 1024)
        return YamlProblem(
            "file-too-large",
            f"file is too large to check ({mib:.1f} MiB; the limit is "
            f"{MAX_TEXT_CHARS // (1024 * 1024)} MiB)",
            Range.of(0, 0, 0, 0),
            "warning",
        )
    if "\x00" in text:
        return YamlProblem(
            "file-binary",
            "binary content (NUL characters): not a YAML file; it is not checked",
            Range.of(0, 0, 0, 0),
            "warning",
        )
    return None


_LONE_CR = re.compile(r"\r(?!\n)")
_SURROGATE = re.compile("[\ud800-\udfff]")


def normalize_line_breaks(text: str) -> str:
    """Lone CRs become LFs: same length (columns unchanged), lines counted as LSP counts them."""
    return _LONE_CR.sub("\n", text) if "\r" in text else text


def replace_surrogates(text: str) -> tuple[str, list[YamlProblem]]:
    """Lone surrogates (an editor's text may hold them: JSON can escape one) become U+FFFD, one
    `file-encoding` problem each. Positions stay put in every encoding: both are one code point,
    one UTF-16 unit and (as the client's UTF-8 would write the surrogate) three bytes."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text, []
    lines = LineIndex(text)
    problems: list[YamlProblem] = []
    found = 0
    for match in _SURROGATE.finditer(text):
        found += 1
        if found > MAX_ENCODING_PROBLEMS:
            continue
        start = lines.offset_to_position(match.start())
        problems.append(
            YamlProblem(
                "file-encoding",
                f"lone surrogate U+{ord(match.group()):04X}: not a Unicode character "
                "(bytes the editor could not decode?); read as U+FFFD",
                Range.of(start.line, start.character, start.line, start.character + 1),
            )
        )
    if found > MAX_ENCODING_PROBLEMS:
        last = problems[-1]
        more = found - MAX_ENCODING_PROBLEMS
        problems[-1] = YamlProblem(
            last.code, f"{last.message} ({more:,} more lone surrogates follow)", last.range
        )
    return _SURROGATE.sub("\ufffd", text), problems


def parse_text(text: str, cache: DocumentCache | None = None) -> ParsedText:
    """Split and compose every document of a file; never raises for bad input."""
    problem = text_problem(text)
    if problem is not None:
        return ParsedText(text, [], [problem])
    text, problems = replace_surrogates(normalize_line_breaks(text))
    chunks: list[Chunk] = split_documents(text)
    documents: list[YamlDocument] = []
    index = 0
    nodes = 0
    with gc_paused():
        for chunk in chunks:
            if nodes > MAX_FILE_NODES:
                problems.append(
                    YamlProblem(
                        "yaml-too-complex",
                        f"more than {MAX_FILE_NODES:,} YAML nodes in this file; the documents "
                        "from here on are not checked",
                        Range.of(chunk.start_line, 0, chunk.start_line, 0),
                        "warning",
                    )
                )
                break
            parsed = cache.get(chunk.text) if cache is not None else parse_chunk(chunk.text)
            nodes += parsed.node_count
            newlines = chunk.text.count("\n")
            end_line = chunk.start_line + newlines + (0 if chunk.text.endswith("\n") else 1)
            if parsed.root is None and parsed.usable and not chunk.explicit:
                continue  # comments before the first `---`: not a document
            documents.append(YamlDocument(index, chunk.start_line, end_line, parsed))
            index += 1
    return ParsedText(text, documents, problems)
