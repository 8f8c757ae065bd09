"""YAML parsing with positions: exact ranges across multi-document files and YAML features."""

from __future__ import annotations

import re

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ktl_lsp.documents import DocumentCache, LineIndex, Position, Range, parse_text, split_documents
from ktl_lsp.documents.yaml_chunks import document_around
from ktl_lsp.documents.yaml_nodes import get, get_pair, mapping_pairs, to_python


def test_documents_keep_their_file_lines() -> None:
    text = "a: 1\n---\n# comment\nb:\n  c: [1, {d: e}]\n---\nf: g\n"
    parsed = parse_text(text)
    assert [d.index for d in parsed.documents] == [0, 1, 2]
    assert [(d.start_line, d.end_line) for d in parsed.documents] == [(0, 1), (1, 5), (5, 7)]
    second = parsed.documents[1]
    pair = get_pair(get(second.root, "b"), "c")
    assert pair is not None
    assert second.range_of(pair[0]) == Range.of(4, 2, 4, 3)
    d_value = get(pair[1].value[1], "d")
    assert d_value is not None
    assert second.range_of(d_value) == Range.of(4, 13, 4, 14)


def test_leading_comments_are_not_a_document_but_empty_explicit_ones_are() -> None:
    assert len(parse_text("# only a comment\n---\na: 1\n").documents) == 1
    assert len(parse_text("a: 1\n---\n---\nb: 2\n").documents) == 3
    assert len(list(yaml.safe_load_all("a: 1\n---\n---\nb: 2\n"))) == 3


def test_crlf_bom_tabs_and_flow_style() -> None:
    text = "\ufeffkey: value\r\nlist: [a,\tb]\r\nmap: {x: 1}\r\n"
    parsed = parse_text(text)
    root = parsed.documents[0].root
    value = get(root, "map", "x")
    assert value is not None and parsed.documents[0].range_of(value) == Range.of(2, 9, 2, 10)
    items = get(root, "list")
    assert items is not None
    assert [parsed.documents[0].range_of(n).start for n in items.value] == [
        Position(1, 7),
        Position(1, 10),
    ]


def test_anchors_aliases_and_merge_keys() -> None:
    text = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n"
    root = parse_text(text).documents[0].root
    assert root is not None
    derived = get(root, "derived")
    assert derived is not None
    assert [k.value for k, _ in mapping_pairs(derived)] == ["x", "y"]
    assert to_python(root)["derived"] == {"x": 1, "y": 3}


def test_syntax_error_at_the_right_place() -> None:
    text = "ok: 1\n---\na: b\n  c: d\n"
    parsed = parse_text(text)
    assert parsed.documents[0].chunk.problems == []
    problem = parsed.documents[1].chunk.problems[0]
    assert problem.code == "yaml-syntax"
    # chunk-relative line 2 = file line 3 ("  c: d"), where libyaml stops
    assert problem.range.shifted(parsed.documents[1].start_line).start == Position(3, 3)


def test_duplicate_key_points_at_the_repeat_with_the_first_as_related() -> None:
    parsed = parse_text("a: 1\nb:\n  x: 1\n  x: 2\n")
    problem = parsed.documents[0].chunk.problems[0]
    assert problem.code == "yaml-duplicate-key"
    assert problem.range == Range.of(3, 2, 3, 3)
    assert problem.related[0][0] == Range.of(2, 2, 2, 3)


def test_cache_reparses_only_the_changed_document() -> None:
    docs = [f"name: doc{i}\nvalue: {i}\n" for i in range(50)]
    cache = DocumentCache()
    parse_text("---\n".join(docs), cache)
    assert cache.misses == 50
    docs[7] = "name: doc7\nvalue: changed\n"
    parsed = parse_text("# new first line\n" + "---\n".join(docs), cache)
    assert cache.misses == 52  # the edited document, and the first one that gained a comment
    assert parsed.documents[7].start_line == 3 + 6 * 3


