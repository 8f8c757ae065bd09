"""The key path at a position: from the parsed tree, and from indentation when nothing parses."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktl_lsp.documents.yaml_parse import parse_text
from ktl_lsp.documents.yaml_path import YamlPath, document_type, path_at

DEPLOYMENT = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web  # the name
      labels: {app: web, tier: "front"}
    spec:
      replicas: 3
      template:
        spec:
          containers:
          - name: web
            image: nginx
            ports: [{containerPort: 80}, {name: http, containerPort: 8080}]
          - name: side
            args:
              - --verbose
              - --port=1
            command: |
              echo hi
              key: not a key
          volumes:
            - name: data
              emptyDir: {}
    """
)

CONTAINERS = ("spec", "template", "spec", "containers")


def at(text: str, marker: str, offset: int = 0, occurrence: int = 0) -> YamlPath | None:
    """The path at `marker` (its `occurrence`-th appearance) plus `offset` characters."""
    index = -1
    for _ in range(occurrence + 1):
        index = text.index(marker, index + 1)
    line = text.count("\n", 0, index)
    character = index - (text.rfind("\n", 0, index) + 1) + offset
    return path_at(text, line, character)


def broken(text: str) -> str:
    """The same document with an unclosed flow sequence at its end: it no longer parses."""
    out = text + "extra: [unclosed\n"
    assert not parse_text(out).documents[0].chunk.usable
    return out


CASES: list[tuple[str, int, int, tuple[object, ...], str]] = [
    ("apiVersion", 0, 2, ("apiVersion",), "key"),
    ("apps/v1", 0, 3, ("apiVersion",), "value"),
    ("  name: web", 0, 3, ("metadata", "name"), "key"),
    ("  name: web", 0, 9, ("metadata", "name"), "value"),
    ("tier", 0, 1, ("metadata", "labels", "tier"), "key"),
    ("replicas", 0, 8, ("spec", "replicas"), "key"),
    ("- name: web", 0, 4, (*CONTAINERS, 0, "name"), "key"),
    ("image: nginx", 0, 2, (*CONTAINERS, 0, "image"), "key"),
    ("image: nginx", 0, 9, (*CONTAINERS, 0, "image"), "value"),
    ("containerPort", 0, 3, (*CONTAINERS, 0, "ports", 0, "containerPort"), "key"),
    ("containerPort", 1, 3, (*CONTAINERS, 0, "ports", 1, "containerPort"), "key"),
    ("http", 0, 2, (*CONTAINERS, 0, "ports", 1, "name"), "value"),
    ("- name: side", 0, 6, (*CONTAINERS, 1, "name"), "key"),
    ("--verbose", 0, 3, (*CONTAINERS, 1, "args", 0), "value"),
    ("--port=1", 0, 3, (*CONTAINERS, 1, "args", 1), "value"),
    ("echo hi", 0, 2, (*CONTAINERS, 1, "command"), "value"),
    ("key: not a key", 0, 1, (*CONTAINERS, 1, "command"), "value"),
    ("emptyDir", 0, 3, ("spec", "template", "spec", "volumes", 0, "emptyDir"), "key"),
    ("volumes", 0, 1, ("spec", "template", "spec", "volumes"), "key"),
]


@pytest.mark.parametrize(("marker", "occurrence", "offset", "path", "on"), CASES)
@pytest.mark.parametrize("parses", [True, False])
def test_paths_in_a_deployment(
    marker: str, occurrence: int, offset: int, path: tuple[object, ...], on: str, parses: bool
) -> None:
    text = DEPLOYMENT if parses else broken(DEPLOYMENT)
    found = at(text, marker, offset, occurrence)
    assert found is not None
    assert (found.path, found.on, found.document, found.parsed) == (path, on, 0, parses)


