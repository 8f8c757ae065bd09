"""From an API server's field path to the place in the manifest it is about.

The API names fields in ``Status.details.causes[].field`` as
``spec.template.spec.containers[0].image`` (validation), ``.spec.replicas`` or
``.spec.template.spec.containers[name="app"].image`` (apply conflicts; several keys for some
lists: ``.ports[containerPort=80,protocol="TCP"]``), and map keys with dots
as ``metadata.labels[app.kubernetes.io/name]``. ``locate`` walks the composed YAML of one
document and answers the range of the deepest key that exists: a missing ``image`` lands on its
container, so the diagnostic is never far from where the fix goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import MappingNode, Node, ScalarNode, SequenceNode, get_pair
from ktl_lsp.documents.yaml_parse import YamlDocument

_TOKEN = re.compile(
    r"""
    (?P<key>[^.\[\]]+)
  | \[(?P<index>\d+)\]
  | \[(?P<selection>[^\]=,]+=(?:"[^"]*"|[^\],"]*)(?:,[^\]=,]+=(?:"[^"]*"|[^\],"]*))*)\]
  | \[(?P<map_key>[^\]]+)\]
  | (?P<dot>\.)
    """,
    re.VERBOSE,
)


_PAIRS = re.compile(r'[^\]=,]+=(?:"[^"]*"|[^\],"]*)')


@dataclass(frozen=True)
class Step:
    key: str | None = None  #: a mapping key
    index: int | None = None  #: a list position
    select: tuple[str, str] | None = None  #: the list item whose field equals a value
    also: tuple[tuple[str, str], ...] = ()  #: more fields it must equal (a list map's keys)


def parse_field_path(path: str) -> list[Step]:
    """``a.b[0].c[name="x"].d[k.with/dots]`` as steps; unknown syntax ends the path."""
    steps: list[Step] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        if m.group("key") is not None:
            steps.append(Step(key=m.group("key")))
        elif m.group("index") is not None:
            steps.append(Step(index=int(m.group("index"))))
        elif m.group("selection") is not None:
            pairs = [
                (k, v[1:-1] if v.startswith('"') else v)
                for k, _, v in (p.partition("=") for p in _PAIRS.findall(m.group("selection")))
            ]
            steps.append(Step(select=pairs[0], also=tuple(pairs[1:])))
        elif m.group("map_key") is not None:
            steps.append(Step(key=m.group("map_key")))
    return steps


@dataclass(frozen=True)
class Located:
    range: Range
    exact: bool  #: the whole path exists in the manifest (else: its deepest existing parent)


def _item_anchor(item: Node) -> Node:
    """Where a list item is shown: its first key (one line) when it is a mapping."""
    if isinstance(item, MappingNode) and item.value:
        first: Node = item.value[0][0]
        return first
    return item


def _has(item: Node, key: str, value: str) -> bool:
    """The list item's field ``key`` is ``value``; a ``protocol`` left out is the API's TCP."""
    found = get_pair(item, key)
    if found is None:
        return key == "protocol" and value == "TCP"
    return isinstance(found[1], ScalarNode) and found[1].value == value


def locate(doc: YamlDocument, path: str) -> Located:
    """The range in the file of ``path`` within document ``doc``."""
    root = doc.root
    fallback = doc_anchor(doc)
    if root is None:
        return Located(fallback, False)
    node: Node = root
    best: Range | None = None
    steps = parse_field_path(path)
    for n, step in enumerate(steps):
        nxt: Node | None = None
        anchor: Node | None = None
        if step.key is not None:
            pair = get_pair(node, step.key)
            if pair is not None:
                anchor, nxt = pair
        elif isinstance(node, SequenceNode):
            items = node.value
            if step.index is not None and step.index < len(items):
                nxt = items[step.index]
            elif step.select is not None:
                for item in items:
                    if all(_has(item, k, v) for k, v in (step.select, *step.also)):
                        nxt = item
                        break
            if nxt is not None:
                anchor = _item_anchor(nxt)
        if nxt is None or anchor is None:
            return Located(best or fallback, False)
        best = doc.range_of(anchor)
        node = nxt
        if n == len(steps) - 1:
            return Located(best, True)
    return Located(best or fallback, not steps)


def doc_anchor(doc: YamlDocument) -> Range:
    """Where a diagnostic about a whole document goes: its ``kind`` key, else its first line."""
    root = doc.root
    if root is not None:
        pair = get_pair(root, "kind")
        if pair is not None:
            return doc.range_of(pair[0])
        if isinstance(root, MappingNode | SequenceNode | ScalarNode):
            start = doc.range_of(root).start
            return Range(start, start)
    return Range.of(doc.start_line, 0, doc.start_line, 0)
