"""Offline Kubernetes schemas from the `kubernetes-validate` package, loaded once per version.

`kubernetes_validate.validate()` re-reads 1.8 MB of definitions for every document; here each
version's definitions are read once, definitions compile on first use and stay cached, and the
apiVersion/kind index answers "is this kind served, and under which apiVersion?".
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ktl_lsp.checks.k8s_formats import ENUMS
from ktl_lsp.checks.schema_engine import Schema, SchemaCompiler

_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.\d+-local-strict$")
_REQUESTED = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?$")

HISTORICAL_GROUPS = frozenset(
    {"", "extensions", "apps", "batch", "policy", "autoscaling", "networking.k8s.io"}
)
"""Groups that were once built in, so `extensions/v1beta1` is an outdated API, not a CRD."""

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
        "ClusterTrustBundle", "ComponentStatus", "CSIDriver", "CSINode",
        "CustomResourceDefinition", "DeviceClass", "FlowSchema", "IngressClass", "IPAddress",
        "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume",
        "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "SelfSubjectAccessReview",
        "SelfSubjectReview", "SelfSubjectRulesReview", "ServiceCIDR", "StorageClass",
        "StorageVersionMigration", "SubjectAccessReview", "TokenReview",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration", "VolumeAttachment", "VolumeAttributesClass",
    }
)  # fmt: skip


class UnsupportedVersionError(ValueError):
    """A requested Kubernetes version that no packaged schema covers."""


@functools.cache
def schema_root() -> Path:
    """The schemas' folder, found without importing the package (its ``__init__`` pulls in
    jsonschema and referencing: ~100 ms of start-up the language server does not need)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if locations:
        return Path(locations[0]) / "kubernetes-json-schema"
    return Path(str(resources.files("kubernetes_validate") / "kubernetes-json-schema"))


@functools.cache
def available_versions() -> tuple[str, ...]:
    """Packaged versions as "major.minor", oldest first."""
    found: list[tuple[int, int]] = []
    root = schema_root()
    if root.is_dir():
        for entry in root.iterdir():
            match = _VERSION_DIR.match(entry.name)
            if match and (entry / "_definitions.json").is_file():
                found.append((int(match.group(1)), int(match.group(2))))
    return tuple(f"{a}.{b}" for a, b in sorted(found))


def newest_version() -> str:
    versions = available_versions()
    if not versions:
        raise UnsupportedVersionError("no Kubernetes schemas are installed (kubernetes-validate)")
    return versions[-1]


def resolve_version(requested: str | None) -> str:
    """ "1.30", "v1.30.2" -> "1.30"; None -> newest; unsupported -> UnsupportedVersionError."""
    if requested is None or requested == "":
        return newest_version()
    match = _REQUESTED.match(requested.strip())
    if not match:
        raise UnsupportedVersionError(f'invalid Kubernetes version "{requested}" (use X.Y)')
    version = f"{int(match.group(1))}.{int(match.group(2))}"
    versions = available_versions()
    if version not in versions:
        span = f"{versions[0]}..{versions[-1]}" if versions else "none"
        raise UnsupportedVersionError(f"no schemas for Kubernetes {version} (available: {span})")
    return version


def split_api_version(api_version: str) -> tuple[str, str]:
    group, slash, version = api_version.rpartition("/")
    return (group, version) if slash else ("", api_version)


def _version_rank(api_version: str) -> tuple[int, int, int]:
    """Sort key that puts GA before beta before alpha, newer first (as kubectl prefers)."""
    _, version = split_api_version(api_version)
    match = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", version)
    if not match:
        return (3, 0, 0)
    stage = {"": 0, "beta": 1, "alpha": 2}[match.group(2) or ""]
    return (stage, -int(match.group(1)), -int(match.group(3) or 0))


@dataclass
class KubernetesSchemas:
    """One version's definitions and apiVersion/kind index."""

    version: str
    compiler: SchemaCompiler
    kinds: dict[tuple[str, str], str]
    """(apiVersion, kind) -> definition name."""
    api_versions_by_kind: dict[str, list[str]] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()

    def lookup(self, api_version: str, kind: str) -> Schema | None:
        name = self.kinds.get((api_version, kind))
        return self.compiler.definition(name) if name else None

    def has_definition(self, name: str) -> bool:
        return self.compiler.has(name)

    def is_builtin_group(self, group: str) -> bool:
        return group in self.groups or group in HISTORICAL_GROUPS

    def preferred_api_version(self, kind: str) -> str | None:
        versions = self.api_versions_by_kind.get(kind)
        return sorted(versions, key=_version_rank)[0] if versions else None

    def kind_named_like(self, kind: str) -> str | None:
        """A served kind that differs only in case ("deployment" -> "Deployment")."""
        lowered = kind.lower()
        for known in self.api_versions_by_kind:
            if known.lower() == lowered:
                return known
        return None


