"""What a template line rendered to: the inverse of `mapping.place`. Every node of the template's
rendered documents is placed in the template as findings are; the rendered lines of the nodes
placed on the asked line are its output (a literal `key: value` line gives its one line, an
`include`/`toYaml` line everything it emitted)."""

from __future__ import annotations

import re

import yaml

from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.helm.mapping import (
    KeyPath,
    Located,
    TemplateShape,
    documents_for,
    place,
    read_template,
)

_SEPARATOR = re.compile(r"^---\s*(#.*)?$")


def _documents(text: str) -> list[tuple[int, list[str]]]:
    """(first line in `text`, lines) of each YAML document of a rendered text."""
    out: list[tuple[int, list[str]]] = []
    start, current = 0, list[str]()
    for i, line in enumerate(text.split("\n")):
        if _SEPARATOR.match(line):
            if any(x.strip() and not x.lstrip().startswith("#") for x in current):
                out.append((start, current))
            start, current = i + 1, []
        else:
            current.append(line)
    if any(x.strip() and not x.lstrip().startswith("#") for x in current):
        out.append((start, current))
    return out


def _kind(root: Node) -> str | None:
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if (
                isinstance(key, ScalarNode)
                and key.value == "kind"
                and isinstance(value, ScalarNode)
            ):
                return str(value.value)
    return None


def _end_line(node: Node) -> int:
    """The last line a node's text is on (a block ends at the start of the next line)."""
    end = node.end_mark
    return (
        int(end.line) - 1 if end.column == 0 and end.line > node.start_mark.line else int(end.line)
    )


def rendered_lines(template_text: str, rendered_text: str, line: int) -> list[str]:
    """The rendered lines template line `line` (0-based) wrote, in rendered order, with `...`
    between documents; [] when it wrote nothing the mapping can find."""
    template = read_template(template_text)
    shape = template.main
    picked: list[list[str]] = []
    for index, (_, lines) in enumerate(_documents(rendered_text)):
        try:
            root = yaml.compose("\n".join(lines))
        except yaml.YAMLError:
            continue
        if root is None:
            continue
        documents = documents_for(shape, index, _kind(root))
        wanted: set[int] = set()
        _walk(shape, root, (), (), lines, documents, line, wanted)
        if wanted:
            picked.append([lines[i] for i in sorted(wanted) if i < len(lines)])
    out: list[str] = []
    for i, chunk in enumerate(picked):
        if i:
            out.append("---")
        out += chunk
    return out


def _walk(
    shape: TemplateShape,
    node: Node,
    path: KeyPath,
    lines: tuple[int, ...],
    doc_lines: list[str],
    documents: frozenset[int] | None,
    line: int,
    wanted: set[int],
) -> None:
    children: list[tuple[str | int, Node, Node]]
    if isinstance(node, MappingNode):
        children = [(str(k.value), k, v) for k, v in node.value if isinstance(k, ScalarNode)]
    elif isinstance(node, SequenceNode):
        children = [(i, item, item) for i, item in enumerate(node.value)]
    else:
        return
    for part, anchor, value in children:
        child_path = (*path, part)
        child_lines = (*lines, int(anchor.start_mark.line))
        located = Located(child_path, "key" if anchor is not value else "value", child_lines)
        placed = place(shape, located, doc_lines, documents)
        if placed is not None and placed.line == line:
            first = int(anchor.start_mark.line)
            last = _end_line(value) if isinstance(value, ScalarNode) else first
            wanted.update(range(first, last + 1))
        _walk(shape, value, child_path, child_lines, doc_lines, documents, line, wanted)
