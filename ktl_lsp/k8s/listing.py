"""What a cluster runs, summarised for an editor's pickers (pods, workloads, Services, namespaces).

One LIST per kind, in parallel; each item says what ``ktl.exec``/``ktl.logs``/``ktl.portForward``
take as a target (``pod/web-1``, ``deployment/web``, ``service/web``) and what helps choose it:
readiness, status, ports, containers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.targets import is_ready, resource

Obj = dict[str, Any]

#: plural -> (apiVersion, Kind, target prefix)
KINDS: dict[str, tuple[str, str, str | None]] = {
    "pods": ("v1", "Pod", "pod"),
    "deployments": ("apps/v1", "Deployment", "deployment"),
    "statefulsets": ("apps/v1", "StatefulSet", "statefulset"),
    "daemonsets": ("apps/v1", "DaemonSet", "daemonset"),
    "jobs": ("batch/v1", "Job", "job"),
    "services": ("v1", "Service", "service"),
    "namespaces": ("v1", "Namespace", None),
}
DEFAULT_KINDS = ("pods", "deployments", "statefulsets", "daemonsets", "services")


def _container_ports(pod_spec: Obj) -> list[int]:
    out: list[int] = []
    for c in pod_spec.get("containers") or []:
        for p in c.get("ports") or []:
            port = p.get("containerPort")
            if isinstance(port, int) and port not in out:
                out.append(port)
    return out


def pod_status(pod: Obj) -> str:
    """What ``kubectl get pods`` shows in STATUS: a waiting reason beats the phase."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"])
    return str(status.get("phase") or "Unknown")


def summarise(plural: str, obj: Obj) -> Obj:
    _, kind, prefix = KINDS[plural]
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    item: Obj = {"kind": kind, "name": name}
    if meta.get("namespace"):
        item["namespace"] = meta["namespace"]
    if prefix:
        item["target"] = f"{prefix}/{name}"
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if plural == "pods":
        item["ready"] = is_ready(obj)
        item["status"] = pod_status(obj)
        item["containers"] = [str(c.get("name")) for c in spec.get("containers") or []]
        item["ports"] = _container_ports(spec)
    elif plural == "services":
        item["ports"] = [int(p["port"]) for p in spec.get("ports") or [] if p.get("port")]
        item["status"] = str(spec.get("type") or "ClusterIP")
    elif plural in ("deployments", "statefulsets", "daemonsets", "jobs"):
        template = (spec.get("template") or {}).get("spec") or {}
        item["ports"] = _container_ports(template)
        if plural == "daemonsets":
            want, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
        elif plural == "jobs":
            want, ready = spec.get("completions", 1), status.get("succeeded", 0)
        else:
            want, ready = spec.get("replicas", 1), status.get("readyReplicas", 0)
        item["status"] = f"{ready or 0}/{want if want is not None else 1}"
        item["ready"] = bool(want) and (ready or 0) >= want
    return item


async def list_items(cluster: Cluster, namespace: str, kinds: list[str]) -> list[Obj]:
    async def one(plural: str) -> list[Obj]:
        api_version, kind, _ = KINDS[plural]
        res = await resource(cluster, api_version, kind)
        _, data = await cluster.request(
            "GET", res.path(None if plural == "namespaces" else namespace)
        )
        items = [summarise(plural, o) for o in (data or {}).get("items") or []]
        return sorted(items, key=lambda i: i["name"])

    found = await asyncio.gather(*(one(k) for k in kinds))
    return [item for group in found for item in group]
