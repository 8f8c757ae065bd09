"""Check one Kubernetes document: apiVersion/kind, schema (built-in or CRD), names, selectors.

Works on one composed document and returns chunk-relative findings, so results can be cached per
document text and reused when the document moves in its file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from ktl_lsp.checks.api_moves import api_version_fix
from ktl_lsp.checks.crds import CrdRegistry
from ktl_lsp.checks.findings import Finding, Related
from ktl_lsp.checks.k8s_formats import HOOKS, name_error
from ktl_lsp.checks.k8s_schemas import (
    KubernetesSchemas,
    split_api_version,
    versions_serving,
)
from ktl_lsp.checks.schema_engine import SchemaWalk, WalkOptions, add_key, node_range
from ktl_lsp.documents.edits import Fix, replace_with
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.yaml_nodes import NULL, STR, get, get_pair, mapping_pairs, scalar_text

NOT_API_GROUPS = (
    "kustomize.config.k8s.io",
    "config.kubernetes.io",
    "kubeadm.k8s.io",
    "audit.k8s.io",
    "apiserver.k8s.io",
    "apiserver.config.k8s.io",
    "client.authentication.k8s.io",
    "kubelet.config.k8s.io",
    "kubeproxy.config.k8s.io",
    "kubescheduler.config.k8s.io",
    "kind.x-k8s.io",
    "ktl.dev",
    "skaffold",
)
"""Configuration files that borrow the apiVersion/kind shape but are no API resources."""

API_SUBGROUPS = frozenset({"flowcontrol.apiserver.k8s.io", "internal.apiserver.k8s.io"})
"""Served API groups under a configuration group's name (FlowSchema, StorageVersion)."""

SELECTOR_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})

_OPTIONS = WalkOptions(code="k8s-schema", unknown_field_severity="warning", hooks=HOOKS)
#: From Kubernetes 1.27 the API server validates fields strictly for kubectl: an unknown field
#: in a closed schema is refused, so it is an error (fields a schema preserves are never reported).
_STRICT = WalkOptions(code="k8s-schema", unknown_field_severity="error", hooks=HOOKS)
STRICT_FROM = (1, 27)
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
LIST_FIELDS = frozenset({"apiVersion", "kind", "metadata", "items"})


@dataclass(frozen=True, slots=True)
class TypeInfo:
    api_version: str | None
    kind: str | None


def type_info(root: Node | None) -> TypeInfo:
    return TypeInfo(scalar_text(get(root, "apiVersion")), scalar_text(get(root, "kind")))


def _is_not_api(api_version: str, kind: str) -> bool:
    group, _ = split_api_version(api_version)
    if api_version == "v1" and kind == "Config":
        return True  # a kubeconfig
    if group in API_SUBGROUPS:
        return False
    return any(group == g or group.endswith("." + g) for g in NOT_API_GROUPS) or (
        api_version.startswith("skaffold/")
    )


@dataclass(frozen=True, slots=True)
class ListItem:
    """One object of a list document, with the apiVersion and kind it has or inherits."""

    node: MappingNode
    api_version: str | None
    kind: str | None


def list_items(root: Node | None) -> list[ListItem] | None:
    """The objects of a list document (`kind: List`, or any `*List` kind with `items`, as
    kubectl reads them), else None. A typed list's item with neither apiVersion nor kind
    inherits them (`ConfigMapList` items are ConfigMaps), like kubectl's decoder."""
    if not isinstance(root, MappingNode):
        return None
    info = type_info(root)
    kind = info.kind
    if not kind or not kind.endswith("List"):
        return None
    items = get(root, "items")
    if not isinstance(items, SequenceNode):
        return [] if kind == "List" else None
    out: list[ListItem] = []
    for item in items.value:
        if not isinstance(item, MappingNode):
            continue
        own = type_info(item)
        if own.api_version is None and own.kind is None and kind != "List":
            out.append(ListItem(item, info.api_version, kind[: -len("List")]))
        else:
            out.append(ListItem(item, own.api_version, own.kind))
    return out


def check_manifest(
    root: Node | None, k8s: KubernetesSchemas, crds: CrdRegistry, patch: bool = False
) -> list[Finding]:
    """Findings for one document (chunk-relative ranges).

    ``patch``: the document is a kustomize strategic-merge patch, a partial object: types,
    unknown fields and enums are checked, required fields and selectors are not."""
    if not isinstance(root, MappingNode):
        return []
    major, minor = (int(x) for x in k8s.version.split(".")[:2])
    options = _STRICT if (major, minor) >= STRICT_FROM else _OPTIONS
    walk = SchemaWalk(replace(options, patch=True) if patch else options)
    _check_object(walk, root, k8s, crds)
    return walk.findings


