"""From what the user names (a pod, ``deployment/web``, a Service) to a pod that can serve now.

Exec and port-forward need one running, ready pod; logs need the selector of a workload. The
choice follows kubectl: ready pods first, then the one running longest, never one that is
already being deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktl_lsp.k8s.client import Cluster, Resource
from ktl_lsp.k8s.errors import ApiError, K8sError

WORKLOAD_KINDS = {
    "deployment": "Deployment",
    "deploy": "Deployment",
    "deployments": "Deployment",
    "statefulset": "StatefulSet",
    "sts": "StatefulSet",
    "statefulsets": "StatefulSet",
    "daemonset": "DaemonSet",
    "ds": "DaemonSet",
    "daemonsets": "DaemonSet",
    "replicaset": "ReplicaSet",
    "rs": "ReplicaSet",
    "replicasets": "ReplicaSet",
    "job": "Job",
    "jobs": "Job",
}
SERVICE_NAMES = ("service", "svc", "services")
POD_NAMES = ("pod", "po", "pods")

Obj = dict[str, Any]


class NoReadyPod(K8sError):
    """Nothing to connect to right now (a rollout may be replacing the pods)."""


@dataclass(frozen=True)
class PodTarget:
    """What a pod is reached through (exec, port-forward): exactly one of ``pod``, ``workload``
    ("kind/name") or ``service``, resolved to a running pod when used."""

    namespace: str
    pod: str | None = None
    workload: str | None = None
    service: str | None = None

    @property
    def label(self) -> str:
        if self.pod:
            return f"pod/{self.pod}"
        if self.service:
            return f"service/{self.service}"
        return str(self.workload)

    @classmethod
    def parse(cls, namespace: str, text: str) -> PodTarget:
        """``web-0``, ``pod/web-0``, ``svc/web``, ``deploy/web``: what kubectl accepts."""
        kind, sep, name = text.partition("/")
        if not sep:
            return cls(namespace, pod=text)
        lowered = kind.lower()
        if lowered in POD_NAMES:
            return cls(namespace, pod=name)
        if lowered in SERVICE_NAMES:
            return cls(namespace, service=name)
        return cls(namespace, workload=text)


async def _get(cluster: Cluster, api_version: str, kind: str, namespace: str, name: str) -> Obj:
    res = await resource(cluster, api_version, kind)
    _, obj = await cluster.request("GET", res.path(namespace, name))
    return obj if isinstance(obj, dict) else {}


async def resource(cluster: Cluster, api_version: str, kind: str) -> Resource:
    res = await cluster.resource_for(api_version, kind)
    if res is None:
        raise K8sError(f"the cluster does not serve {kind} ({api_version})")
    return res


def selector_text(selector: Obj | None) -> str:
    """A LabelSelector (matchLabels + matchExpressions) as the query-string syntax."""
    selector = selector or {}
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        values = ",".join(e.get("values") or [])
        op = e.get("operator")
        if op == "In":
            terms.append(f"{e['key']} in ({values})")
        elif op == "NotIn":
            terms.append(f"{e['key']} notin ({values})")
        elif op == "Exists":
            terms.append(str(e["key"]))
        elif op == "DoesNotExist":
            terms.append(f"!{e['key']}")
    return ",".join(terms)


async def workload_selector(cluster: Cluster, namespace: str, workload: str) -> str:
    """The label selector of ``kind/name``'s pods."""
    kind_name, _, name = workload.partition("/")
    kind = WORKLOAD_KINDS.get(kind_name.lower())
    if kind is None or not name:
        raise K8sError(
            f"workload {workload!r}: expected <kind>/<name> with kind one of "
            "deployment, statefulset, daemonset, replicaset, job"
        )
    group = "batch/v1" if kind == "Job" else "apps/v1"
    spec = (await _get(cluster, group, kind, namespace, name)).get("spec") or {}
    if kind == "Job" and not (spec.get("selector") or {}).get("matchLabels"):
        return f"job-name={name}"  # the label every Job's pods carry
    text = selector_text(spec.get("selector"))
    if not text:
        raise K8sError(f"{workload} has no selector")
    return text


