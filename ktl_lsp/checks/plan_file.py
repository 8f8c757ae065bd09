"""Plan files: the shipped JSON Schema, then ids, deps, cycles and claim conflicts.

Claim conflicts are information, not errors: the scheduler serialises overlapping exclusive
claims, and the user may want to know why two nodes never run side by side.
"""

from __future__ import annotations

import functools
import itertools
import json
from importlib import resources
from typing import Any

from ktl_lsp.checks.findings import Finding, Related
from ktl_lsp.checks.schema_engine import Schema, SchemaCompiler, SchemaWalk, WalkOptions, node_range
from ktl_lsp.documents.nodes import Node, ScalarNode, SequenceNode
from ktl_lsp.documents.yaml_nodes import get, scalar_text, scalar_value
from ktl_lsp.documents.yaml_parse import ParsedText
from ktl_lsp.globs import globs_overlap
from ktl_lsp.graph import find_cycles

MAX_CONFLICT_NODES = 500


@functools.cache
def plan_schema_data() -> dict[str, Any]:
    """The plan format's JSON Schema, shipped with the package."""
    text = resources.files("ktl_lsp.checks").joinpath("plan.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def _plan_schema() -> Schema:
    data = plan_schema_data()
    return SchemaCompiler(data.get("$defs", {})).compile(data)


def check_plan(parsed: ParsedText) -> list[Finding]:
    findings: list[Finding] = []
    for document in parsed.documents[:1]:
        root = document.root
        if root is None:
            continue
        walk = SchemaWalk(WalkOptions(code="plan-schema", unknown_field_severity="warning"))
        walk.validate(root, _plan_schema())
        _semantics(root, walk.findings)
        findings.extend(f.shifted(document.start_line) for f in walk.findings)
    return findings


def _run_or_verify(node_id: str, id_node: Node, item: Node, out: list[Finding]) -> None:
    """A node does one thing: a command (``run``) or ktl's verify gate (``verify``)."""
    run, verify = get(item, "run"), get(item, "verify")
    if run is None and verify is None:
        message = f'node "{node_id}" has nothing to do: give it run (a command) or verify'
        out.append(Finding(node_range(id_node), "error", "plan-schema", message))
    elif run is not None and verify is not None:
        message = f'node "{node_id}" has both run and verify: give it one of them'
        out.append(Finding(node_range(verify), "error", "plan-schema", message))


def _semantics(root: Node, out: list[Finding]) -> None:
    nodes = get(root, "nodes")
    if not isinstance(nodes, SequenceNode):
        return
    ids: dict[str, Node] = {}
    deps: dict[str, list[tuple[str, Node]]] = {}
    claims: dict[str, list[tuple[str, str, Node]]] = {}
    for item in nodes.value:
        id_node = get(item, "id")
        node_id = scalar_text(id_node)
        if not node_id or id_node is None:
            continue
        if node_id in ids:
            out.append(
                Finding(
                    node_range(id_node),
                    "error",
                    "plan-duplicate-id",
                    f'duplicate node id "{node_id}"',
                    (Related(node_range(ids[node_id]), "first defined here"),),
                )
            )
            continue
        ids[node_id] = id_node
        _run_or_verify(node_id, id_node, item, out)
        dep_list = get(item, "deps")
        deps[node_id] = [
            (str(d.value), d)
            for d in (dep_list.value if isinstance(dep_list, SequenceNode) else [])
            if isinstance(d, ScalarNode)
        ]
        claim_list = get(item, "claims")
        claims[node_id] = []
        # A worktree node's relative claims are in its own lane: they collide with nothing.
        worktree = get(item, "worktree")
        in_lane = worktree is not None and scalar_value(worktree) is True
        for claim in claim_list.value if isinstance(claim_list, SequenceNode) else []:
            path_node = get(claim, "path")
            path = scalar_text(path_node)
            if in_lane and path and not path.startswith(("/", "~")):
                continue
            if path and path_node is not None:
                mode = scalar_text(get(claim, "mode")) or "exclusive"
                claims[node_id].append((path, mode, path_node))
    edges: dict[str, list[str]] = {}
    for node_id, items in deps.items():
        for dep, dep_node in items:
            if dep not in ids:
                out.append(
                    Finding(
                        node_range(dep_node),
                        "error",
                        "plan-unknown-dep",
                        f'node "{node_id}" depends on unknown node "{dep}"',
                    )
                )
            else:
                edges.setdefault(node_id, []).append(dep)
    for cycle in find_cycles(list(ids), edges):
        ring = [*cycle, cycle[0]]
        text = " -> ".join(ring)
        edge_nodes = [next(n for d, n in deps[a] if d == b) for a, b in itertools.pairwise(ring)]
        for index, dep_node in enumerate(edge_nodes):
            related = tuple(
                Related(node_range(n), "part of the cycle")
                for i, n in enumerate(edge_nodes)
                if i != index
            )
            out.append(
                Finding(
                    node_range(dep_node),
                    "error",
                    "plan-cycle",
                    f"dependency cycle: {text}",
                    related,
                )
            )
    _claim_conflicts(ids, edges, claims, out)


def _claim_conflicts(
    ids: dict[str, Node],
    edges: dict[str, list[str]],
    claims: dict[str, list[tuple[str, str, Node]]],
    out: list[Finding],
) -> None:
    claimed = [i for i in ids if claims.get(i)]
    if len(claimed) > MAX_CONFLICT_NODES:
        return
    ancestors: dict[str, set[str]] = {}

    def reach(node_id: str) -> set[str]:
        found = ancestors.get(node_id)
        if found is not None:
            return found
        seen: set[str] = set()
        stack = list(edges.get(node_id, []))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(edges.get(current, []))
        ancestors[node_id] = seen
        return seen

    for index, a in enumerate(claimed):
        for b in claimed[index + 1 :]:
            if b in reach(a) or a in reach(b):
                continue  # ordered by deps: they never run together anyway
            for path_a, mode_a, node_a in claims[a]:
                hit = next(
                    (
                        (path_b, node_b)
                        for path_b, mode_b, node_b in claims[b]
                        if "exclusive" in (mode_a, mode_b) and globs_overlap(path_a, path_b)
                    ),
                    None,
                )
                if hit is not None:
                    out.append(
                        Finding(
                            node_range(hit[1]),
                            "information",
                            "plan-claim-conflict",
                            f'claim "{hit[0]}" of node "{b}" overlaps claim "{path_a}" of node '
                            f'"{a}"; the two nodes will not run at the same time',
                            (Related(node_range(node_a), f'claim of node "{a}"'),),
                        )
                    )
                    break