def _check_list(
    walk: SchemaWalk,
    root: MappingNode,
    items: list[ListItem],
    k8s: KubernetesSchemas,
    crds: CrdRegistry,
) -> None:
    """A list's own fields (its metadata is ListMeta: no name), then each item as an object."""
    for key, value in mapping_pairs(root):
        name = key.value if isinstance(key, ScalarNode) else None
        if name == "metadata" and k8s.has_definition(LIST_META):
            walk.validate(value, k8s.compiler.definition(LIST_META), ("metadata",), key)
        elif isinstance(name, str) and name not in LIST_FIELDS:
            walk.report(key, f'unknown field "{name}"', walk.options.unknown_field_severity)
    api_node, kind_node = get(root, "apiVersion"), get(root, "kind")
    for item in items:
        node = item.node
        if get_pair(node, "apiVersion") or get_pair(node, "kind"):
            _check_object(walk, node, k8s, crds)
        elif item.api_version and item.kind and api_node is not None and kind_node is not None:
            _check_typed(walk, node, item.api_version, item.kind, api_node, kind_node, k8s, crds)
        else:
            walk.report(node.value[0][0] if node.value else node, 'missing required field "kind"')


def _check_object(
    walk: SchemaWalk, root: MappingNode, k8s: KubernetesSchemas, crds: CrdRegistry
) -> None:
    api_pair = get_pair(root, "apiVersion")
    kind_pair = get_pair(root, "kind")
    if api_pair is None and kind_pair is None:
        return  # not a Kubernetes object (compose files, CI configs, ...)
    if walk.options.patch and (api_pair is None or kind_pair is None):
        return  # a patch with a `target:` in its kustomization may leave them out
    for pair, name in ((api_pair, "apiVersion"), (kind_pair, "kind")):
        if pair is None:
            anchor = kind_pair or api_pair
            assert anchor is not None
            walk.report(anchor[0], f'missing required field "{name}"')
            return
        if not isinstance(pair[1], ScalarNode) or pair[1].tag != STR:
            walk.report(pair[1], f"{name}: expected string, got {pair[1].tag.rsplit(':', 1)[-1]}")
            return
    assert api_pair is not None and kind_pair is not None
    api_version, kind = str(api_pair[1].value), str(kind_pair[1].value)
    if _is_not_api(api_version, kind):
        return
    items = list_items(root) if kind.endswith("List") else None
    if items is not None:
        _check_list(walk, root, items, k8s, crds)
        return
    _check_typed(walk, root, api_version, kind, api_pair[1], kind_pair[1], k8s, crds)


def _check_typed(
    walk: SchemaWalk,
    root: MappingNode,
    api_version: str,
    kind: str,
    api_node: Node,
    kind_node: Node,
    k8s: KubernetesSchemas,
    crds: CrdRegistry,
) -> None:
    """An object of a known apiVersion/kind (its own, or inherited from its list)."""
    schema = k8s.lookup(api_version, kind)
    patch = walk.options.patch
    if schema is not None:
        walk.validate(root, schema)
        _check_name(walk, root, kind)
        if kind in SELECTOR_KINDS and not patch:
            _check_selector(walk, root)
        return
    crd = crds.get(api_version, kind)
    if crd is not None:
        if not crd.served:
            walk.report(api_node, f"{api_version} {kind} is not served (served: false in its CRD)")
            return
        walk.validate(root, crds.schema(crd, k8s))
        return
    _unknown_kind(walk, root, api_node, kind_node, api_version, kind, k8s, crds)