_LOCK = threading.Lock()
_LOADED: dict[str, KubernetesSchemas] = {}


def schemas_for(version: str | None = None) -> KubernetesSchemas:
    """The (cached) schemas of one version; load cost is paid once per process and version."""
    resolved = resolve_version(version)
    with _LOCK:
        loaded = _LOADED.get(resolved)
        if loaded is None:
            loaded = _load(resolved)
            _LOADED[resolved] = loaded
        return loaded


def read_definitions(version: str) -> dict[str, Any]:
    """A packaged version's definitions as read from its file (not cached)."""
    path = schema_root() / f"v{version}.0-local-strict" / "_definitions.json"
    with path.open(encoding="utf-8") as handle:
        raw: dict[str, Any] = json.load(handle)
    definitions: dict[str, Any] = raw.get("$defs") or raw.get("definitions") or {}
    return definitions


def resource_kinds(definitions: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(apiVersion, kind) -> definition name of the resources among `definitions`."""
    kinds: dict[tuple[str, str], str] = {}
    for name, definition in definitions.items():
        gvks = definition.get("x-kubernetes-group-version-kind") or []
        if len(gvks) != 1:
            continue  # DeleteOptions, WatchEvent: shared helper types, not resources
        gvk = gvks[0]
        group, ver, kind = gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")
        kinds[(f"{group}/{ver}" if group else ver, kind)] = name
    return kinds


def _load(version: str) -> KubernetesSchemas:
    definitions = read_definitions(version)
    kinds = resource_kinds(definitions)
    by_kind: dict[str, list[str]] = {}
    groups: set[str] = set()
    for api_version, kind in kinds:
        by_kind.setdefault(kind, []).append(api_version)
        groups.add(split_api_version(api_version)[0])
    compiler = SchemaCompiler(definitions, enums=ENUMS)
    return KubernetesSchemas(version, compiler, kinds, by_kind, frozenset(groups))


@functools.cache
def versions_serving(api_version: str, kind: str) -> tuple[str, ...]:
    """Packaged versions whose file list has this kind (cheap: directory listings only)."""
    group, ver = split_api_version(api_version)
    short = group.split(".")[0] if group else ""
    filename = f"{kind.lower()}-{short}-{ver}.json" if short else f"{kind.lower()}-{ver}.json"
    root = schema_root()
    return tuple(
        v for v in available_versions() if (root / f"v{v}.0-local-strict" / filename).is_file()
    )


_DOC_KEYS = frozenset({"description", "x-kubernetes-group-version-kind"})


def same_fields(
    old: KubernetesSchemas, old_api: str, new: KubernetesSchemas, new_api: str, kind: str
) -> bool:
    """Whether `kind` has the same fields under `old_api` (in `old`) as under `new_api`.

    Definitions of the resource's own group-version are compared field by field (descriptions
    aside); shared types (ObjectMeta, PodSpec) by name.
    """
    old_name, new_name = old.kinds.get((old_api, kind)), new.kinds.get((new_api, kind))
    if old_name is None or new_name is None:
        return False
    old_prefix, new_prefix = old_name.rsplit(".", 1)[0] + ".", new_name.rsplit(".", 1)[0] + "."

    def shape(schemas: KubernetesSchemas, prefix: str, name: str, seen: frozenset[str]) -> Any:
        if name in seen:
            return ("ref", name.removeprefix(prefix))
        return walk(schemas, prefix, schemas.compiler.raw(name), seen | {name})

    def walk(schemas: KubernetesSchemas, prefix: str, raw: Any, seen: frozenset[str]) -> Any:
        if isinstance(raw, dict):
            ref = raw.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name.startswith(prefix):
                    return shape(schemas, prefix, name, seen)
                return ("ref", name)
            return {k: walk(schemas, prefix, v, seen) for k, v in raw.items() if k not in _DOC_KEYS}
        if isinstance(raw, list):
            return [walk(schemas, prefix, v, seen) for v in raw]
        return "<apiVersion>" if raw in (old_api, new_api) else raw  # the apiVersion's enum

    return bool(
        shape(old, old_prefix, old_name, frozenset())
        == shape(new, new_prefix, new_name, frozenset())
    )
