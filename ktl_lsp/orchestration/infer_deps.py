"""``needs`` edges between the releases of one cluster, inferred from what their charts render.

ktl's rules (``cli.inferDeps``, on by default; ``internal/stack/infer_deps.go``): a release that
creates a Namespace, a CRD, a ServiceAccount (or RBAC bound to one) or a PersistentVolumeClaim
comes before the releases whose objects live in that namespace, are of that kind, run as that
ServiceAccount or mount that claim; with ``cli.inferConfigRefs`` also ConfigMaps and Secrets read
through volumes, ``envFrom`` and ``env``; and ``ktl.io/depends-on: a,b`` on a rendered object
names releases outright. Reasons carry ktl's ``type`` and ``evidence`` strings, so
``inferredNeeds`` reads as ``ktl stack plan --output json`` prints it.

Pure: rendered text in, edges out. Rendering lives in ``stack_infer``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

DEPENDS_ON = "ktl.io/depends-on"
HOOK = "helm.sh/hook"

#: Kinds ktl treats as cluster-scoped: their objects live in no namespace.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "CustomResourceDefinition",
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "StorageClass",
        "PriorityClass",
    }
)
_POD_SPEC = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


@dataclass(frozen=True, order=True)
class Reason:
    """Why one release needs another, in ktl's words: ``type`` (``namespace``, ``crd``,
    ``rbac``, ``serviceAccount``, ``pvc``, ``configMap``, ``secret``,
    ``annotation:depends-on``) and ``evidence`` (``sa/runner in ns/platform``)."""

    type: str
    evidence: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "evidence": self.evidence}

    def text(self, provider: str) -> str:
        """The reason as a sentence about the release that is needed."""
        return _TEXTS.get(self.type, "{p}: {e}").format(p=provider, e=self.evidence)


_TEXTS = {
    "namespace": "{p} creates the namespace its objects live in ({e})",
    "crd": "{p} creates the CRD of its {e} objects",
    "rbac": "{p} binds RBAC to the ServiceAccount it runs as ({e})",
    "serviceAccount": "{p} creates the ServiceAccount it runs as ({e})",
    "pvc": "{p} creates the claim it mounts ({e})",
    "configMap": "{p} creates a ConfigMap it reads ({e})",
    "secret": "{p} creates a Secret it reads ({e})",
    "annotation:depends-on": "{p} is named by ktl.io/depends-on on {e}",
}


@dataclass(frozen=True)
class InferredNeed:
    name: str
    """The needed release's name (needs name releases of the same cluster)."""
    reasons: tuple[Reason, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "reasons": [r.to_json() for r in self.reasons]}

    @property
    def types(self) -> str:
        """The reason types joined by ``+``: how ktl labels the edge in a cycle message."""
        return "+".join(sorted({r.type for r in self.reasons})) or "inferred"


@dataclass
class ReleaseObjects:
    """One release of a cluster and the objects its chart rendered."""

    name: str
    namespace: str
    objects: list[dict[str, Any]] = field(default_factory=list)


class ManifestError(ValueError):
    """Rendered text that is not YAML: the release gets no inferred needs."""


def objects_of(manifests: Mapping[str, str]) -> list[dict[str, Any]]:
    """The objects a release would apply: every document with a kind and a name, hooks left out
    (Helm keeps them out of the release manifest ktl reads)."""
    out: list[dict[str, Any]] = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise ManifestError(f"{template}: {exc}") from exc
        for document in documents:
            if not isinstance(document, dict):
                continue
            if not _text(document.get("kind")) or not _text(_meta(document).get("name")):
                continue
            if _text(_annotations(document).get(HOOK)):
                continue
            out.append(document)
    return out


