"""Moving an object from a deprecated or removed apiVersion to the one that replaces it: the
apiVersion line, the fields the move requires rewritten, and a title that says what the fix does
and what is left to do by hand.

Known moves: Ingress (`extensions/v1beta1`, `networking.k8s.io/v1beta1` -> `networking.k8s.io/v1`:
backends as `service: {name, port}`, `spec.backend` as `spec.defaultBackend`, `pathType` added),
Deployment/DaemonSet/ReplicaSet/StatefulSet (`extensions/v1beta1`, `apps/v1beta1|2` -> `apps/v1`:
the `spec.selector` apps/v1 requires, from the template's labels), CronJob (`batch/v1beta1`),
PodDisruptionBudget (`policy/v1beta1`: an empty selector selects every pod in policy/v1),
HorizontalPodAutoscaler (`autoscaling/v2beta2`; `v2beta1`'s metrics cannot be rewritten).
Other moves change the apiVersion and say whether the two versions' fields differ.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ktl_lsp.checks.k8s_schemas import (
    KubernetesSchemas,
    same_fields,
    schemas_for,
    versions_serving,
)
from ktl_lsp.checks.schema_docs import field_doc
from ktl_lsp.checks.schema_engine import node_range
from ktl_lsp.documents.edits import Edit, Fix
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.positions import Range
from ktl_lsp.documents.yaml_nodes import INT, get, get_pair, last_leaf, scalar_text

WORKLOADS = frozenset({"Deployment", "DaemonSet", "ReplicaSet", "StatefulSet"})
IMPLEMENTATION_SPECIFIC = "ImplementationSpecific"


@dataclass
class _Move:
    """What a move does: edits, what they change (for the title), what is left by hand."""

    edits: list[Edit] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)
    """Keys of `spec` the move rewrote (not reported as unknown to the new version)."""


def api_version_fix(
    root: MappingNode, api_node: Node, old: str, new: str, kind: str, k8s: KubernetesSchemas
) -> Fix:
    """The fix that moves `root` from `old` to `new`, preferred unless work is left by hand."""
    move = _Move([Edit(node_range(api_node), new)])
    target, rewrite = _MOVES.get((old, kind), ("", None))
    if rewrite is not None and target == new:
        rewrite(root, move)
        _unknown_spec_keys(root, new, kind, k8s, move)
        title = f"Change apiVersion to {new}"
        if move.changes:
            title += ", " + ", ".join(move.changes)
        extra = [f"by hand: {m}" for m in move.manual] + move.notes
        if not move.changes and not extra:
            extra.append("no field changes needed")
        if extra:
            title += f" ({'; '.join(extra)})"
        return Fix(title, tuple(move.edits), preferred=not move.manual)
    served = versions_serving(old, kind)
    title = f"Change apiVersion to {new}"
    if not served:
        title += f" (fields may need changes: {old} is too old to compare)"
    elif not same_fields(schemas_for(served[-1]), old, k8s, new, kind):
        title += f" (fields may need changes: {kind} differs in {new})"
    return Fix(title, tuple(move.edits), preferred=True)


def _unknown_spec_keys(
    root: MappingNode, new: str, kind: str, k8s: KubernetesSchemas, move: _Move
) -> None:
    """`spec` keys the new apiVersion does not have (`rollbackTo`, `templateGeneration`)."""
    spec = get(root, "spec")
    if not isinstance(spec, MappingNode):
        return
    for key, _ in spec.value:
        name = scalar_text(key)
        if (
            name
            and name not in move.handled
            and not field_doc(k8s.version, new, kind, ("spec", name))
        ):
            move.manual.append(f"remove spec.{name}, which {new} does not have")


# -- Ingress -----------------------------------------------------------------------------------
def _ingress(root: MappingNode, move: _Move) -> None:
    spec = get(root, "spec")
    backends: list[Node] = []
    old_default = get_pair(spec, "backend")
    if old_default is not None:
        move.edits.append(Edit(node_range(old_default[0]), "defaultBackend"))
        move.changes.append("rename spec.backend to spec.defaultBackend")
        move.handled.add("backend")
        backends.append(old_default[1])
    paths_added = 0
    rules = get(spec, "rules")
    for rule in rules.value if isinstance(rules, SequenceNode) else ():
        paths = get(rule, "http", "paths")
        for item in paths.value if isinstance(paths, SequenceNode) else ():
            if not isinstance(item, MappingNode):
                continue
            backend = get(item, "backend")
            if backend is not None:
                backends.append(backend)
            if get_pair(item, "pathType") is None:
                edit = _first_key(item, f"pathType: {IMPLEMENTATION_SPECIFIC}")
                if edit is None:
                    move.manual.append("add pathType to a path")
                else:
                    move.edits.append(edit)
                    paths_added += 1
    moved = by_hand = 0
    for backend in backends:
        if not isinstance(backend, MappingNode) or get_pair(backend, "serviceName") is None:
            continue
        edit = _service_backend(backend)
        if edit is None:
            by_hand += 1
        else:
            move.edits.append(edit)
            moved += 1
    if moved:
        move.changes.append("move serviceName/servicePort to service: {name, port}")
    if by_hand:
        move.manual.append(f"move serviceName/servicePort of {by_hand} backend(s) to service:")
    if paths_added:
        move.changes.append(f"add pathType: {IMPLEMENTATION_SPECIFIC} to {paths_added} path(s)")


def _service_backend(backend: MappingNode) -> Edit | None:
    """`serviceName`/`servicePort` (next to each other) as `service: {name, port}`."""
    pairs = backend.value
    keys = [scalar_text(k) for k, _ in pairs]
    if "servicePort" not in keys:
        return None
    a, b = sorted((keys.index("serviceName"), keys.index("servicePort")))
    if b != a + 1:
        return None
    name, port = get(backend, "serviceName"), get(backend, "servicePort")
    if not isinstance(name, ScalarNode) or not isinstance(port, ScalarNode):
        return None
    number = port.tag == INT or str(port.value).isdigit()
    port_text = f"number: {int(port.value)}" if number else f"name: {_scalar(port)}"
    if backend.flow_style:
        if len(pairs) != 2:
            return None
        text = "{service: {name: " + _scalar(name) + ", port: {" + port_text + "}}}"
        return Edit(node_range(backend), text)
    start = pairs[a][0].start_mark
    end = last_leaf(pairs[b][1]).end_mark
    if end.column == 0 and end.line > start.line:
        return None  # a block value: leave it to the person
    indent = " " * (start.column + 2)
    text = f"service:\n{indent}name: {_scalar(name)}\n{indent}port:\n{indent}  {port_text}"
    return Edit(Range.of(start.line, start.column, end.line, end.column), text)


# -- workloads ---------------------------------------------------------------------------------
def _workload(root: MappingNode, move: _Move) -> None:
    spec = get(root, "spec")
    if not isinstance(spec, MappingNode) or get_pair(spec, "selector") is not None:
        return
    labels = get(spec, "template", "metadata", "labels")
    pairs = [
        (k, v)
        for k, v in (labels.value if isinstance(labels, MappingNode) else [])
        if isinstance(k, ScalarNode) and isinstance(v, ScalarNode)
    ]
    if not pairs:
        move.manual.append("add spec.selector (the pod template has no labels to select)")
        return
    flow = "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in pairs) + "}"
    if spec.flow_style:
        edit = _first_key(spec, f"selector: {{matchLabels: {flow}}}")
    else:
        column = spec.value[0][0].start_mark.column if spec.value else 0
        lines = "".join(f"\n{' ' * (column + 4)}{_scalar(k)}: {_scalar(v)}" for k, v in pairs)
        edit = _first_key(spec, f"selector:\n{' ' * (column + 2)}matchLabels:{lines}")
    if edit is None:
        move.manual.append("add spec.selector")
        return
    move.edits.append(edit)
    move.changes.append("add spec.selector.matchLabels from the template's labels")


# -- the rest ----------------------------------------------------------------------------------
def _pdb(root: MappingNode, move: _Move) -> None:
    selector = get(root, "spec", "selector")
    if isinstance(selector, MappingNode) and not selector.value:
        move.notes.append("its empty selector selects every pod of the namespace in policy/v1")


def _no_change(root: MappingNode, move: _Move) -> None:
    return None


def _hpa_v2beta1(root: MappingNode, move: _Move) -> None:
    if get(root, "spec", "metrics") is not None:
        move.manual.append("write each spec.metrics[] target as target: {type, ...}")


def _first_key(mapping: MappingNode, text: str) -> Edit | None:
    """Inserts `text` as the first entry of a mapping, before its first key."""
    if not mapping.value:
        return None
    first = mapping.value[0][0].start_mark
    if mapping.flow_style:
        return Edit(Range.of(first.line, first.column, first.line, first.column), f"{text}, ")
    inserted = f"{text}\n{' ' * first.column}"
    return Edit(Range.of(first.line, first.column, first.line, first.column), inserted)


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9._/-]*")
_RESERVED = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def _scalar(node: Node) -> str:
    """A scalar as YAML text that reads back as the same string (JSON quotes when needed)."""
    text = str(node.value) if isinstance(node, ScalarNode) else ""
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)


_MOVES: dict[tuple[str, str], tuple[str, Callable[[MappingNode, _Move], None]]] = {
    ("extensions/v1beta1", "Ingress"): ("networking.k8s.io/v1", _ingress),
    ("networking.k8s.io/v1beta1", "Ingress"): ("networking.k8s.io/v1", _ingress),
    **{
        (old, kind): ("apps/v1", _workload)
        for old in ("extensions/v1beta1", "apps/v1beta1", "apps/v1beta2")
        for kind in WORKLOADS
    },
    ("batch/v1beta1", "CronJob"): ("batch/v1", _no_change),
    ("policy/v1beta1", "PodDisruptionBudget"): ("policy/v1", _pdb),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("autoscaling/v2", _no_change),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): ("autoscaling/v2", _hpa_v2beta1),
}
"""(old apiVersion, kind) -> (the apiVersion the rewrite is for, the rewrite)."""
