"""One object of the cluster: as YAML (Secrets' values redacted), described as ``kubectl
describe`` does, and the explorer's actions on it (scale, rollout restart, delete).

Scale and restart are server-side applies of the one field they change, each under a field
manager of its own (``ktl-scale``, ``ktl-restart``), so ``managedFields`` says who changed what
and a later drift report can name it.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

from ktl_lsp.k8s.client import Cluster, Resource
from ktl_lsp.k8s.errors import ApiError, K8sError
from ktl_lsp.k8s.explorer import KINDS, summarise
from ktl_lsp.k8s.targets import selector_text

Obj = dict[str, Any]

SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet"}
RESTARTABLE = {"Deployment", "StatefulSet", "DaemonSet"}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class UnknownKind(K8sError):
    """A kind the cluster does not serve."""


async def resolve(cluster: Cluster, kind: str, api_version: str | None = None) -> Resource:
    """``Deployment``, ``deployments``, ``deploy`` or a CRD's Kind (with ``api_version``)."""
    if api_version:
        found = await cluster.resource_for(api_version, kind)
        if found is not None:
            return found
    for plural, (av, k, namespaced) in KINDS.items():
        if kind in (k, plural) or kind.lower() == k.lower():
            group, _, version = av.rpartition("/")
            return Resource(group, version, k, plural, namespaced)
    found = await cluster.resource_by_name(kind)
    if found is None:
        raise UnknownKind(f"the cluster of context {cluster.name} does not serve {kind}")
    return found


def _ns(res: Resource, namespace: str | None, cluster: Cluster) -> str | None:
    return (namespace or cluster.default_namespace) if res.namespaced else None


async def fetch(
    cluster: Cluster, kind: str, name: str, namespace: str | None, api_version: str | None = None
) -> tuple[Resource, Obj]:
    res = await resolve(cluster, kind, api_version)
    _, obj = await cluster.request("GET", res.path(_ns(res, namespace, cluster), name))
    obj = dict(obj or {})
    obj.setdefault("apiVersion", res.api_version)
    obj.setdefault("kind", res.kind)
    return res, obj


def redact(obj: Obj) -> Obj:
    """A Secret without its values: each key says how long its value is."""
    if obj.get("kind") != "Secret":
        return obj
    out = copy.deepcopy(obj)
    for section in ("data", "stringData"):
        values = out.get(section)
        if isinstance(values, dict):
            out[section] = {k: f"<redacted: {len(str(v))} bytes>" for k, v in values.items()}
    annotations = (out.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        annotations[LAST_APPLIED] = "<redacted>"
    return out


def as_yaml(obj: Obj, reveal: bool = False) -> str:
    """The object as ``kubectl get -o yaml`` shows it (managed fields left out)."""
    import yaml

    out = copy.deepcopy(obj if reveal else redact(obj))
    (out.get("metadata") or {}).pop("managedFields", None)
    text: str = yaml.safe_dump(out, sort_keys=False, default_flow_style=False)
    return text


# -- describe ----------------------------------------------------------------------------------
def _age(stamp: Any, now: datetime | None = None) -> str:
    if not stamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pairs(values: Any) -> str:
    if not isinstance(values, dict) or not values:
        return "<none>"
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


async def _events(cluster: Cluster, obj: Obj) -> list[Obj]:
    meta = obj.get("metadata") or {}
    path = (
        f"/api/v1/namespaces/{meta['namespace']}/events"
        if meta.get("namespace")
        else "/api/v1/events"
    )
    fields = f"involvedObject.uid={meta.get('uid')}"
    try:
        _, data = await cluster.request("GET", path, [("fieldSelector", fields)])
    except ApiError as exc:
        if exc.code in (403, 404):
            return []
        raise
    items = list((data or {}).get("items") or [])
    items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return items[-20:]


async def _related_pods(cluster: Cluster, obj: Obj) -> list[Obj]:
    selector = ((obj.get("spec") or {}).get("selector")) or None
    if obj.get("kind") == "Service":
        selector = {"matchLabels": selector} if selector else None
    if not selector or obj.get("kind") == "Pod":
        return []
    namespace = (obj.get("metadata") or {}).get("namespace")
    text = selector_text(selector)
    if not text:
        return []
    _, data = await cluster.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods", [("labelSelector", text)]
    )
    return list((data or {}).get("items") or [])