def release_fields(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``wave`` and ``parallelismGroup`` from the ``ktl.io/wave`` and ``ktl.io/parallelismGroup``
    annotations of the rendered objects (the first usable value of each); ktl fills a release's
    fields the stack file leaves unset with them."""
    out: dict[str, Any] = {}
    for obj in objects:
        annotations = _annotations(obj)
        wave = _text(annotations.get("ktl.io/wave"))
        if "wave" not in out and re.fullmatch(r"-?[0-9]+", wave) and int(wave) != 0:
            out["wave"] = int(wave)
        group = _text(annotations.get("ktl.io/parallelismGroup"))
        if group:
            out.setdefault("parallelismGroup", group)
    return out


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    annotations = _meta(obj).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def namespace_of(obj: Mapping[str, Any], default: str) -> str:
    """The namespace an object lands in: its own, else the release's; "" when cluster-scoped."""
    own = _text(_meta(obj).get("namespace"))
    if own:
        return own
    if _text(obj.get("kind")) in CLUSTER_SCOPED:
        return ""
    return default.strip() or "default"


def _pod_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    path = _POD_SPEC.get(_text(obj.get("kind")))
    spec = _dig(obj, *path) if path else None
    return spec if isinstance(spec, dict) else None


def service_account_of(obj: Mapping[str, Any]) -> str:
    """The ServiceAccount a workload runs as ("" for none or ``default``)."""
    spec = _pod_spec(obj)
    name = _text(spec.get("serviceAccountName")) if spec else ""
    return "" if name.lower() == "default" else name


def _volumes(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = _pod_spec(obj)
    return _dicts(spec.get("volumes")) if spec else []


def _names(items: Iterable[Any], *path: str) -> list[str]:
    return [name for item in items if (name := _text(_dig(item, *path)))]


def claims_of(obj: Mapping[str, Any]) -> list[str]:
    """PersistentVolumeClaims a workload mounts."""
    return sorted(set(_names(_volumes(obj), "persistentVolumeClaim", "claimName")))


def _env(obj: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spec = _pod_spec(obj)
    env_from: list[dict[str, Any]] = []
    env: list[dict[str, Any]] = []
    for container in _dicts(spec.get("containers")) if spec else []:
        env_from += _dicts(container.get("envFrom"))
        env += _dicts(container.get("env"))
    return env_from, env


def config_maps_of(obj: Mapping[str, Any]) -> list[str]:
    """ConfigMaps a workload reads: volumes, ``envFrom`` and ``env`` (its containers)."""
    env_from, env = _env(obj)
    return sorted(
        {
            *_names(_volumes(obj), "configMap", "name"),
            *_names(env_from, "configMapRef", "name"),
            *_names(env, "valueFrom", "configMapKeyRef", "name"),
        }
    )


def secrets_of(obj: Mapping[str, Any]) -> list[str]:
    """Secrets a workload reads: volumes, ``envFrom`` and ``env`` (its containers)."""
    env_from, env = _env(obj)
    return sorted(
        {
            *_names(_volumes(obj), "secret", "secretName"),
            *_names(env_from, "secretRef", "name"),
            *_names(env, "valueFrom", "secretKeyRef", "name"),
        }
    )


def _bound_service_accounts(obj: Mapping[str, Any], namespace: str) -> list[str]:
    """``ns/name`` keys of the ServiceAccounts a (Cluster)RoleBinding binds."""
    out: set[str] = set()
    for subject in _dicts(obj.get("subjects")):
        if _text(subject.get("kind")).lower() != "serviceaccount":
            continue
        name = _text(subject.get("name"))
        if name:
            ns = _text(subject.get("namespace")) or namespace or "default"
            out.add(_key(ns, name))
    return sorted(out)


def _key(namespace: str, name: str) -> str:
    return f"{namespace.lower()}/{name.lower()}"


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


@dataclass
class _Provides:
    """What one release creates that others may need, by lookup key."""

    namespaces: set[str] = field(default_factory=set)
    crds: set[str] = field(default_factory=set)  # group/kind, lower case
    service_accounts: set[str] = field(default_factory=set)  # ns/name, lower case
    rbac_for: set[str] = field(default_factory=set)  # ns/name of bound ServiceAccounts
    claims: set[str] = field(default_factory=set)
    config_maps: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)


def _provides(release: ReleaseObjects) -> _Provides:
    out = _Provides()
    for obj in release.objects:
        kind = _text(obj.get("kind"))
        name = _text(_meta(obj).get("name"))
        ns = namespace_of(obj, release.namespace)
        if kind == "Namespace":
            out.namespaces.add(name)
        elif kind == "CustomResourceDefinition":
            group = _text(_dig(obj, "spec", "group"))
            crd_kind = _text(_dig(obj, "spec", "names", "kind"))
            if group and crd_kind:
                out.crds.add(f"{group.lower()}/{crd_kind.lower()}")
        elif kind in ("RoleBinding", "ClusterRoleBinding"):
            out.rbac_for.update(_bound_service_accounts(obj, ns))
        elif ns:
            keyed = {
                "ServiceAccount": out.service_accounts,
                "PersistentVolumeClaim": out.claims,
                "ConfigMap": out.config_maps,
                "Secret": out.secrets,
            }.get(kind)
            if keyed is not None:
                keyed.add(_key(ns, name))
    return out


def _split_names(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def infer_needs(
    releases: Sequence[ReleaseObjects], config_refs: bool = False
) -> dict[str, list[InferredNeed]]:
    """Release name -> the releases it needs, sorted by name, each with its sorted reasons.

    ``releases`` are the releases of one cluster (needs never cross clusters); a release never
    needs itself, and a name no release has is dropped as ktl drops it."""
    provides = {r.name: _provides(r) for r in releases}
    names = set(provides)

    def providers(key: str, pick: str) -> list[str]:
        return sorted(n for n, p in provides.items() if key in getattr(p, pick))

    out: dict[str, list[InferredNeed]] = {}
    for release in releases:
        found: dict[str, set[Reason]] = {}
        for obj in release.objects:
            for need, reason in _needs_of(obj, release.namespace, providers, config_refs):
                if need != release.name and need in names:
                    found.setdefault(need, set()).add(reason)
        out[release.name] = [
            InferredNeed(need, tuple(sorted(reasons))) for need, reasons in sorted(found.items())
        ]
    return out


def _needs_of(
    obj: Mapping[str, Any],
    default_namespace: str,
    providers: Callable[[str, str], list[str]],
    config_refs: bool,
) -> Iterable[tuple[str, Reason]]:
    """(release name, reason) for everything one object needs from the stack's providers."""
    kind = _text(obj.get("kind"))
    name = _text(_meta(obj).get("name"))
    ns = namespace_of(obj, default_namespace)
    depends_on = _text(_annotations(obj).get(DEPENDS_ON))
    for need in _split_names(depends_on):
        yield need, Reason("annotation:depends-on", f"{kind} {ns}/{name}")
    if ns and kind != "Namespace":
        for provider in providers(ns, "namespaces"):
            yield provider, Reason("namespace", f"ns/{ns}")
    group = _group(_text(obj.get("apiVersion")))
    if group and kind not in ("CustomResourceDefinition", "APIService", "Namespace"):
        for provider in providers(f"{group.lower()}/{kind.lower()}", "crds"):
            yield provider, Reason("crd", f"{kind}.{group}")
    if not ns:
        return
    account = service_account_of(obj)
    if account:
        key = _key(ns, account)
        evidence = f"sa/{account} in ns/{ns}"
        # ktl prefers the releases that bind RBAC to the account over the one creating it.
        rbac = providers(key, "rbac_for")
        for provider in rbac:
            yield provider, Reason("rbac", evidence)
        for provider in [] if rbac else providers(key, "service_accounts"):
            yield provider, Reason("serviceAccount", evidence)
    for claim in claims_of(obj):
        for provider in providers(_key(ns, claim), "claims"):
            yield provider, Reason("pvc", f"pvc/{claim} in ns/{ns}")
    if not config_refs:
        return
    for config_map in config_maps_of(obj):
        for provider in providers(_key(ns, config_map), "config_maps"):
            yield provider, Reason("configMap", f"cm/{config_map} in ns/{ns}")
    for secret in secrets_of(obj):
        for provider in providers(_key(ns, secret), "secrets"):
            yield provider, Reason("secret", f"secret/{secret} in ns/{ns}")