def _unknown_kind(
    walk: SchemaWalk,
    root: MappingNode,
    api_node: Node,
    kind_node: Node,
    api_version: str,
    kind: str,
    k8s: KubernetesSchemas,
    crds: CrdRegistry,
) -> None:
    group, _ = split_api_version(api_version)
    code = "k8s-unknown-kind"
    preferred = k8s.preferred_api_version(kind)
    if preferred is not None:
        walk.findings.append(
            Finding(
                node_range(api_node),
                "error",
                code,
                f"{kind} is not served as {api_version} by Kubernetes {k8s.version}; "
                f"use apiVersion: {preferred}",
                fixes=(api_version_fix(root, api_node, api_version, preferred, kind, k8s),),
            )
        )
        return
    crd_kinds = crds.kinds_in_group(group)
    if k8s.is_builtin_group(group) or crd_kinds:
        message = f"unknown kind {kind} in {api_version} for Kubernetes {k8s.version}"
        cased = k8s.kind_named_like(kind)
        close = (
            [cased]
            if cased
            else difflib.get_close_matches(
                kind, [*k8s.api_versions_by_kind, *crd_kinds], n=1, cutoff=0.8
            )
        )
        fixes: tuple[Fix, ...] = ()
        if close:
            message += f' (did you mean "{close[0]}"?)'
            fixes = (replace_with(node_range(kind_node), close[0], f"Change kind to {close[0]}"),)
        else:
            served = versions_serving(api_version, kind)
            if served:
                message += f"; it is served only by Kubernetes {served[0]}..{served[-1]}"
        walk.findings.append(Finding(node_range(kind_node), "error", code, message, fixes=fixes))
        return
    walk.findings.append(
        Finding(
            node_range(api_node),
            "hint",
            code,
            f"no schema for {api_version} {kind}: its CustomResourceDefinition is neither in the "
            "workspace nor on a connected cluster, so this resource is not validated",
        )
    )


def _check_name(walk: SchemaWalk, root: Node, kind: str) -> None:
    metadata = get(root, "metadata")
    name_pair = get_pair(metadata, "name")
    if name_pair is None or (isinstance(name_pair[1], ScalarNode) and name_pair[1].tag == NULL):
        if get(metadata, "generateName") is None and not walk.options.patch:
            anchor = get_pair(root, "metadata") or get_pair(root, "kind")
            if anchor is not None:
                fix = add_key(metadata, "name", '""') if isinstance(metadata, MappingNode) else None
                message = 'missing required field "name" in metadata'
                walk.report(anchor[0], message, fixes=(fix,) if fix else ())
        return
    value = name_pair[1]
    if isinstance(value, ScalarNode) and value.tag == STR:
        reason = name_error(kind, str(value.value))
        if reason is not None:
            walk.report(value, f'metadata.name: Invalid value: "{value.value}": {reason}')


def string_map(node: Node | None) -> dict[str, tuple[str, Node]] | None:
    """A label map as {key: (value, key node)}; None when absent or not a mapping."""
    if not isinstance(node, MappingNode):
        return None
    out: dict[str, tuple[str, Node]] = {}
    for key, value in mapping_pairs(node):
        if isinstance(key, ScalarNode) and isinstance(value, ScalarNode):
            out[str(key.value)] = (str(value.value) if value.tag != NULL else "", key)
    return out


def _matches_expression(expression: Node, labels: dict[str, tuple[str, Node]]) -> bool:
    key = scalar_text(get(expression, "key"))
    operator = scalar_text(get(expression, "operator"))
    values_node = get(expression, "values")
    values = (
        [str(v.value) for v in values_node.value if isinstance(v, ScalarNode)]
        if isinstance(values_node, SequenceNode)
        else []
    )
    if key is None or operator is None:
        return True
    present = key in labels
    if operator == "In":
        return present and labels[key][0] in values
    if operator == "NotIn":
        return not present or labels[key][0] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    return True


def _check_selector(walk: SchemaWalk, root: Node) -> None:
    selector_pair = get_pair(get(root, "spec"), "selector")
    if selector_pair is None:
        return
    selector = selector_pair[1]
    match_labels = string_map(get(selector, "matchLabels")) or {}
    expressions = get(selector, "matchExpressions")
    expression_nodes = expressions.value if isinstance(expressions, SequenceNode) else []
    if not match_labels and not expression_nodes:
        if isinstance(selector, MappingNode):
            walk.report(selector_pair[0], "spec.selector: Invalid value: empty selector is invalid")
        return
    template_meta = get(root, "spec", "template", "metadata")
    labels_pair = get_pair(template_meta, "labels")
    labels = string_map(labels_pair[1] if labels_pair else None) or {}
    message = "spec.template.metadata.labels: selector does not match template labels"
    for key, (value, key_node) in match_labels.items():
        actual = labels.get(key)
        if actual is None or actual[0] != value:
            detail = f" ({key}={value} is not among them)" if labels else " (the template has none)"
            related: tuple[Related, ...] = ()
            if labels_pair is not None:
                related = (Related(node_range(labels_pair[0]), "template labels"),)
            walk.findings.append(
                Finding(
                    node_range(key_node),
                    "error",
                    "k8s-selector-mismatch",
                    message + detail,
                    related,
                )
            )
    for expression in expression_nodes:
        if not _matches_expression(expression, labels):
            walk.findings.append(
                Finding(
                    node_range(expression),
                    "error",
                    "k8s-selector-mismatch",
                    message + " (matchExpressions)",
                )
            )
