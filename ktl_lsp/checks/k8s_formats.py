"""Kubernetes value formats the OpenAPI schemas do not express: quantities, names, labels, enums.

Wording follows the API server's validation messages so users recognise them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ktl_lsp.checks.schema_engine import Hook, Path, SchemaWalk, describe, format_path
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode
from ktl_lsp.documents.yaml_nodes import NULL, STR, json_kind, mapping_pairs

QUANTITY = re.compile(
    r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$"
)
_LABEL_VALUE = re.compile(r"^(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z](?:[-a-z0-9]*[a-z0-9])?$")

LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
QUALIFIED_NAME_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character"
)
DNS1123_LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
DNS1035_LABEL_RULE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character"
)
QUANTITY_RULE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def label_value_error(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    return None if _LABEL_VALUE.match(value) else LABEL_VALUE_RULE


def qualified_name_error(value: str) -> str | None:
    """Label and annotation keys: `[prefix/]name`."""
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            return "prefix part must be non-empty"
        if len(prefix) > 253:
            return "prefix part must be no more than 253 characters"
        if not _DNS1123_SUBDOMAIN.match(prefix):
            return "prefix part " + DNS1123_SUBDOMAIN_RULE
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    return None if _QUALIFIED_NAME.match(name) else QUALIFIED_NAME_RULE


def dns1123_label_error(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    return None if _DNS1123_LABEL.match(value) else DNS1123_LABEL_RULE


def dns1123_subdomain_error(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters"
    return None if _DNS1123_SUBDOMAIN.match(value) else DNS1123_SUBDOMAIN_RULE


def dns1035_label_error(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    return None if _DNS1035_LABEL.match(value) else DNS1035_LABEL_RULE


def path_segment_error(value: str) -> str | None:
    if value in (".", ".."):
        return f"may not be '{value}'"
    for bad in ("/", "%"):
        if bad in value:
            return f"may not contain '{bad}'"
    return None


def _invalid(walk: SchemaWalk, node: Node, path: Path, value: str, reason: str) -> None:
    walk.report(node, f'{format_path(path)}: Invalid value: "{value}": {reason}')


def _string_map(walk: SchemaWalk, node: Node | None, path: Path, check_values: bool) -> None:
    if not isinstance(node, MappingNode):
        return
    for key, value in mapping_pairs(node):
        if not isinstance(key, ScalarNode):
            continue
        key_text = str(key.value)
        reason = qualified_name_error(key_text)
        if reason is not None:
            _invalid(walk, key, (*path, key_text), key_text, reason)
        if check_values and isinstance(value, ScalarNode) and value.tag == STR:
            reason = label_value_error(str(value.value))
            if reason is not None:
                _invalid(walk, value, (*path, key_text), str(value.value), reason)


def _object_meta(walk: SchemaWalk, node: Node, path: Path) -> None:
    if not isinstance(node, MappingNode):
        return
    for key, value in mapping_pairs(node):
        name = key.value if isinstance(key, ScalarNode) else None
        if name == "labels":
            _string_map(walk, value, (*path, "labels"), check_values=True)
        elif name == "annotations":
            _string_map(walk, value, (*path, "annotations"), check_values=False)
        elif name == "namespace" and isinstance(value, ScalarNode) and value.tag == STR:
            reason = dns1123_label_error(str(value.value))
            if reason is not None:
                _invalid(walk, value, (*path, "namespace"), str(value.value), reason)


def _label_selector(walk: SchemaWalk, node: Node, path: Path) -> None:
    if isinstance(node, MappingNode):
        for key, value in mapping_pairs(node):
            if isinstance(key, ScalarNode) and key.value == "matchLabels":
                _string_map(walk, value, (*path, "matchLabels"), check_values=True)


def _quantity(walk: SchemaWalk, node: Node, path: Path) -> None:
    kind = json_kind(node)
    if kind in ("integer", "number", "null"):
        return
    if kind != "string":
        walk.report(node, f"{format_path(path)}: expected a quantity, got {describe(node)}")
        return
    text = str(node.value)
    if not QUANTITY.match(text):
        _invalid(walk, node, path, text, QUANTITY_RULE)


def _int_or_string(walk: SchemaWalk, node: Node, path: Path) -> None:
    if json_kind(node) not in ("integer", "string", "null"):
        walk.report(node, f"{format_path(path)}: expected integer or string, got {describe(node)}")


HOOKS: Mapping[str, Hook] = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": _object_meta,
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector": _label_selector,
    "io.k8s.apimachinery.pkg.api.resource.Quantity": _quantity,
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
}

_PROTOCOLS = ("TCP", "UDP", "SCTP")
_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
_PULL = ("Always", "IfNotPresent", "Never")
_TERMINATION = ("File", "FallbackToLogsOnError")
_TRAFFIC = ("Cluster", "Local")
_UPDATE = ("RollingUpdate", "OnDelete")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_HONOR = ("Honor", "Ignore")
_CORE = "io.k8s.api.core.v1."

ENUMS: Mapping[tuple[str, str], tuple[str, ...]] = {
    (_CORE + "Container", "imagePullPolicy"): _PULL,
    (_CORE + "Container", "terminationMessagePolicy"): _TERMINATION,
    (_CORE + "EphemeralContainer", "imagePullPolicy"): _PULL,
    (_CORE + "EphemeralContainer", "terminationMessagePolicy"): _TERMINATION,
    (_CORE + "PodSpec", "restartPolicy"): ("Always", "OnFailure", "Never"),
    (_CORE + "PodSpec", "dnsPolicy"): (
        "ClusterFirst",
        "ClusterFirstWithHostNet",
        "Default",
        "None",
    ),
    (_CORE + "PodSpec", "preemptionPolicy"): ("PreemptLowerPriority", "Never"),
    (_CORE + "ContainerPort", "protocol"): _PROTOCOLS,
    (_CORE + "ServicePort", "protocol"): _PROTOCOLS,
    (_CORE + "ServiceSpec", "type"): ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
    (_CORE + "ServiceSpec", "sessionAffinity"): ("ClientIP", "None"),
    (_CORE + "ServiceSpec", "externalTrafficPolicy"): _TRAFFIC,
    (_CORE + "ServiceSpec", "internalTrafficPolicy"): _TRAFFIC,
    (_CORE + "ServiceSpec", "ipFamilyPolicy"): (
        "SingleStack",
        "PreferDualStack",
        "RequireDualStack",
    ),
    (_CORE + "PersistentVolumeClaimSpec", "volumeMode"): ("Filesystem", "Block"),
    (_CORE + "PersistentVolumeClaimSpec", "accessModes"): _ACCESS_MODES,
    (_CORE + "PersistentVolumeSpec", "volumeMode"): ("Filesystem", "Block"),
    (_CORE + "PersistentVolumeSpec", "accessModes"): _ACCESS_MODES,
    (_CORE + "PersistentVolumeSpec", "persistentVolumeReclaimPolicy"): (
        "Retain",
        "Delete",
        "Recycle",
    ),
    (_CORE + "Toleration", "operator"): ("Exists", "Equal"),
    (_CORE + "Toleration", "effect"): _EFFECTS,
    (_CORE + "Taint", "effect"): _EFFECTS,
    (_CORE + "NodeSelectorRequirement", "operator"): (
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
        "Gt",
        "Lt",
    ),
    (_CORE + "SeccompProfile", "type"): ("RuntimeDefault", "Unconfined", "Localhost"),
    (_CORE + "HTTPGetAction", "scheme"): ("HTTP", "HTTPS"),
    (_CORE + "TopologySpreadConstraint", "whenUnsatisfiable"): ("DoNotSchedule", "ScheduleAnyway"),
    (_CORE + "TopologySpreadConstraint", "nodeAffinityPolicy"): _HONOR,
    (_CORE + "TopologySpreadConstraint", "nodeTaintsPolicy"): _HONOR,
    (_CORE + "HostPathVolumeSource", "type"): (
        "",
        "DirectoryOrCreate",
        "Directory",
        "FileOrCreate",
        "File",
        "Socket",
        "CharDevice",
        "BlockDevice",
    ),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement", "operator"): (
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
    ),
    ("io.k8s.api.apps.v1.DeploymentStrategy", "type"): ("Recreate", "RollingUpdate"),
    ("io.k8s.api.apps.v1.StatefulSetSpec", "podManagementPolicy"): ("OrderedReady", "Parallel"),
    ("io.k8s.api.apps.v1.StatefulSetUpdateStrategy", "type"): _UPDATE,
    ("io.k8s.api.apps.v1.DaemonSetUpdateStrategy", "type"): _UPDATE,
    ("io.k8s.api.batch.v1.CronJobSpec", "concurrencyPolicy"): ("Allow", "Forbid", "Replace"),
    ("io.k8s.api.batch.v1.JobSpec", "completionMode"): ("NonIndexed", "Indexed"),
    ("io.k8s.api.batch.v1.JobSpec", "podReplacementPolicy"): ("TerminatingOrFailed", "Failed"),
    ("io.k8s.api.networking.v1.HTTPIngressPath", "pathType"): (
        "Exact",
        "Prefix",
        "ImplementationSpecific",
    ),
    ("io.k8s.api.networking.v1.NetworkPolicySpec", "policyTypes"): ("Ingress", "Egress"),
    ("io.k8s.api.networking.v1.NetworkPolicyPort", "protocol"): _PROTOCOLS,
    ("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "unhealthyPodEvictionPolicy"): (
        "IfHealthyBudget",
        "AlwaysAllow",
    ),
    ("io.k8s.api.autoscaling.v2.MetricSpec", "type"): (
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ),
    ("io.k8s.api.autoscaling.v2.MetricTarget", "type"): ("AverageValue", "Utilization", "Value"),
}
"""Enumerations enforced by the API server's Go validation but absent from its OpenAPI."""

_RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def name_error(kind: str, name: str) -> str | None:
    """Why `metadata.name` is invalid for a built-in kind (None when valid or unknown rules)."""
    if kind in _RBAC_KINDS:
        return path_segment_error(name)
    if kind == "Namespace":
        return dns1123_label_error(name)
    if kind == "Service":
        return dns1035_label_error(name)
    if kind == "CronJob" and len(name) > 52:
        return "must be no more than 52 characters"
    return dns1123_subdomain_error(name)


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == NULL)