async def describe(
    cluster: Cluster, kind: str, name: str, namespace: str | None, api_version: str | None = None
) -> str:
    """A ``kubectl describe``-like text: summary, conditions, related pods, events."""
    res, obj = await fetch(cluster, kind, name, namespace, api_version)
    events, pods = await asyncio.gather(_events(cluster, obj), _related_pods(cluster, obj))
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    node = summarise(res.kind, res.api_version, obj)
    lines = [f"Name:         {meta.get('name')}"]
    if meta.get("namespace"):
        lines.append(f"Namespace:    {meta['namespace']}")
    lines.append(f"Kind:         {res.kind} ({res.api_version})")
    lines.append(f"Context:      {cluster.name}")
    lines.append(
        f"Created:      {meta.get('creationTimestamp')} ({_age(meta.get('creationTimestamp'))} ago)"
    )
    lines.append(f"Labels:       {_pairs(meta.get('labels'))}")
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    lines.append(f"Annotations:  {_pairs(annotations)}")
    owners = [f"{r.get('kind')}/{r.get('name')}" for r in meta.get("ownerReferences") or []]
    if owners:
        lines.append(f"Controlled By: {', '.join(owners)}")
    for key, label in (
        ("status", "Status"),
        ("ready", "Ready"),
        ("restarts", "Restarts"),
        ("node", "Node"),
        ("type", "Type"),
        ("endpoints", "Endpoints"),
        ("schedule", "Schedule"),
    ):
        if node.get(key) not in (None, ""):
            lines.append(f"{label + ':':<13} {node[key]}")
    if res.kind in SCALABLE | {"DaemonSet"}:
        lines.append(f"Selector:     {selector_text(spec.get('selector'))}")
        lines.append(
            f"Replicas:     {spec.get('replicas', '-')} desired | {status.get('updatedReplicas', 0)} updated"
            f" | {status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available"
        )
    if res.kind == "Service":
        lines.append(f"Selector:     {_pairs(spec.get('selector'))}")
        lines.append(f"IP:           {spec.get('clusterIP') or '<none>'}")
        lines.append(f"Ports:        {', '.join(node.get('ports') or []) or '<none>'}")
    if res.kind in ("ConfigMap", "Secret"):
        lines.append("Data:")
        lines += [f"  {k}" for k in node.get("keys") or []] or ["  <none>"]
    containers = node.get("containers") or []
    if containers:
        lines.append("Containers:")
        for c in containers:
            state = c["state"] + (f" ({c['reason']})" if c.get("reason") else "")
            lines.append(f"  {c['name']}:")
            lines.append(f"    Image:          {c.get('image')}")
            lines.append(f"    State:          {state}")
            if c.get("lastReason"):
                lines.append(f"    Last State:     terminated ({c['lastReason']})")
            lines.append(f"    Ready:          {c['ready']}")
            lines.append(f"    Restart Count:  {c['restarts']}")
    conditions = status.get("conditions") or []
    lines.append("Conditions:")
    rows = [["Type", "Status", "Reason", "Message"]] + [
        [
            str(c.get("type")),
            str(c.get("status")),
            str(c.get("reason") or ""),
            str(c.get("message") or ""),
        ]
        for c in conditions
        if isinstance(c, dict)
    ]
    lines += _table(rows) if conditions else ["  <none>"]
    if pods:
        lines.append("Pods:")
        rows = [["Name", "Ready", "Status", "Restarts", "Age"]]
        for p in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
            s = summarise("Pod", "v1", p)
            rows.append(
                [s["name"], s["ready"], s["status"], str(s["restarts"]), _age(s.get("created"))]
            )
        lines += _table(rows)
    lines.append("Events:")
    if events:
        rows = [["Type", "Reason", "Age", "From", "Message"]]
        for e in events:
            stamp = e.get("lastTimestamp") or e.get("eventTime")
            count = int(e.get("count") or 1)
            age = _age(stamp) + (f" (x{count})" if count > 1 else "")
            source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
            rows.append(
                [
                    str(e.get("type")),
                    str(e.get("reason")),
                    age,
                    str(source),
                    str(e.get("message") or ""),
                ]
            )
        lines += _table(rows)
    else:
        lines.append("  <none>")
    return "\n".join(lines) + "\n"


# -- actions -----------------------------------------------------------------------------------
async def _apply_field(cluster: Cluster, res: Resource, obj: Obj, manager: str, body: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    patch: Obj = {
        "apiVersion": res.api_version,
        "kind": res.kind,
        "metadata": {
            "name": meta.get("name"),
            **({"namespace": meta["namespace"]} if meta.get("namespace") else {}),
        },
        **body,
    }
    _, out = await cluster.request(
        "PATCH",
        res.path(meta.get("namespace"), str(meta.get("name"))),
        [("fieldManager", manager), ("force", "true")],
        body=patch,
        content_type="application/apply-patch+yaml",
    )
    return dict(out or {})


async def scale(
    cluster: Cluster, kind: str, name: str, namespace: str | None, replicas: int
) -> tuple[int | None, Obj]:
    """Sets ``spec.replicas``; returns the count before and the object after."""
    res, obj = await fetch(cluster, kind, name, namespace)
    if res.kind not in SCALABLE:
        raise UnknownKind(f"{res.kind} cannot be scaled (only {', '.join(sorted(SCALABLE))})")
    before = (obj.get("spec") or {}).get("replicas")
    after = await _apply_field(cluster, res, obj, "ktl-scale", {"spec": {"replicas": replicas}})
    return before, after


async def restart(cluster: Cluster, kind: str, name: str, namespace: str | None) -> Obj:
    """``kubectl rollout restart``: a new ``restartedAt`` annotation on the pod template."""
    res, obj = await fetch(cluster, kind, name, namespace)
    if res.kind not in RESTARTABLE:
        raise UnknownKind(f"{res.kind} cannot be restarted (only {', '.join(sorted(RESTARTABLE))})")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    return await _apply_field(cluster, res, obj, "ktl-restart", body)


async def delete(
    cluster: Cluster, kind: str, name: str, namespace: str | None, propagation: str
) -> Obj:
    res = await resolve(cluster, kind)
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
    _, out = await cluster.request(
        "DELETE", res.path(_ns(res, namespace, cluster), name), body=body
    )
    return dict(out or {}) if isinstance(out, dict) else {}