@pytest.mark.parametrize("parses", [True, False])
def test_key_range_is_the_key_itself(parses: bool) -> None:
    text = DEPLOYMENT if parses else broken(DEPLOYMENT)
    found = at(text, "image: nginx", 9)
    assert found is not None and found.key_range is not None
    line = text.splitlines()[found.key_range.start.line]
    rng = found.key_range
    assert line[rng.start.character : rng.end.character] == "image"
    block = at(text, "echo hi", 1)
    assert block is not None and block.key_range is not None
    assert text.splitlines()[block.key_range.start.line].strip() == "command: |"
    item = at(text, "--verbose", 1)
    assert item is not None and item.key_range is None


def test_half_typed_lines_answer_from_indentation() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: v1
        kind: Pod
        spec:
          containers:
            - name: a
              imagePull
            - image
          restartPol
        """
    )
    found = at(text, "imagePull", 4)
    assert found is not None and not found.parsed
    assert (found.path, found.on, found.key) == (
        ("spec", "containers", 0, "imagePull"),
        "key",
        "imagePull",
    )
    item = at(text, "- image", 3)
    assert item is not None and item.path == ("spec", "containers", 1)
    policy = at(text, "restartPol", 2)
    assert policy is not None and policy.path == ("spec", "restartPol")


def test_an_empty_line_is_a_key_to_type_at_the_cursor_column() -> None:
    text = "spec:\n  containers:\n  - name: a\n    \nkind: Pod\n"
    inside_item = path_at(text, 3, 4)
    assert inside_item is not None
    assert (inside_item.path, inside_item.on) == (("spec", "containers", 0, ""), "key")
    under_spec = path_at(text, 3, 2)
    assert under_spec is not None and under_spec.path == ("spec", "")
    top = path_at(text, 3, 0)
    assert top is not None and top.path == ("",)


def test_a_sequence_at_its_keys_indentation_ends_at_the_next_key() -> None:
    text = "containers:\n- name: a\n  image: x\n- name: b\nvolumes: []\n  bad: [\n"
    assert (p := path_at(text, 2, 3)) is not None and p.path == ("containers", 0, "image")
    assert (p := path_at(text, 3, 3)) is not None and p.path == ("containers", 1, "name")
    assert (p := path_at(text, 4, 2)) is not None and p.path == ("volumes",)


def test_nested_dashes_and_flow_in_an_item() -> None:
    text = "matrix:\n  - - a\n    - b\n  - {x: 1, y: [p, q]}\nbroken: [\n"
    assert (p := path_at(text, 1, 6)) is not None and p.path == ("matrix", 0, 0)
    assert (p := path_at(text, 2, 6)) is not None and p.path == ("matrix", 0, 1)
    assert (p := path_at(text, 3, 11)) is not None and (p.path, p.on) == (("matrix", 1, "y"), "key")
    assert (p := path_at(text, 3, 18)) is not None and (p.path, p.on) == (
        ("matrix", 1, "y", 1),
        "value",
    )


def test_comments_markers_and_multiple_documents() -> None:
    text = "# leading comment\napiVersion: v1\nkind: ConfigMap\n---\n# note\nkind: Secret\n---\nkind: [\n"
    assert path_at(text, 0, 3) is None  # inside the leading comment
    first = path_at(text, 2, 7)
    assert first is not None and (first.document, first.path) == (0, ("kind",))
    assert path_at(text, 3, 1) is None  # on `---`
    assert path_at(text, 4, 3) is None  # inside a comment
    second = path_at(text, 5, 8)
    assert second is not None and (second.document, second.path, second.on) == (
        1,
        ("kind",),
        "value",
    )
    third = path_at(text, 7, 2)
    assert third is not None and (third.document, third.parsed) == (2, False)
    parsed = parse_text(text)
    assert document_type(parsed, 0) == ("v1", "ConfigMap")
    assert document_type(parsed, 1) == (None, "Secret")
    assert document_type(parsed, 2) == (None, None)
    assert document_type(parsed, 7) == (None, None)


def test_document_type_of_a_document_that_does_not_parse() -> None:
    parsed = parse_text("apiVersion: apps/v1\nkind: 'Deployment'\nspec: [\n")
    assert document_type(parsed, 0) == ("apps/v1", "Deployment")


def test_crlf_line_breaks() -> None:
    text = DEPLOYMENT.replace("\n", "\r\n")
    for source in (text, broken(DEPLOYMENT).replace("\n", "\r\n")):
        found = at(source, "image: nginx", 9)
        assert found is not None and found.path == (*CONTAINERS, 0, "image")
        assert (
            found.key_range is not None
            and found.key_range.end.character - found.key_range.start.character == 5
        )


def test_tabs_never_raise_and_keep_the_structure_they_can() -> None:
    text = "spec:\n\tcontainers:\n\t\t- name: a\n"
    found = path_at(text, 2, 6)
    assert found is not None and not found.parsed
    assert found.path == ("spec", "containers", 0, "name")


@pytest.mark.parametrize(
    ("line", "character"), [(-1, 0), (0, -1), (99, 0), (0, 99), (25, 0), (24, 5)]
)
def test_positions_past_the_end_are_none(line: int, character: int) -> None:
    assert path_at(DEPLOYMENT, line, character) is None


@pytest.mark.parametrize("text", ["", "\x00\x01binary", "a" * (17 * 1024 * 1024), "---\n", "..."])
def test_bad_input_is_none_or_an_answer_never_an_error(text: str) -> None:
    for line, character in ((0, 0), (0, 1), (1, 0)):
        result = path_at(text, line, character)
        assert result is None or isinstance(result, YamlPath)
    assert path_at("\x00", 0, 0) is None


# -- the fallback agrees with the parser where the document parses ---------------------------

_KEYS = st.sampled_from(["name", "image", "spec", "ports", "a-b", "x.y", "k8s"])
_SCALARS = st.sampled_from(["web", "80", "true", "a b", "nginx:1.25"])
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(_KEYS, inner, min_size=1, max_size=3)
    ),
    max_leaves=12,
)


def _truth(value: object, path: tuple[object, ...]) -> list[tuple[tuple[object, ...], str, str]]:
    """(path, on, text) of every key and scalar value, in document order."""
    out: list[tuple[tuple[object, ...], str, str]] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            out.append(((*path, key), "key", key))
            if not isinstance(sub, dict | list):
                out.append(((*path, key), "value", str(sub)))
            else:
                out.extend(_truth(sub, (*path, key)))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            if not isinstance(sub, dict | list):
                out.append(((*path, index), "value", str(sub)))
            else:
                out.extend(_truth(sub, (*path, index)))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=4),
    st.sampled_from([2, 4]),
    st.booleans(),
)
def test_indentation_agrees_with_the_parser(
    value: dict[str, object], indent: int, compact: bool
) -> None:
    text = yaml.safe_dump(value, indent=indent, sort_keys=False, default_flow_style=False)
    if not compact:
        text = yaml.dump(value, Dumper=_IndentedDumper, indent=indent, sort_keys=False)
    unparsable = text + "zz: [\n"
    lines = text.splitlines()
    for _, on, word in _truth(value, ()):
        found_line = next((n for n, line in enumerate(lines) if _mentions(line, word, on)), None)
        if found_line is None:
            continue
        column = lines[found_line].index(word) + 1
        parsed = path_at(text, found_line, column)
        fallback = path_at(unparsable, found_line, column)
        assert parsed is not None and fallback is not None
        assert parsed.parsed and not fallback.parsed
        assert (fallback.path, fallback.on, fallback.key_range) == (
            parsed.path,
            parsed.on,
            parsed.key_range,
        ), text


def _mentions(line: str, word: str, on: str) -> bool:
    """Only unambiguous lines: the word appears once, as a key or as the whole value."""
    body = line.strip().lstrip("- ").strip()
    if line.count(word) != 1 or "'" in line:
        return False
    if on == "key":
        return body.startswith(word + ":")
    return body == word or body.endswith(": " + word)


class _IndentedDumper(yaml.SafeDumper):
    """Sequences indented under their key (`- ` two columns in), the other common style."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)