async def service(cluster: Cluster, namespace: str, name: str) -> Obj:
    return await _get(cluster, "v1", "Service", namespace, name)


async def selector_of(cluster: Cluster, target: PodTarget) -> str:
    if target.service:
        svc = await service(cluster, target.namespace, target.service)
        labels = (svc.get("spec") or {}).get("selector") or {}
        if not labels:
            raise K8sError(
                f"service {target.service} has no selector: there are no pods to connect to"
            )
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    assert target.workload is not None
    return await workload_selector(cluster, target.namespace, target.workload)


def is_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = status.get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _rank(pod: Obj) -> tuple[int, int, str]:
    status = pod.get("status") or {}
    running = status.get("phase") == "Running"
    # Earlier start sorts first: the pod that has been up longest is the least likely to go.
    return (0 if is_ready(pod) else 1 if running else 2, 0, str(status.get("startTime") or "~"))


def pick(pods: list[Obj]) -> Obj | None:
    """The pod kubectl would choose: ready, then running longest; none being deleted."""
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    live.sort(key=_rank)
    return live[0] if live and (live[0].get("status") or {}).get("phase") == "Running" else None


async def running_pod(cluster: Cluster, target: PodTarget) -> Obj:
    """The pod to talk to now; ``NoReadyPod`` when none runs (yet)."""
    pods = await resource(cluster, "v1", "Pod")
    if target.pod:
        try:
            _, obj = await cluster.request("GET", pods.path(target.namespace, target.pod))
        except ApiError as exc:
            if exc.code == 404:
                raise NoReadyPod(
                    f'pod "{target.pod}" not found in namespace {target.namespace}'
                ) from exc
            raise
        phase = (obj.get("status") or {}).get("phase")
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            raise NoReadyPod(f"pod {target.pod} is being deleted (phase {phase or 'unknown'})")
        if phase != "Running":
            raise NoReadyPod(f"pod {target.pod} is not running (phase {phase or 'unknown'})")
        return obj if isinstance(obj, dict) else {}
    labels = await selector_of(cluster, target)
    _, data = await cluster.request("GET", pods.path(target.namespace), [("labelSelector", labels)])
    found = pick((data or {}).get("items") or [])
    if found is None:
        raise NoReadyPod(f"no running pod for {target.label} ({labels}) in {target.namespace}")
    return found


def default_container(pod: Obj) -> str:
    """The annotation kubectl honours, else the first container."""
    meta = pod.get("metadata") or {}
    annotated = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    if annotated and annotated in containers:
        return str(annotated)
    if not containers:
        raise K8sError(f"pod {meta.get('name')} has no containers")
    return containers[0]


def container_port(pod: Obj, name: str) -> int | None:
    """A named port of any container of the pod."""
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == name and p.get("containerPort"):
                return int(p["containerPort"])
    return None


def service_port(svc: Obj, port: int, pod: Obj) -> int:
    """The pod port a Service port leads to (``targetPort``: a number, a name, or the same)."""
    ports = (svc.get("spec") or {}).get("ports") or []
    name = (svc.get("metadata") or {}).get("name")
    for p in ports:
        if int(p.get("port") or 0) != port:
            continue
        target = p.get("targetPort", port)
        if isinstance(target, int) or str(target).isdigit():
            return int(target)
        found = container_port(pod, str(target))
        if found is None:
            pod_name = (pod.get("metadata") or {}).get("name")
            raise K8sError(f"pod {pod_name} has no port named {target} (service {name})")
        return found
    listed = ", ".join(str(p.get("port")) for p in ports) or "none"
    raise K8sError(f"service {name} does not expose port {port} (ports: {listed})")
