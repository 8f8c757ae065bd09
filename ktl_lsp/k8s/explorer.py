"""A live model of what a cluster runs, kept by one list + watch per kind (and namespace).

Each object becomes a small summary (``Node``, plain JSON): what a tree row shows (status, ready
x/y, restarts, age, the containers' states and reasons), its controller owner's uid (so
Deployment -> ReplicaSet -> Pod is a tree) and the Warning events about it. Secrets keep the
names of their keys, never a value. The streams survive what :func:`ktl_lsp.k8s.watch.watch`
survives (timeouts, dropped connections with backoff, 410 Expired -> relist); a relist drops
what the new list lacks. A kind refused cluster-wide is watched per namespace instead, so an
RBAC refusal of some namespaces shows the rest and marks those ``forbidden``.

Changes are coalesced per object until :meth:`Explorer.take`, so a consumer paced at a few
batches a second sends each object once per batch whatever the update rate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ktl_lsp.k8s.client import Cluster, Resource
from ktl_lsp.k8s.errors import ApiError, K8sError
from ktl_lsp.k8s.listing import pod_status
from ktl_lsp.k8s.watch import watch

Obj = dict[str, Any]

#: Kinds the explorer knows by their plural: (apiVersion, Kind, namespaced).
KINDS: dict[str, tuple[str, str, bool]] = {
    "namespaces": ("v1", "Namespace", False),
    "nodes": ("v1", "Node", False),
    "deployments": ("apps/v1", "Deployment", True),
    "statefulsets": ("apps/v1", "StatefulSet", True),
    "daemonsets": ("apps/v1", "DaemonSet", True),
    "replicasets": ("apps/v1", "ReplicaSet", True),
    "jobs": ("batch/v1", "Job", True),
    "cronjobs": ("batch/v1", "CronJob", True),
    "pods": ("v1", "Pod", True),
    "services": ("v1", "Service", True),
    "ingresses": ("networking.k8s.io/v1", "Ingress", True),
    "configmaps": ("v1", "ConfigMap", True),
    "secrets": ("v1", "Secret", True),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim", True),
    "events": ("v1", "Event", True),
}
DEFAULT_KINDS = tuple(KINDS)
#: Container reasons that mean the pod is broken, not merely on its way.
BAD_REASONS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "OOMKilled",
    "Error",
    "CreateContainerConfigError",
    "InvalidImageName",
    "RunContainerError",
}
#: Warning events kept per object (the newest); an object with thousands keeps only these.
WARNINGS_KEPT = 5
#: Items summarised between two yields to the loop while a big list is taken in.
LIST_SLICE = 200

StreamKey = tuple[str, str]
"""(plural, namespace or "" for all/cluster-scoped)"""


@dataclass
class Stream:
    """One list + watch: its state as the tree shows it."""

    plural: str
    namespace: str
    state: str = "listing"  #: listing, watching, retrying, forbidden, error
    message: str | None = None
    uids: set[str] = field(default_factory=set)

    def to_lsp(self) -> Obj:
        out: Obj = {"kind": KINDS[self.plural][1] if self.plural in KINDS else self.plural}
        out.update(plural=self.plural, state=self.state)
        if self.namespace:
            out["namespace"] = self.namespace
        if self.message:
            out["message"] = self.message
        return out


# -- summaries ---------------------------------------------------------------------------------
def _ratio(ready: Any, want: Any) -> str:
    return f"{int(ready or 0)}/{int(want if want is not None else 1)}"


def _containers(pod: Obj) -> list[Obj]:
    out = []
    statuses = {
        str(cs.get("name")): cs for cs in (pod.get("status") or {}).get("containerStatuses") or []
    }
    for c in (pod.get("spec") or {}).get("containers") or []:
        name = str(c.get("name") or "")
        cs = statuses.get(name) or {}
        state = cs.get("state") or {}
        which = next(iter(state), "waiting")
        detail = state.get(which) or {}
        item: Obj = {
            "name": name,
            "image": c.get("image"),
            "ready": bool(cs.get("ready")),
            "restarts": int(cs.get("restartCount") or 0),
            "state": which,
        }
        if detail.get("reason"):
            item["reason"] = str(detail["reason"])
        last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
        if last:
            item["lastReason"] = str(last)
        if which == "terminated" and detail.get("exitCode") is not None:
            item["exitCode"] = detail["exitCode"]
        out.append(item)
    return out


def _pod(obj: Obj, node: Obj) -> None:
    containers = _containers(obj)
    status = pod_status(obj)
    for c in containers:
        if c["state"] == "terminated" and c.get("reason") in BAD_REASONS:
            status = c["reason"]
    phase = str((obj.get("status") or {}).get("phase") or "Unknown")
    ready = sum(1 for c in containers if c["ready"])
    node.update(
        status=status,
        phase=phase,
        ready=f"{ready}/{len(containers)}",
        restarts=sum(c["restarts"] for c in containers),
        node=(obj.get("spec") or {}).get("nodeName"),
        containers=containers,
        labels=(obj.get("metadata") or {}).get("labels") or {},
    )
    reasons = {c.get("reason") for c in containers} | {c.get("lastReason") for c in containers}
    if status in BAD_REASONS or phase == "Failed" or (reasons & {"OOMKilled"} and not ready):
        node["health"] = "error"
    elif phase == "Succeeded" or (containers and ready == len(containers) and phase == "Running"):
        node["health"] = "ok"
    elif phase == "Pending":
        node["health"] = "pending"
    else:
        node["health"] = "warn"


def _workload(kind: str, obj: Obj, node: Obj) -> None:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "DaemonSet":
        want, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
    else:
        want, ready = spec.get("replicas", 1), status.get("readyReplicas", 0)
    node["ready"] = _ratio(ready, want)
    node["replicas"] = int(want or 0)
    images = [
        c.get("image")
        for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    ]
    node["images"] = images
    node["health"] = "ok" if int(ready or 0) >= int(want or 0) else "pending"
    node["status"] = "Ready" if node["health"] == "ok" else "Progressing"


def _job(obj: Obj, node: Obj) -> None:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    node["ready"] = _ratio(status.get("succeeded"), spec.get("completions", 1))
    conds = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Failed" in conds:
        node.update(status="Failed", health="error", reason=conds["Failed"].get("reason"))
    elif "Complete" in conds:
        node.update(status="Complete", health="ok")
    else:
        node.update(status="Running" if status.get("active") else "Pending", health="pending")


def _service(obj: Obj, node: Obj) -> None:
    spec = obj.get("spec") or {}
    node["type"] = str(spec.get("type") or "ClusterIP")
    node["clusterIP"] = spec.get("clusterIP")
    node["ports"] = [
        f"{p.get('port')}/{p.get('protocol') or 'TCP'}" for p in spec.get("ports") or []
    ]
    node["selector"] = spec.get("selector") or {}
    node["status"] = node["type"]


def _node(obj: Obj, node: Obj) -> None:
    conds = {
        c.get("type"): c.get("status") for c in (obj.get("status") or {}).get("conditions") or []
    }
    pressure = [
        t for t in ("MemoryPressure", "DiskPressure", "PIDPressure") if conds.get(t) == "True"
    ]
    ready = conds.get("Ready") == "True"
    node.update(
        status="Ready" if ready else "NotReady",
        pressure=pressure,
        health="ok" if ready and not pressure else ("warn" if ready else "error"),
    )
    info = (obj.get("status") or {}).get("nodeInfo") or {}
    if info.get("kubeletVersion"):
        node["version"] = info["kubeletVersion"]


def _generic(obj: Obj, node: Obj) -> None:
    """A kind the explorer has no view of (a CRD): its Ready condition, if it says one."""
    conds = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conds if isinstance(c, dict) and c.get("type") == "Ready"), None)
    if ready is not None:
        ok = ready.get("status") == "True"
        node.update(status="Ready" if ok else str(ready.get("reason") or "NotReady"))
        node["health"] = "ok" if ok else "warn"


def summarise(kind: str, api_version: str, obj: Obj) -> Obj:
    """The tree's view of one object (never a Secret's values)."""
    meta = obj.get("metadata") or {}
    node: Obj = {
        "uid": str(meta.get("uid") or f"{kind}/{meta.get('namespace', '')}/{meta.get('name')}"),
        "kind": kind,
        "apiVersion": api_version,
        "name": str(meta.get("name") or ""),
        "created": meta.get("creationTimestamp"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if meta.get("namespace"):
        node["namespace"] = meta["namespace"]
    owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    if owner is not None:
        node["owner"] = str(owner.get("uid") or "")
        node["ownerKind"] = owner.get("kind")
    if meta.get("deletionTimestamp"):
        node["deleting"] = True
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Pod":
        _pod(obj, node)
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        _workload(kind, obj, node)
    elif kind == "Job":
        _job(obj, node)
    elif kind == "CronJob":
        node.update(
            schedule=spec.get("schedule"),
            suspended=bool(spec.get("suspend")),
            active=len(status.get("active") or []),
            lastSchedule=status.get("lastScheduleTime"),
            status="Suspended" if spec.get("suspend") else "Scheduled",
            health="ok",
        )
    elif kind == "Service":
        _service(obj, node)
    elif kind == "Ingress":
        rules = spec.get("rules") or []
        node["hosts"] = [str(r.get("host")) for r in rules if r.get("host")]
        node["class"] = spec.get("ingressClassName")
        lbs = (status.get("loadBalancer") or {}).get("ingress") or []
        node["address"] = [str(i.get("ip") or i.get("hostname")) for i in lbs]
    elif kind in ("ConfigMap", "Secret"):
        keys = set(obj.get("data") or {}) | set(
            obj.get("binaryData") or obj.get("stringData") or {}
        )
        node["keys"] = sorted(keys)
        if kind == "Secret":
            node["type"] = obj.get("type")
    elif kind == "PersistentVolumeClaim":
        phase = str(status.get("phase") or "Pending")
        node.update(
            status=phase,
            capacity=(status.get("capacity") or {}).get("storage"),
            storageClass=spec.get("storageClassName"),
            health="ok" if phase == "Bound" else ("error" if phase == "Lost" else "pending"),
        )
    elif kind == "Namespace":
        phase = str(status.get("phase") or "Active")
        node.update(status=phase, health="ok" if phase == "Active" else "warn")
    elif kind == "Node":
        _node(obj, node)
    else:
        _generic(obj, node)
    return node


def _warning(event: Obj) -> Obj:
    return {
        "reason": event.get("reason"),
        "message": event.get("message"),
        "count": int(event.get("count") or 1),
        "last": event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp"),
    }


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# -- the model ---------------------------------------------------------------------------------
class Explorer:
    """The objects of ``kinds`` in ``namespaces`` (all when None) of one cluster, kept live."""

    def __init__(
        self,
        cluster: Cluster,
        kinds: list[str] | None = None,
        namespaces: list[str] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.kinds = list(kinds or DEFAULT_KINDS)
        self.namespaces = namespaces
        self.on_change = on_change or (lambda: None)
        self.nodes: dict[str, Obj] = {}
        self.streams: dict[StreamKey, Stream] = {}
        #: involved object's uid -> event uid -> warning
        self.warnings: dict[str, dict[str, Obj]] = {}
        self._event_owner: dict[str, str] = {}
        self._changed: dict[str, Obj | None] = {}
        self._streams_changed = False
        self._resources: dict[str, Resource] = {}
        self._tasks: dict[StreamKey, asyncio.Task[None]] = {}
        self._per_namespace: set[str] = set()
        #: namespace -> uids of its pods and of its Services (for the endpoints count)
        self._pods: dict[str | None, set[str]] = {}
        self._services: dict[str | None, set[str]] = {}
        #: (kind, namespace, name) -> uid, for the workspace's look-ups
        self._by_name: dict[tuple[str, str | None, str], str] = {}
        #: Set once every stream has answered its first list (or failed it).
        self.ready = asyncio.Event()
        self._namespaces_listed = asyncio.Event()
        self._starting = True  #: kinds are still being resolved: not ready whatever streams say

    # -- running ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Watches until cancelled."""
        try:
            for plural in self.kinds:
                res = await self._resource(plural)
                if res is None:
                    self.streams[(plural, "")] = Stream(
                        plural, "", "error", f"the cluster does not serve {plural}"
                    )
                    continue
                if res.namespaced and self.namespaces:
                    for ns in self.namespaces:
                        self._start(plural, ns)
                else:
                    self._start(plural, "")
            self._starting = False
            self._streams_changed = True
            self._check_ready()
            await asyncio.Event().wait()
        finally:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _resource(self, plural: str) -> Resource | None:
        found = self._resources.get(plural)
        if found is not None:
            return found
        if plural in KINDS:
            api_version, kind, namespaced = KINDS[plural]
            group, _, version = api_version.rpartition("/")
            found = Resource(group, version, kind, plural, namespaced)
        else:
            found = await self._discover(plural)
        if found is not None:
            self._resources[plural] = found
        return found

    async def _discover(self, name: str) -> Resource | None:
        """A CRD's kind on demand: ``widgets.example.com`` (plural.group) or its Kind."""
        plural, _, group = name.partition(".")
        try:
            if group:
                _, data = await self.cluster.request("GET", f"/apis/{group}")
                versions = [
                    (data or {}).get("preferredVersion") or {},
                    *list((data or {}).get("versions") or []),
                ]
                gvs = [str(v["groupVersion"]) for v in versions if v.get("groupVersion")]
            else:
                _, data = await self.cluster.request("GET", "/apis")
                gvs = [
                    str((g.get("preferredVersion") or {}).get("groupVersion"))
                    for g in (data or {}).get("groups") or []
                ]
            for gv in gvs:
                _, listing = await self.cluster.request("GET", f"/apis/{gv}")
                for r in (listing or {}).get("resources") or []:
                    rname = str(r.get("name") or "")
                    if "/" in rname:
                        continue
                    if plural in (rname, str(r.get("kind") or "").lower()) or name == r.get("kind"):
                        g, _, v = gv.rpartition("/")
                        return Resource(g, v, str(r["kind"]), rname, bool(r.get("namespaced")))
        except K8sError:
            return None
        return None

    def _start(self, plural: str, namespace: str) -> None:
        key = (plural, namespace)
        if key in self._tasks:
            return
        self.streams[key] = Stream(plural, namespace)
        self._tasks[key] = asyncio.ensure_future(self._follow(key))

    def _set(self, stream: Stream, state: str, message: str | None = None) -> None:
        if (stream.state, stream.message) != (state, message):
            stream.state, stream.message = state, message
            self._streams_changed = True
            self.on_change()
        self._check_ready()

    def _check_ready(self) -> None:
        if self._starting:
            return
        if not self.ready.is_set() and all(s.state != "listing" for s in self.streams.values()):
            self.ready.set()
            self.on_change()

    async def _follow(self, key: StreamKey) -> None:
        try:
            await self._follow_stream(key)
        finally:
            if key[0] == "namespaces":
                self._namespaces_listed.set()  # listed, refused or failed: nobody waits more

    async def _follow_stream(self, key: StreamKey) -> None:
        plural, namespace = key
        stream = self.streams[key]
        res = self._resources[plural]
        seen: set[str] = set()  #: what the current (re)list found

        def notice(text: str) -> None:
            self._set(stream, "retrying", text)

        try:
            count = 0
            async for type_, obj in watch(
                self.cluster, res, namespace or None, notice=notice, synced=True
            ):
                if type_ == "SYNCED":
                    for uid in stream.uids - seen:
                        self._gone(plural, uid)
                    stream.uids = seen
                    seen = set()
                    if plural == "namespaces":
                        self._namespaces_listed.set()
                    self._set(stream, "watching")
                    continue
                if type_ == "LISTED":
                    uid = self._put(plural, res, obj)
                    if uid:
                        seen.add(uid)
                        stream.uids.add(uid)
                    count += 1
                    if count % LIST_SLICE == 0:
                        await asyncio.sleep(0)  # a big list must not stall the loop
                    continue
                if stream.state == "retrying":
                    self._set(stream, "watching")
                if type_ == "DELETED":
                    uid = str((obj.get("metadata") or {}).get("uid") or "")
                    stream.uids.discard(uid)
                    self._gone(plural, uid)
                else:
                    uid = self._put(plural, res, obj)
                    if uid:
                        stream.uids.add(uid)
        except ApiError as exc:
            if exc.code == 403:
                await self._forbidden(stream, str(exc))
            else:
                self._set(stream, "error", str(exc))
        except K8sError as exc:
            self._set(stream, "error", str(exc))

    async def _forbidden(self, stream: Stream, message: str) -> None:
        """A refused kind: watched per namespace instead when it was refused cluster-wide."""
        res = self._resources[stream.plural]
        if res.namespaced and not stream.namespace and self.namespaces is None:
            namespaces = await self._namespace_names()
            if namespaces:
                self._per_namespace.add(stream.plural)
                del self.streams[(stream.plural, "")]
                self._tasks.pop((stream.plural, ""), None)
                for ns in namespaces:
                    self._start(stream.plural, ns)
                self._streams_changed = True
                self._check_ready()
                self.on_change()
                return
        self._set(stream, "forbidden", message)

    async def _namespace_names(self) -> list[str]:
        """The namespaces to fall back on: the watched ones once listed, else one LIST."""
        if "namespaces" in self.kinds:
            await self._namespaces_listed.wait()
            return [n["name"] for n in self.nodes.values() if n["kind"] == "Namespace"]
        try:
            _, data = await self.cluster.request("GET", "/api/v1/namespaces")
        except K8sError:
            return []
        items = (data or {}).get("items") or []
        return [str((i.get("metadata") or {}).get("name")) for i in items]

    # -- objects ------------------------------------------------------------------------------
    def _put(self, plural: str, res: Resource, obj: Obj) -> str:
        if plural == "events":
            return self._event(obj)
        node = summarise(res.kind, res.api_version, obj)
        uid = str(node["uid"])
        if res.kind == "Namespace" and self.namespaces and node["name"] not in self.namespaces:
            return uid
        kept = self.warnings.get(uid)
        if kept:
            node["warnings"] = _newest(kept)
        old = self.nodes.get(uid)
        if old is not None and old.get("resourceVersion") == node.get("resourceVersion"):
            return uid  # a relist repeating what is known
        self.nodes[uid] = node
        self._by_name[(node["kind"], node.get("namespace"), node["name"])] = uid
        self._touch(uid, node)
        if res.kind in ("Pod", "Service"):
            index = self._pods if res.kind == "Pod" else self._services
            index.setdefault(node.get("namespace"), set()).add(uid)
            self._endpoints(node.get("namespace"))
        if res.kind == "Namespace" and old is None:
            for other in self._per_namespace:
                self._start(other, node["name"])
        return uid

    def _event(self, event: Obj) -> str:
        uid = str((event.get("metadata") or {}).get("uid") or "")
        if event.get("type") != "Warning":
            return uid
        involved = str((event.get("involvedObject") or {}).get("uid") or "")
        if not involved:
            return uid
        self._event_owner[uid] = involved
        kept = self.warnings.setdefault(involved, {})
        kept[uid] = _warning(event)
        if len(kept) > WARNINGS_KEPT * 4:  # an object with thousands of events stays small
            for old in sorted(kept, key=lambda k: str(kept[k].get("last") or ""))[
                : len(kept) - WARNINGS_KEPT
            ]:
                del kept[old]
                self._event_owner.pop(old, None)
        self._rewarn(involved)
        return uid

    def _rewarn(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        kept = self.warnings.get(uid)
        node = dict(node)
        if kept:
            node["warnings"] = _newest(kept)
        else:
            node.pop("warnings", None)
        self.nodes[uid] = node
        self._touch(uid, node)

    def _gone(self, plural: str, uid: str) -> None:
        if plural == "events":
            involved = self._event_owner.pop(uid, None)
            if involved is not None:
                self.warnings.get(involved, {}).pop(uid, None)
                self._rewarn(involved)
            return
        node = self.nodes.pop(uid, None)
        self.warnings.pop(uid, None)
        if node is not None:
            self._by_name.pop((node["kind"], node.get("namespace"), node["name"]), None)
            self._touch(uid, None)
            if node["kind"] in ("Pod", "Service"):
                index = self._pods if node["kind"] == "Pod" else self._services
                index.get(node.get("namespace"), set()).discard(uid)
                self._endpoints(node.get("namespace"))

    def _endpoints(self, namespace: str | None) -> None:
        """Services' ready endpoints: the ready pods their selector picks."""
        services = [self.nodes[u] for u in self._services.get(namespace, ()) if u in self.nodes]
        if not services:
            return
        pods = [self.nodes[u] for u in self._pods.get(namespace, ()) if u in self.nodes]
        for svc in services:
            picked = [p for p in pods if _selects(svc.get("selector") or {}, p.get("labels") or {})]
            ready = sum(1 for p in picked if p.get("health") == "ok")
            endpoints = f"{ready}/{len(picked)}"
            if svc.get("endpoints") != endpoints:
                svc = {**svc, "endpoints": endpoints}
                svc["health"] = "ok" if ready or not svc.get("selector") else "warn"
                self.nodes[svc["uid"]] = svc
                self._touch(svc["uid"], svc)

    def _touch(self, uid: str, node: Obj | None) -> None:
        self._changed[uid] = node
        self.on_change()

    # -- reading ------------------------------------------------------------------------------
    def snapshot(self) -> Obj:
        self._changed.clear()
        self._streams_changed = False
        return {"resources": list(self.nodes.values()), "streams": self.stream_states()}

    def stream_states(self) -> list[Obj]:
        return [s.to_lsp() for s in self.streams.values()]

    @property
    def pending(self) -> bool:
        return bool(self._changed) or self._streams_changed

    def take(self) -> Obj:
        """What changed since the last take, each object once (its latest state)."""
        changed, self._changed = self._changed, {}
        out: Obj = {
            "updated": [n for n in changed.values() if n is not None],
            "deleted": [uid for uid, n in changed.items() if n is None],
        }
        if self._streams_changed:
            self._streams_changed = False
            out["streams"] = self.stream_states()
        return out

    def find(self, kind: str, name: str, namespace: str | None) -> Obj | None:
        uid = self._by_name.get((kind, namespace, name))
        return self.nodes.get(uid) if uid is not None else None


def _newest(kept: dict[str, Obj]) -> list[Obj]:
    return sorted(kept.values(), key=lambda w: str(w.get("last") or ""), reverse=True)[
        :WARNINGS_KEPT
    ]