def test_cache_is_bounded_by_what_parses_hold() -> None:
    """Entries go, oldest first, once their estimated bytes pass the limit; a parse bigger than
    the whole limit is not kept; a discarded text is parsed again."""
    texts = [f"{{{', '.join(f'k{i}_{j}: {j}' for j in range(2000))}}}\n" for i in range(4)]
    one = parse_text(texts[0]).documents[0].chunk.cost
    assert one > 2000 * 2 * 300  # nodes, not characters, make the cost
    cache = DocumentCache(max_bytes=int(2.5 * one))
    for text in texts:
        cache.get(text)
    assert len(cache) == 2 and cache.held_bytes <= cache.max_bytes
    cache.get(texts[3])
    assert cache.hits == 1
    cache.get(texts[0])
    assert cache.misses == 5  # evicted, parsed again
    cache.discard([texts[0], texts[3]])
    assert len(cache) == 0 and cache.held_bytes == 0
    small = DocumentCache(max_bytes=one // 2)
    small.get(texts[0])
    assert len(small) == 0 and small.held_bytes == 0


def test_lone_surrogates_are_reported_and_read_as_replacement_characters() -> None:
    parsed = parse_text("a: x\udcffy\nb: [1, \ud800]\n")
    assert [(p.code, p.range) for p in parsed.problems] == [
        ("file-encoding", Range.of(0, 4, 0, 5)),
        ("file-encoding", Range.of(1, 7, 1, 8)),
    ]
    root = parsed.documents[0].root
    a = get(root, "a")
    assert a is not None and a.value == "x\ufffdy"
    many = parse_text("a: " + "\udcff" * 50 + "\n")
    assert len(many.problems) == 20
    assert many.problems[-1].message.endswith("(30 more lone surrogates follow)")


def test_utf16_conversion() -> None:
    text = "a: 😀x\nb: é\n"
    index = LineIndex(text)
    assert index.to_client(Position(0, 4)) == Position(0, 5)
    assert index.to_client(Position(0, 4), "utf-8") == Position(0, 7)
    assert index.from_client(Position(0, 5)) == Position(0, 4)
    assert index.to_client(Position(1, 4)) == Position(1, 4)
    root = parse_text(text).documents[0].root
    x = get(root, "a")
    assert x is not None and x.end_mark.column == 5  # code points, as Python indexes


@given(st.lists(st.sampled_from(["a: 1", "---", "...", "b: [", "  - x", "# c", "", "%YAML 1.1"])))
@settings(max_examples=200, deadline=None)
def test_split_documents_covers_the_text_exactly(lines: list[str]) -> None:
    text = "\n".join(lines)
    chunks = split_documents(text)
    assert "".join(c.text for c in chunks) == text
    for chunk in chunks:
        assert (
            text.splitlines(keepends=True)[chunk.start_line :][:1]
            == (chunk.text.splitlines(keepends=True)[:1] if chunk.text else [])
            or not chunk.text
        )


@given(
    st.lists(st.sampled_from(["a: 1", "---", "--- x", "---x", "b: |", "  ---", "# c", "", "\r"]))
)
@settings(max_examples=200, deadline=None)
def test_the_document_around_a_line_is_split_documents_chunk(lines: list[str]) -> None:
    text = "\n".join(lines)
    chunks = split_documents(text)
    for line in range(text.count("\n") + 2):
        around = document_around(text, line)
        if text.count("\r") != text.count("\r\n"):
            assert around is None
            continue
        holding = [c for c in chunks if c.start_line <= line]
        if line > text.count("\n"):
            assert around is None
        else:
            assert around == (holding[-1].start_line, holding[-1].text)
    assert document_around("a: 1\n...\nb: 2\n", 0) is None  # `...`: split it all


@given(st.text(alphabet=st.sampled_from(list("ab:- \n\t[]{},&*!'\"#|>é😀\r")), max_size=80))
@settings(max_examples=300, deadline=None)
def test_parse_never_raises_and_ranges_stay_inside(text: str) -> None:
    parsed = parse_text(text)
    line_count = len(re.split(r"\r\n|\r|\n", text))  # LSP's line breaks
    for document in parsed.documents:
        for problem in document.chunk.problems:
            rng = problem.range.shifted(document.start_line)
            assert 0 <= rng.start.line <= line_count
            assert rng.start <= rng.end or problem.code == "yaml-syntax"


def test_an_unclosed_bracket_names_the_line_that_opened_it() -> None:
    from ktl_lsp.documents.yaml_parse import parse_text

    text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: {b: 1, c: 2\n  d: 3\n"
    (problem,) = [p for d in parse_text(text).documents for p in d.chunk.problems]
    assert problem.code == "yaml-syntax" and problem.range.start.line == 4
    assert problem.message.endswith("(while parsing a flow mapping that starts on line 4)")
    assert [(r.start.line, r.start.character) for r, _ in problem.related] == [(3, 5)]
