"""A loopback Kubernetes API server for tests, speaking the REST protocol of the API reference.

Driven by the real ``kubernetes`` client through a generated kubeconfig. What it answers:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``
  (``APIVersions``, ``APIGroupList``, ``APIResourceList``; CRDs appear once applied);
- typed GET, LIST (``labelSelector``, ``fieldSelector``, ``<Kind>List`` with
  ``metadata.resourceVersion``, items without kind/apiVersion as the real server sends them;
  ``PartialObjectMetadataList``, metadata only, when the Accept header asks for it first) and
  WATCH (``?watch=true``: chunked JSON lines ``{"type", "object"}``, ``resourceVersion`` replay,
  ``timeoutSeconds``, ``ERROR`` 410 Expired for a version that is too old);
- server-side apply: ``PATCH`` with ``Content-Type: application/apply-patch+yaml``, required
  ``fieldManager``, ``force``, ``dryRun=All``; field ownership per manager (``managedFields`` in
  FieldsV1), 409 Conflict with ``details.causes[]`` of reason ``FieldManagerConflict`` naming the
  other manager and the field, a no-op apply leaves ``resourceVersion`` alone; 201 on create;
- 422 Invalid with ``details.causes[].field`` from a small validator (names, pod templates,
  selectors, ports, replicas), 404 for a missing namespace, 400 for a name or kind mismatch;
- ``DELETE`` with ``propagationPolicy`` (Orphan, Background, Foreground: 202 and a
  ``deletionTimestamp`` until dependents are gone) and ``dryRun``;
- pod logs: ``GET .../pods/<name>/log`` with ``container`` (400 when a pod has several and none
  is named), ``follow`` (chunked), ``tailLines``, ``sinceSeconds``, ``sinceTime``, ``timestamps``;
- exec (``GET|POST .../pods/<name>/exec?command=..&container=..&stdin&stdout&stderr&tty``) and
  port-forward (``GET|POST .../pods/<name>/portforward?ports=80&ports=8080``) over websockets
  (``streams.py``): the API server's checks as ``Status`` JSON before the upgrade, then either
  its v5 stream translator (exec offering ``v5.channel.k8s.io``: errors on channel 3 after the
  upgrade) or the kubelet (``v4.channel.k8s.io``, ``channel.k8s.io`` and the base64 variants;
  plain-text errors such as ``container not found ("app")`` before the upgrade, 403 when no
  offered subprotocol is spoken); channels 0-4 and v5's 255 "close" for exec, 2i/2i+1 with the
  port number as their first message for port-forward. The command runs as a local process
  (a real pseudo-terminal with ``tty=true``: echo, Ctrl-C, resize with SIGWINCH); its exit
  code ends as a ``Status`` (``NonZeroExitCode``/``ExitCode``), a program the image lacks as
  containerd's ``OCI runtime exec failed`` ``InternalError``. A running pod serves HTTP on its
  ``containerPort``\\s (``GET /`` names the pod, ``/bytes/<n>``, ``/echo``); other ports are
  refused with containerd's message on the error channel. Deleting a pod kills its exec'd
  processes and cuts its forwarded connections;
- events (core/v1 ``Event`` objects) through the same GET/LIST/WATCH;
- authentication by bearer token (401 ``Unauthorized``) and RBAC-like refusals (403 ``Forbidden``
  with the reference's message shape).

Small controllers stand in for kube-controller-manager: Deployments, StatefulSets, DaemonSets and
Jobs get pods and status; an image containing ``does-not-exist`` never becomes ready and emits
``Failed``/``BackOff`` Warning events, as the kubelet does. A deleted pod of a Deployment,
StatefulSet or DaemonSet (``delete_pod`` or an API ``DELETE``) is replaced by its controller
after ``rollout_delay`` (a new name, except a StatefulSet's), as a ReplicaSet does.

A Job's pod goes through the kubelet's states (``Pending``/``ContainerCreating``, ``Running``,
then ``Succeeded`` or ``Failed`` with the container's ``terminated.exitCode``), and the Job gets
``Complete`` or ``Failed`` (``BackoffLimitExceeded``) conditions. Where a real kubelet would pull
the image, this stand-in runs the container's ``command`` + ``args`` as a local process (the
image is ignored): its output becomes the container log, its exit code the container's. Log
follow streams end when the container terminates, and a log request for a container that has
not started is a 400 "is waiting to start", as from the real API server.

Test knobs: ``add`` (any object as it is), ``add_pod``, ``delete_pod``, ``replace_pod`` (delete an owned pod and await its
replacement), ``log``, ``add_event``, ``forbid`` (``forbid("create", "pods/exec")``), ``serve``
(ports a pod listens on for port-forward, besides its ``containerPort``\\s),
``missing_programs`` (``{(namespace, pod): {"bash"}}``: programs exec does not find in the pod's
image; or the pod or pod-template annotation ``ktl-fake/missing-programs: "bash"``),
``cut_streams`` (every watch and log stream ends, as at the API server's timeout),
``hang_streams`` (open log streams go silent without ending, the client's known hang),
``stop``/``start`` (the cluster goes away and comes back on the same port), ``requests`` (a
count of what was asked: by method, and metadata-only lists as ``PartialObjectMetadataList``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
import random
import re
import signal
import string
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

if TYPE_CHECKING:
    from tests.k8s_api.streams import Streams

TOKEN = "ktl-test-token"

Obj = dict[str, Any]
FieldPath = tuple[str, ...]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``, ``pods``: how the API names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


BUILTIN = [
    Kind("", "v1", "Namespace", "namespaces", False, ("ns",)),
    Kind("", "v1", "Pod", "pods", True, ("po",)),
    Kind("", "v1", "Service", "services", True, ("svc",)),
    Kind("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Kind("", "v1", "Secret", "secrets", True),
    Kind("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    Kind("", "v1", "Event", "events", True, ("ev",)),
    Kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",)),
    Kind("apps", "v1", "Deployment", "deployments", True, ("deploy",)),
    Kind("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",)),
    Kind("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",)),
    Kind("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",)),
    Kind("batch", "v1", "Job", "jobs", True),
    Kind("batch", "v1", "CronJob", "cronjobs", True, ("cj",)),
    Kind("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",)),
    Kind("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Kind(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
    ),
]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts_nano(ns: int) -> str:
    dt = datetime.fromtimestamp(ns / 1e9, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 1_000_000_000:09d}Z"


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class StatusError(Exception):
    """An answer of kind Status (the API's error body)."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def response(self) -> web.Response:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return web.json_response(body, status=self.code)


def not_found(kind: Kind, name: str) -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'{kind.qualified} "{name}" not found',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


@dataclass
class Cause:
    field: str
    reason: str
    message: str


def invalid(kind: Kind, name: str, causes: list[Cause]) -> StatusError:
    parts = [f"{c.field}: {c.message}" for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return StatusError(
        422,
        "Invalid",
        f'{kind.kind_qualified} "{name}" is invalid: {joined}',
        {
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [
                {"reason": c.reason, "message": c.message, "field": c.field} for c in causes
            ],
        },
    )


# -- labels and fields -----------------------------------------------------------------------
_SET_EXPR = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def split_selector(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def label_match(selector: str, labels: dict[str, str]) -> bool:
    for term in split_selector(selector):
        term = term.strip()
        m = _SET_EXPR.match(term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            inside = labels.get(m.group(1)) in values
            if inside != (m.group(2) == "in"):
                return False
        elif "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def dotted(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def field_match(selector: str, obj: Obj) -> bool:
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        neg = "!=" in term
        k, v = term.replace("!=", "=").replace("==", "=").split("=", 1)
        value = dotted(obj, k.strip())
        same = ("" if value is None else str(value)) == v.strip()
        if same == neg:
            return False
    return True


# -- field ownership (server-side apply) ----------------------------------------------------
def _key_of(item: Obj) -> str:
    return "k:" + json.dumps({"name": item["name"]}, separators=(",", ":"))


def _keyed(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, dict) and "name" in i for i in value)
    )


def leaves(obj: Obj, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Every field an apply configuration sets, as FieldsV1 paths (lists of named items keyed)."""
    out: dict[FieldPath, Any] = {}
    for key, value in obj.items():
        if not prefix and key in ("apiVersion", "kind", "status"):
            continue
        if prefix == ("f:metadata",) and key in ("name", "namespace", "managedFields"):
            continue
        path = (*prefix, f"f:{key}")
        if isinstance(value, dict) and value:
            out.update(leaves(value, path))
        elif _keyed(value):
            for item in value:
                out.update(leaves(item, (*path, _key_of(item))))
        else:
            out[path] = value
    return out


def value_at(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    cur = obj
    for step in path:
        if step.startswith("f:") and isinstance(cur, dict) and step[2:] in cur:
            cur = cur[step[2:]]
        elif step.startswith("k:") and isinstance(cur, list):
            name = json.loads(step[2:])["name"]
            found = [i for i in cur if isinstance(i, dict) and i.get("name") == name]
            if not found:
                return False, None
            cur = found[0]
        else:
            return False, None
    return True, cur


def remove_at(obj: Any, path: FieldPath) -> None:
    if not path:
        return
    found, parent = value_at(obj, path[:-1])
    last = path[-1]
    if not found:
        return
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        name = json.loads(last[2:])["name"]
        parent[:] = [i for i in parent if not (isinstance(i, dict) and i.get("name") == name)]


def merge(live: Any, config: Any) -> Any:
    if isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for k, v in config.items():
            out[k] = merge(live.get(k), v) if k in live else copy.deepcopy(v)
        return out
    if _keyed(live) and _keyed(config):
        by_name = {i["name"]: i for i in config}
        merged = [merge(i, by_name.pop(i["name"])) if i["name"] in by_name else i for i in live]
        return merged + [copy.deepcopy(i) for i in config if i["name"] in by_name]
    return copy.deepcopy(config)


def render_path(path: FieldPath) -> str:
    out = ""
    for step in path:
        if step.startswith("f:"):
            out += "." + step[2:]
        else:
            out += f'[name="{json.loads(step[2:])["name"]}"]'
    return out


def fields_v1(paths: set[FieldPath]) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        cur = tree
        for step in path:
            nxt = cur.setdefault(step, {})
            if step.startswith("k:"):
                nxt.setdefault(".", {})
            cur = nxt
    return tree


# -- the server ------------------------------------------------------------------------------
@dataclass
class _Watch:
    kind: Kind
    namespace: str | None
    labels: str | None
    fields: str | None
    queue: asyncio.Queue[tuple[str, Obj]] = field(default_factory=asyncio.Queue)


@dataclass
class _Record:
    obj: Obj
    owners: dict[str, set[FieldPath]] = field(default_factory=dict)
    owner_versions: dict[str, str] = field(default_factory=dict)


class FakeApi:
    """The loopback API server; ``async with FakeApi() as api:`` runs it on 127.0.0.1."""

    def __init__(self) -> None:
        self.kinds: list[Kind] = list(BUILTIN)
        self.objects: dict[tuple[str, str, str, str], _Record] = {}
        self.rv = 100
        self.history: deque[tuple[int, str, Kind, Obj]] = deque(maxlen=5000)
        self.watches: list[_Watch] = []
        self.logs: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        self._log_events: dict[tuple[str, str, str], asyncio.Event] = {}
        self._cut = asyncio.Event()
        self._hang = asyncio.Event()
        self.tokens: dict[str, str] = {TOKEN: "admin"}
        self.forbidden: set[tuple[str, str, str]] = set()  # (user, verb, plural)
        self.requests: Counter[str] = Counter()
        #: "METHOD path" of every request that may change something (not GET, not a dry run).
        self.writes: list[str] = []
        self.controllers = True
        self.rollout_delay = 0.05
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        from tests.k8s_api.streams import Streams  # it builds on this module

        self.streams: Streams = Streams(self)
        #: (namespace, pod) -> programs the pod's image lacks, for exec (see also the
        #: ``ktl-fake/missing-programs`` pod annotation).
        self.missing_programs = self.streams.missing_programs
        for ns in ("default", "kube-system"):
            self._store(self.kind_of("v1", "Namespace"), self._new_namespace(ns), "ktl-fake")

    # lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self.streams.close()
        for task in list(self._tasks):
            task.cancel()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=0.1, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self._cut = asyncio.Event()

    async def stop(self) -> None:
        """The cluster goes away: every connection is closed, nothing answers."""
        self._cut.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def hang_streams(self) -> None:
        """Every open log stream goes silent without ending (kubernetes-client/python #716);
        streams opened afterwards work."""
        self._hang.set()
        self._hang = asyncio.Event()

    def cut_streams(self) -> None:
        """Every open watch and log stream ends (what the API server's timeout does)."""
        self._cut.set()
        self._cut = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # knobs -----------------------------------------------------------------------------------
    def forbid(self, verb: str, plural: str, user: str = "*") -> None:
        self.forbidden.add((user, verb, plural))

    def kind_of(self, api_version: str, kind: str) -> Kind:
        for k in self.kinds:
            if k.group_version == api_version and k.kind == kind:
                return k
        raise KeyError(f"{api_version} {kind}")

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Obj | None:
        k = self.kind_of(api_version, kind)
        rec = self.objects.get((k.group, k.plural, namespace if k.namespaced else "", name))
        return copy.deepcopy(rec.obj) if rec else None

    def add_pod(
        self,
        name: str,
        namespace: str = "default",
        containers: tuple[str, ...] = ("app",),
        labels: dict[str, str] | None = None,
        ready: bool = True,
    ) -> Obj:
        pod = self._pod(name, namespace, [{"name": c, "image": "busybox"} for c in containers])
        pod["metadata"]["labels"] = dict(labels or {})
        if not ready:
            pod["status"] = {"phase": "Pending"}
        self._store(self.kind_of("v1", "Pod"), pod, "ktl-fake")
        return pod

    def add(self, obj: Obj) -> Obj:
        """Stores an object as it is (a ConfigMap, a Secret, ...), as if applied."""
        obj = copy.deepcopy(obj)
        self._store(self.kind_of(obj["apiVersion"], obj["kind"]), obj, "ktl-fake")
        return obj

    def delete_pod(self, name: str, namespace: str = "default") -> None:
        kind = self.kind_of("v1", "Pod")
        rec = self.objects.get(("", "pods", namespace, name))
        if rec is not None:
            self._remove(kind, rec)
            self._pod_deleted(rec.obj)

    async def replace_pod(self, name: str, namespace: str = "default", timeout: float = 5) -> Obj:
        """Deletes a controller-owned pod and waits for the replacement its controller makes
        (a new name, except for a StatefulSet's); returns the new pod."""
        rec = self.objects[("", "pods", namespace, name)]
        owner = next(
            r for r in rec.obj["metadata"].get("ownerReferences") or [] if r.get("controller")
        )

        def owned() -> dict[str, _Record]:
            return {
                r.obj["metadata"]["uid"]: r
                for (_, plural, ns, _), r in self.objects.items()
                if plural == "pods"
                and ns == namespace
                and any(
                    o.get("uid") == owner["uid"]
                    for o in r.obj["metadata"].get("ownerReferences") or []
                )
            }

        before = set(owned())
        self.delete_pod(name, namespace)
        deadline = time.monotonic() + timeout
        while True:
            new = [r for uid, r in owned().items() if uid not in before]
            if new:
                return copy.deepcopy(new[0].obj)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no replacement for pod {name}")
            await asyncio.sleep(0.01)

    def serve(self, pod: str, *ports: int, namespace: str = "default") -> None:
        """The pod listens (HTTP, for port-forward) on ``ports`` as well as on its
        containers' ``containerPort``\\s."""
        self.streams.serve(pod, *ports, namespace=namespace)

    def restart_pod(self, name: str, namespace: str = "default") -> None:
        """A container restarts: restartCount goes up (a MODIFIED event), logs go on."""
        rec = self.objects[("", "pods", namespace, name)]
        obj = copy.deepcopy(rec.obj)
        for cs in obj.get("status", {}).get("containerStatuses", []):
            cs["restartCount"] = int(cs.get("restartCount", 0)) + 1
        self._replace(self.kind_of("v1", "Pod"), rec, obj)

    def log(self, pod: str, container: str, *lines: str, namespace: str = "default") -> None:
        key = (namespace, pod, container)
        store = self.logs.setdefault(key, [])
        now = time.time_ns()
        store.extend((now, line) for line in lines)
        ev = self._log_events.pop(key, None)
        if ev is not None:
            ev.set()

    def add_event(
        self,
        involved: Obj,
        reason: str,
        message: str,
        type_: str = "Warning",
        count: int = 1,
    ) -> Obj:
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        stamp = now_rfc3339()
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", "v1"),
                "kind": involved.get("kind", ""),
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta.get("uid", ""),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "count": count,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": None,
            "source": {"component": "kubelet"},
            "reportingComponent": "kubelet",
            "reportingInstance": "",
        }
        self._store(self.kind_of("v1", "Event"), event, "ktl-fake")
        return event

    # storage ---------------------------------------------------------------------------------
    def _key(self, kind: Kind, obj: Obj) -> tuple[str, str, str, str]:
        meta = obj["metadata"]
        return (
            kind.group,
            kind.plural,
            meta.get("namespace", "") if kind.namespaced else "",
            meta["name"],
        )

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _store(self, kind: Kind, obj: Obj, manager: str) -> _Record:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        meta["resourceVersion"] = self._next_rv()
        obj.setdefault("apiVersion", kind.group_version)
        obj.setdefault("kind", kind.kind)
        rec = _Record(obj)
        self.objects[self._key(kind, obj)] = rec
        self._notify("ADDED", kind, obj)
        return rec

    def _replace(self, kind: Kind, rec: _Record, obj: Obj) -> None:
        obj["metadata"]["resourceVersion"] = self._next_rv()
        rec.obj = obj
        self._notify("MODIFIED", kind, obj)

    def _remove(self, kind: Kind, rec: _Record) -> None:
        self.objects.pop(self._key(kind, rec.obj), None)
        obj = copy.deepcopy(rec.obj)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._notify("DELETED", kind, obj)
        if kind.kind == "Pod":
            ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            for key in [k for k in self._log_events if k[:2] == (ns, name)]:
                self._log_events.pop(key).set()
            self.streams.pod_removed(obj)
        for ref_kind, dep in self._dependents(obj["metadata"]["uid"]):
            self._remove(ref_kind, dep)

    def _pod_deleted(self, pod: Obj) -> None:
        """A pod was deleted (not by its controller): a ReplicaSet, StatefulSet or DaemonSet
        controller makes a replacement. (A Job's pod is not replaced here.)"""
        if not self.controllers:
            return
        meta = pod["metadata"]
        for ref in meta.get("ownerReferences") or []:
            if not ref.get("controller") or ref.get("kind") not in WORKLOADS - {"Job"}:
                continue
            with contextlib.suppress(KeyError):
                kind = self.kind_of(ref.get("apiVersion", ""), ref["kind"])
                owner = self.objects.get(
                    (kind.group, kind.plural, meta.get("namespace", ""), ref["name"])
                )
                alive = owner is not None and owner.obj["metadata"].get("uid") == ref.get("uid")
                if alive and not owner.obj["metadata"].get("deletionTimestamp"):
                    self._spawn(self._reconcile(kind, meta.get("namespace", ""), ref["name"]))

    def _dependents(self, uid: str) -> list[tuple[Kind, _Record]]:
        out = []
        for (group, plural, _, _), rec in list(self.objects.items()):
            refs = rec.obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                kind = next(k for k in self.kinds if k.group == group and k.plural == plural)
                out.append((kind, rec))
        return out

    def _notify(self, type_: str, kind: Kind, obj: Obj) -> None:
        snapshot = copy.deepcopy(obj)
        self.history.append((int(obj["metadata"]["resourceVersion"]), type_, kind, snapshot))
        for w in self.watches:
            if self._watch_matches(w, kind, snapshot):
                w.queue.put_nowait((type_, snapshot))

    @staticmethod
    def _watch_matches(w: _Watch, kind: Kind, obj: Obj) -> bool:
        if (w.kind.group, w.kind.plural) != (kind.group, kind.plural):
            return False
        meta = obj["metadata"]
        if w.namespace and meta.get("namespace") != w.namespace:
            return False
        if w.labels and not label_match(w.labels, meta.get("labels") or {}):
            return False
        return not (w.fields and not field_match(w.fields, obj))

    def _new_namespace(self, name: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    # HTTP ------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.method] += 1
        if request.method not in ("GET", "HEAD") and request.query.get("dryRun") != "All":
            self.writes.append(f"{request.method} {request.path}")
        try:
            user = self._authenticate(request)
            parts = [p for p in request.path.split("/") if p]
            if parts == ["version"]:
                return web.json_response(
                    {
                        "major": "1",
                        "minor": "31",
                        "gitVersion": "v1.31.0-ktl-fake",
                        "platform": "linux/amd64",
                    }
                )
            if parts[:1] == ["api"]:
                if len(parts) == 1:
                    return web.json_response(
                        {
                            "kind": "APIVersions",
                            "versions": ["v1"],
                            "serverAddressByClientCIDRs": [
                                {
                                    "clientCIDR": "0.0.0.0/0",
                                    "serverAddress": f"127.0.0.1:{self.port}",
                                }
                            ],
                        }
                    )
                group, version, rest = "", parts[1], parts[2:]
            elif parts[:1] == ["apis"]:
                if len(parts) == 1:
                    return web.json_response(self._group_list())
                if len(parts) == 2:
                    return web.json_response(self._group(parts[1]))
                group, version, rest = parts[1], parts[2], parts[3:]
            else:
                raise StatusError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            if not rest:
                return web.json_response(self._resource_list(group, version))
            return await self._resource(request, user, group, version, rest)
        except StatusError as exc:
            return exc.response()

    def _authenticate(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        user = (
            self.tokens.get(auth.removeprefix("Bearer ").strip())
            if auth.startswith("Bearer ")
            else None
        )
        if user is None:
            raise StatusError(401, "Unauthorized", "Unauthorized")
        return user

    def _versions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k in self.kinds:
            if k.group and k.version not in out.setdefault(k.group, []):
                out[k.group].append(k.version)
        return out

    def _group(self, name: str) -> Obj:
        versions = self._versions().get(name)
        if not versions:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": name,
            "versions": vs,
            "preferredVersion": vs[0],
        }

    def _group_list(self) -> Obj:
        groups = [self._group(name) for name in self._versions()]
        for g in groups:
            del g["kind"], g["apiVersion"]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, group: str, version: str) -> Obj:
        kinds = [k for k in self.kinds if k.group == group and k.version == version]
        if not kinds:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        resources: list[Obj] = []
        for k in kinds:
            resources.append(
                {
                    "name": k.plural,
                    "singularName": k.kind.lower(),
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": [
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                    "shortNames": list(k.short),
                    "storageVersionHash": hashlib.sha256(k.plural.encode()).hexdigest()[:12],
                }
            )
            resources.append(
                {
                    "name": f"{k.plural}/status",
                    "singularName": "",
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
            if k.kind == "Pod":
                resources.append(
                    {
                        "name": "pods/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Pod",
                        "verbs": ["get"],
                    }
                )
                for sub, options in (
                    ("exec", "PodExecOptions"),
                    ("portforward", "PodPortForwardOptions"),
                ):
                    resources.append(
                        {
                            "name": f"pods/{sub}",
                            "singularName": "",
                            "namespaced": True,
                            "kind": options,
                            "verbs": ["create", "get"],
                        }
                    )
        gv = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }

    async def _resource(
        self, request: web.Request, user: str, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        plural, name = rest[0], rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        kind = next(
            (k for k in self.kinds if (k.group, k.version, k.plural) == (group, version, plural)),
            None,
        )
        if kind is None or (namespace and not kind.namespaced):
            raise StatusError(
                404,
                "NotFound",
                "the server could not find the requested resource",
                {
                    "causes": [
                        {"reason": "UnexpectedServerResponse", "message": "404 page not found"}
                    ]
                },
            )
        if sub in ("exec", "portforward") and kind.kind == "Pod" and name:
            if request.method not in ("GET", "POST"):
                raise StatusError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                )
            # RBAC asks for "create" on pods/exec and pods/portforward, websocket GETs included.
            self._authorize(user, "create", kind, namespace, name, sub)
            return await self.streams.handle(request, sub, namespace, name)
        q = request.query
        method = request.method
        verb = {
            "GET": "watch" if q.get("watch") in ("true", "1") else ("get" if name else "list"),
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(method)
        if verb is None:
            raise StatusError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if sub == "log":
            verb = "get"
        self._authorize(user, verb, kind, namespace, name, sub)
        if sub == "log" and kind.kind == "Pod" and method == "GET":
            return await self._pod_log(request, namespace, name)
        if sub:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            if verb == "watch":
                return await self._watch(request, kind, namespace)
            if name:
                rec = self.objects.get((kind.group, kind.plural, namespace, name))
                if rec is None:
                    raise not_found(kind, name)
                return web.json_response(rec.obj)
            listed = self._list(kind, namespace, q.get("labelSelector"), q.get("fieldSelector"))
            accept = request.headers.get("Accept", "")
            if "as=PartialObjectMetadataList" in accept.split(",")[0].replace(" ", ""):
                self.requests["PartialObjectMetadataList"] += 1
                return web.json_response(_metadata_only(listed))
            return web.json_response(listed)
        if method == "PATCH":
            return await self._apply(request, kind, namespace, name)
        return await self._delete(request, kind, namespace, name)

    def _authorize(
        self, user: str, verb: str, kind: Kind, namespace: str, name: str, sub: str
    ) -> None:
        resource = f"{kind.plural}/{sub}" if sub else kind.plural
        # pods/exec and pods/portforward are resources of their own (forbid("create",
        # "pods/exec")); other subresources go with their resource.
        target = resource if sub in ("exec", "portforward") else kind.plural
        if not (
            {
                (user, verb, target),
                ("*", verb, target),
                (user, "*", target),
                ("*", "*", target),
            }
            & self.forbidden
        ):
            return
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        subject = f'{kind.qualified} "{name}"' if name else kind.qualified
        raise StatusError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{kind.group}"{where}',
            {"name": name, "group": kind.group, "kind": kind.plural}
            if name
            else {"group": kind.group, "kind": kind.plural},
        )

    def _list(self, kind: Kind, namespace: str, labels: str | None, fields: str | None) -> Obj:
        items = []
        for (group, plural, ns, _), rec in sorted(self.objects.items()):
            if (group, plural) != (kind.group, kind.plural) or (namespace and ns != namespace):
                continue
            if labels and not label_match(labels, rec.obj["metadata"].get("labels") or {}):
                continue
            if fields and not field_match(fields, rec.obj):
                continue
            item = copy.deepcopy(rec.obj)
            item.pop("apiVersion", None)
            item.pop("kind", None)
            items.append(item)
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.group_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    async def _stream(self, request: web.Request, content_type: str) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        return resp

    async def _watch(self, request: web.Request, kind: Kind, namespace: str) -> web.StreamResponse:
        q = request.query
        w = _Watch(kind, namespace or None, q.get("labelSelector"), q.get("fieldSelector"))
        since = q.get("resourceVersion", "")
        timeout = float(q.get("timeoutSeconds", "1800"))
        oldest = self.history[0][0] if self.history else self.rv
        backlog: list[tuple[str, Obj]] = []
        expired = False
        if since and since != "0":
            if int(since) < oldest - 1:
                expired = True
            else:
                backlog = [
                    (t, o)
                    for rv, t, k, o in self.history
                    if rv > int(since) and self._watch_matches(w, k, o)
                ]
        else:
            listed = self._list(kind, namespace, w.labels, w.fields)["items"]
            for item in listed:
                item = {"apiVersion": kind.group_version, "kind": kind.kind, **item}
                backlog.append(("ADDED", item))
        self.watches.append(w)
        resp = await self._stream(request, "application/json")
        cut = self._cut
        try:
            if expired:
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"too old resource version: {since} ({oldest})",
                    "reason": "Expired",
                    "code": 410,
                }
                await resp.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
                return resp
            for t, o in backlog:
                await resp.write(json.dumps({"type": t, "object": o}).encode() + b"\n")
            deadline = time.monotonic() + timeout
            while not cut.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                getter = asyncio.ensure_future(w.queue.get())
                cutter = asyncio.ensure_future(cut.wait())
                try:
                    done, _ = await asyncio.wait(
                        {getter, cutter}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    cutter.cancel()
                    if not getter.done():
                        getter.cancel()
                if getter in done:
                    t, o = getter.result()
                    await resp.write(json.dumps({"type": t, "object": o}).encode() + b"\n")
            with contextlib.suppress(ConnectionError):
                await resp.write_eof()
        except ConnectionError:
            pass
        finally:
            self.watches.remove(w)
        return resp

    # server-side apply -------------------------------------------------------------------------
    async def _apply(
        self, request: web.Request, kind: Kind, namespace: str, name: str
    ) -> web.Response:
        q = request.query
        if request.content_type != "application/apply-patch+yaml":
            raise StatusError(
                415,
                "UnsupportedMediaType",
                f'the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml (got "{request.content_type}")',
            )
        manager = q.get("fieldManager", "")
        if not manager:
            raise StatusError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                {
                    "group": "meta.k8s.io",
                    "kind": "PatchOptions",
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager",
                        }
                    ],
                },
            )
        dry_run = q.get("dryRun") == "All"
        force = q.get("force") == "true"
        try:
            config = yaml.safe_load(await request.text())
        except yaml.YAMLError as exc:
            raise StatusError(400, "BadRequest", f"error decoding YAML: {exc}") from exc
        if not isinstance(config, dict):
            raise StatusError(400, "BadRequest", "error decoding YAML: not an object")
        if config.get("apiVersion") != kind.group_version or config.get("kind") != kind.kind:
            raise StatusError(
                400,
                "BadRequest",
                f"the API version in the data ({config.get('apiVersion')}) does not match the expected API version ({kind.group_version})"
                if config.get("apiVersion") != kind.group_version
                else f"the kind in the data ({config.get('kind')}) does not match the expected kind ({kind.kind})",
            )
        meta = config.setdefault("metadata", {})
        if meta.get("name") != name:
            raise StatusError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})",
            )
        if kind.namespaced:
            if meta.get("namespace", namespace) != namespace:
                raise StatusError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
        key = (kind.group, kind.plural, namespace, name)
        rec = self.objects.get(key)
        if (
            rec is None
            and kind.namespaced
            and ("", "namespaces", "", namespace) not in self.objects
        ):
            raise StatusError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        applied = leaves(config)
        live = (
            copy.deepcopy(rec.obj)
            if rec
            else {"apiVersion": kind.group_version, "kind": kind.kind, "metadata": {"name": name}}
        )
        owners = {m: set(p) for m, p in (rec.owners.items() if rec else [])}
        versions = dict(rec.owner_versions) if rec else {}
        conflicts: list[tuple[str, FieldPath]] = []
        for path, value in applied.items():
            found, current = value_at(live, path)
            for other, paths in owners.items():
                if other != manager and path in paths and found and current != value:
                    conflicts.append((other, path))
        if conflicts and not force:
            raise self._conflict(conflicts, versions)
        for other, path in conflicts:
            owners[other].discard(path)
        previous = owners.get(manager, set())
        shared = set().union(*(p for m, p in owners.items() if m != manager)) if owners else set()
        for path in sorted(previous - set(applied) - shared, key=len, reverse=True):
            remove_at(live, path)
        merged = merge(live, config)
        merged["metadata"].pop("managedFields", None)
        self._default(kind, merged)
        causes = self._validate(kind, merged, rec.obj if rec else None)
        if causes:
            raise invalid(kind, name, causes)
        owners[manager] = set(applied)
        versions[manager] = kind.group_version
        owners = {m: p for m, p in owners.items() if p}
        merged["metadata"]["managedFields"] = [
            {
                "manager": m,
                "operation": "Apply",
                "apiVersion": versions.get(m, kind.group_version),
                "time": now_rfc3339(),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(p),
            }
            for m, p in sorted(owners.items())
        ]
        if rec is not None:
            before = copy.deepcopy(rec.obj)
            same = (
                _strip_volatile(before) == _strip_volatile(copy.deepcopy(merged))
                and rec.owners == owners
            )
            if same:
                return web.json_response(rec.obj, status=200)
            if _spec_of(before) != _spec_of(merged):
                merged["metadata"]["generation"] = int(before["metadata"].get("generation", 1)) + 1
            if dry_run:
                return web.json_response(merged, status=200)
            rec.owners, rec.owner_versions = owners, versions
            self._replace(kind, rec, merged)
            self._after_write(kind, merged)
            return web.json_response(merged, status=200)
        merged["metadata"]["generation"] = 1
        merged["metadata"].setdefault("uid", str(uuid.uuid4()))
        merged["metadata"]["creationTimestamp"] = now_rfc3339()
        if dry_run:
            return web.json_response(merged, status=201)
        new = self._store(kind, merged, manager)
        new.owners, new.owner_versions = owners, versions
        self._after_write(kind, merged)
        return web.json_response(merged, status=201)

    def _conflict(
        self, conflicts: list[tuple[str, FieldPath]], versions: dict[str, str]
    ) -> StatusError:
        causes = [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{m}" using {versions.get(m, "v1")}',
                "field": render_path(p),
            }
            for m, p in conflicts
        ]
        if len(conflicts) == 1:
            m, p = conflicts[0]
            message = f'Apply failed with 1 conflict: conflict with "{m}" using {versions.get(m, "v1")}: {render_path(p)}'
        else:
            lines = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
            message = f"Apply failed with {len(conflicts)} conflicts: {lines}"
        return StatusError(409, "Conflict", message, {"causes": causes})

    def _default(self, kind: Kind, obj: Obj) -> None:
        spec = obj.get("spec")
        if kind.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {"phase": "Active"})
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj[
                "metadata"
            ]["name"]
        if not isinstance(spec, dict):
            return
        if kind.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
        if kind.kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
        if kind.kind == "Service":
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if "clusterIP" not in spec:
                ip = f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}"
                spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
            for port in spec.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
                    port.setdefault("targetPort", port.get("port"))
        pod_spec = spec if kind.kind == "Pod" else dotted(spec, "template.spec")
        if isinstance(pod_spec, dict):
            pod_spec.setdefault("restartPolicy", "Always" if kind.kind != "Job" else "Never")
            pod_spec.setdefault("dnsPolicy", "ClusterFirst")
            pod_spec.setdefault("schedulerName", "default-scheduler")
            for c in pod_spec.get("containers") or []:
                if isinstance(c, dict) and isinstance(c.get("image"), str):
                    c.setdefault(
                        "imagePullPolicy",
                        "Always"
                        if c["image"].endswith(":latest") or ":" not in c["image"]
                        else "IfNotPresent",
                    )
                    c.setdefault("terminationMessagePath", "/dev/termination-log")
                    c.setdefault("terminationMessagePolicy", "File")

    def _validate(self, kind: Kind, obj: Obj, old: Obj | None) -> list[Cause]:
        causes: list[Cause] = []
        name = obj["metadata"]["name"]
        if not isinstance(name, str) or len(name) > 253 or not DNS1123.match(name):
            causes.append(
                Cause(
                    "metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {DNS1123_MSG}'
                )
            )
        spec = obj.get("spec")
        if (kind.kind in WORKLOADS or kind.kind == "Pod") and not isinstance(spec, dict):
            return [*causes, Cause("spec", "FieldValueRequired", "Required value")]
        if kind.kind == "Pod":
            causes += self._validate_pod_spec(spec, "spec")
        elif kind.kind in WORKLOADS:
            assert isinstance(spec, dict)
            replicas = spec.get("replicas")
            if isinstance(replicas, int) and replicas < 0:
                causes.append(
                    Cause(
                        "spec.replicas",
                        "FieldValueInvalid",
                        f"Invalid value: {replicas}: must be greater than or equal to 0",
                    )
                )
            selector = spec.get("selector")
            labels = dotted(spec, "template.metadata.labels") or {}
            if kind.kind != "Job":
                if not isinstance(selector, dict) or not selector:
                    causes.append(Cause("spec.selector", "FieldValueRequired", "Required value"))
                else:
                    match = selector.get("matchLabels") or {}
                    if not all(labels.get(k) == v for k, v in match.items()):
                        shown = (
                            "map[string]string{"
                            + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
                            + "}"
                        )
                        causes.append(
                            Cause(
                                "spec.template.metadata.labels",
                                "FieldValueInvalid",
                                f"Invalid value: {shown}: `selector` does not match template `labels`",
                            )
                        )
                    if old is not None and old.get("spec", {}).get("selector") != selector:
                        causes.append(
                            Cause(
                                "spec.selector",
                                "FieldValueInvalid",
                                f"Invalid value: {json.dumps(selector)}: field is immutable",
                            )
                        )
            causes += self._validate_pod_spec(dotted(spec, "template.spec"), "spec.template.spec")
        elif kind.kind == "Service" and isinstance(spec, dict):
            for i, port in enumerate(spec.get("ports") or []):
                value = port.get("port") if isinstance(port, dict) else None
                if not isinstance(value, int) or not 1 <= value <= 65535:
                    causes.append(
                        Cause(
                            f"spec.ports[{i}].port",
                            "FieldValueInvalid",
                            f"Invalid value: {value}: must be between 1 and 65535, inclusive",
                        )
                    )
        return causes

    @staticmethod
    def _validate_pod_spec(spec: Any, where: str) -> list[Cause]:
        if not isinstance(spec, dict):
            return [Cause(where, "FieldValueRequired", "Required value")]
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            return [Cause(f"{where}.containers", "FieldValueRequired", "Required value")]
        causes = []
        for i, c in enumerate(containers):
            at = f"{where}.containers[{i}]"
            if not isinstance(c, dict):
                causes.append(Cause(at, "FieldValueInvalid", "Invalid value: must be an object"))
                continue
            if not c.get("name"):
                causes.append(Cause(f"{at}.name", "FieldValueRequired", "Required value"))
            if not c.get("image"):
                causes.append(Cause(f"{at}.image", "FieldValueRequired", "Required value"))
            for j, p in enumerate(c.get("ports") or []):
                value = p.get("containerPort") if isinstance(p, dict) else None
                if not isinstance(value, int) or not 1 <= value <= 65535:
                    causes.append(
                        Cause(
                            f"{at}.ports[{j}].containerPort",
                            "FieldValueInvalid",
                            f"Invalid value: {value}: must be between 1 and 65535, inclusive",
                        )
                    )
        return causes

    def _after_write(self, kind: Kind, obj: Obj) -> None:
        if kind.kind == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            for v in spec.get("versions") or []:
                if v.get("served", True):
                    new = Kind(
                        spec.get("group", ""),
                        v["name"],
                        names.get("kind", ""),
                        names.get("plural", ""),
                        spec.get("scope") == "Namespaced",
                        tuple(names.get("shortNames") or ()),
                    )
                    if new not in self.kinds:
                        self.kinds.append(new)
        if self.controllers and kind.kind in WORKLOADS:
            self._spawn(
                self._reconcile(kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            )

    # DELETE ------------------------------------------------------------------------------------
    async def _delete(
        self, request: web.Request, kind: Kind, namespace: str, name: str
    ) -> web.Response:
        q = request.query
        body: Obj = {}
        if request.can_read_body:
            with contextlib.suppress(ValueError):
                body = json.loads(await request.text() or "{}") or {}
        policy = q.get("propagationPolicy") or body.get("propagationPolicy") or "Background"
        dry_run = q.get("dryRun") == "All" or "All" in (body.get("dryRun") or [])
        if policy not in ("Orphan", "Background", "Foreground"):
            raise StatusError(
                422,
                "Invalid",
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan", "nil"',
            )
        rec = self.objects.get((kind.group, kind.plural, namespace, name))
        if rec is None:
            raise not_found(kind, name)
        obj = copy.deepcopy(rec.obj)
        if dry_run:
            return web.json_response(obj, status=200)
        if policy == "Orphan":
            for _, dep in self._dependents(obj["metadata"]["uid"]):
                dep.obj["metadata"]["ownerReferences"] = []
            self._remove(kind, rec)
            if kind.kind == "Pod":
                self._pod_deleted(obj)
            return web.json_response(obj, status=200)
        if policy == "Foreground" and self._dependents(obj["metadata"]["uid"]):
            obj["metadata"]["deletionTimestamp"] = now_rfc3339()
            obj["metadata"]["finalizers"] = ["foregroundDeletion"]
            self._replace(kind, rec, obj)

            async def finish() -> None:
                await asyncio.sleep(0.05)
                if self.objects.get(self._key(kind, rec.obj)) is rec:
                    self._remove(kind, rec)

            self._spawn(finish())
            return web.json_response(obj, status=202)
        self._remove(kind, rec)
        if kind.kind == "Pod":
            self._pod_deleted(obj)
        return web.json_response(obj, status=200)

    # logs --------------------------------------------------------------------------------------
    async def _pod_log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        kind = self.kind_of("v1", "Pod")
        rec = self.objects.get(("", "pods", namespace, name))
        if rec is None:
            raise not_found(kind, name)
        names = [c["name"] for c in rec.obj["spec"]["containers"]]
        q = request.query
        container = q.get("container", "")
        if not container:
            if len(names) > 1:
                raise StatusError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]",
                )
            container = names[0]
        if container not in names:
            raise StatusError(
                400, "BadRequest", f"container {container} is not valid for pod {name}"
            )
        state = next(
            (
                cs.get("state") or {}
                for cs in rec.obj.get("status", {}).get("containerStatuses", [])
                if cs.get("name") == container
            ),
            {},
        )
        if "waiting" in state and state["waiting"].get("reason") == "ContainerCreating":
            raise StatusError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating',
            )
        key = (namespace, name, container)
        lines = self.logs.setdefault(key, [])
        since_ns = 0
        if q.get("sinceSeconds"):
            since_ns = time.time_ns() - int(q["sinceSeconds"]) * 1_000_000_000
        elif q.get("sinceTime"):
            since_ns = int(parse_time(q["sinceTime"]) * 1e9)
        start = 0
        while start < len(lines) and lines[start][0] < since_ns:
            start += 1
        if q.get("tailLines"):
            start = max(start, len(lines) - int(q["tailLines"]))
        stamps = q.get("timestamps") == "true"

        def render(chunk: list[tuple[int, str]]) -> bytes:
            if stamps:
                return "".join(f"{ts_nano(t)} {s}\n" for t, s in chunk).encode()
            return "".join(f"{s}\n" for _, s in chunk).encode()

        if q.get("follow") != "true":
            return web.Response(body=render(lines[start:]), content_type="text/plain")
        resp = await self._stream(request, "text/plain")
        cut, hang = self._cut, self._hang
        pos = start
        try:
            while True:
                if hang.is_set():
                    await cut.wait()  # a hung stream: open, silent, until the connection goes
                    break
                if pos < len(lines):
                    chunk = lines[pos:]
                    pos += len(chunk)
                    await resp.write(render(chunk))
                    continue
                if cut.is_set() or ("", "pods", namespace, name) not in self.objects:
                    break
                if self._terminated(namespace, name, container):
                    break  # the container has exited: the real API server ends the follow
                ev = self._log_events.setdefault(key, asyncio.Event())
                cutter = asyncio.ensure_future(cut.wait())
                waiter = asyncio.ensure_future(ev.wait())
                hanger = asyncio.ensure_future(hang.wait())
                try:
                    await asyncio.wait(
                        {cutter, waiter, hanger}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    cutter.cancel()
                    waiter.cancel()
                    hanger.cancel()
            with contextlib.suppress(ConnectionError):
                await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    # controllers -------------------------------------------------------------------------------
    def _pod(self, name: str, namespace: str, containers: list[Obj], broken: bool = False) -> Obj:
        statuses = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "ready": not broken,
                "restartCount": 0,
                "started": not broken,
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{c.get("image")}"',
                    }
                }
                if broken
                else {"running": {"startedAt": now_rfc3339()}},
            }
            for c in containers
        ]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
            "spec": {
                "containers": copy.deepcopy(containers),
                "restartPolicy": "Always",
                "nodeName": "fake-node",
            },
            "status": {
                "phase": "Pending" if broken else "Running",
                "conditions": [{"type": "Ready", "status": "False" if broken else "True"}],
                "containerStatuses": statuses,
                "startTime": now_rfc3339(),
            },
        }

    def _terminated(self, namespace: str, pod: str, container: str) -> bool:
        rec = self.objects.get(("", "pods", namespace, pod))
        if rec is None:
            return True
        for cs in rec.obj.get("status", {}).get("containerStatuses", []):
            if cs.get("name") == container:
                return "terminated" in (cs.get("state") or {})
        return False

    def _set_pod(self, namespace: str, pod: str, phase: str, state: Obj) -> Obj | None:
        rec = self.objects.get(("", "pods", namespace, pod))
        if rec is None:
            return None
        obj = copy.deepcopy(rec.obj)
        obj["status"]["phase"] = phase
        for cs in obj["status"].get("containerStatuses", []):
            cs["state"] = copy.deepcopy(state)
            cs["ready"] = cs["started"] = "running" in state
        self._replace(self.kind_of("v1", "Pod"), rec, obj)
        return obj

    async def _kubelet(self, job: Kind, namespace: str, job_name: str, pod: str) -> None:
        """Runs a Job pod's first container as a local process (see the module docstring)."""
        await asyncio.sleep(self.rollout_delay)
        rec = self.objects.get(("", "pods", namespace, pod))
        if rec is None:
            return
        container = rec.obj["spec"]["containers"][0]
        argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": pod}
        env.update({e["name"]: str(e.get("value", "")) for e in container.get("env") or []})
        self._set_pod(namespace, pod, "Running", {"running": {"startedAt": now_rfc3339()}})
        code = 0
        if argv:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                # What containerd reports for a command missing from the image.
                self.log(
                    pod, container["name"], f"exec {argv[0]}: {exc.strerror}", namespace=namespace
                )
                code = 127
            else:
                assert proc.stdout is not None

                async def reap() -> None:
                    # Deleting the pod stops its container, output or not.
                    while ("", "pods", namespace, pod) in self.objects:
                        await asyncio.sleep(0.05)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)

                reaper = asyncio.ensure_future(reap())
                try:
                    async for raw in proc.stdout:
                        self.log(
                            pod,
                            container["name"],
                            raw.decode("utf-8", "replace").rstrip("\n"),
                            namespace=namespace,
                        )
                        if ("", "pods", namespace, pod) not in self.objects:
                            break  # deleted: the kubelet kills the container
                finally:
                    reaper.cancel()
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(proc.pid, signal.SIGKILL)
                    code = await proc.wait()
                    if code < 0:
                        code = 128 - code
        reason = "Completed" if code == 0 else "Error"
        self._set_pod(
            namespace,
            pod,
            "Succeeded" if code == 0 else "Failed",
            {"terminated": {"exitCode": code, "reason": reason, "finishedAt": now_rfc3339()}},
        )
        ev = self._log_events.pop((namespace, pod, container["name"]), None)
        if ev is not None:
            ev.set()
        job_rec = self.objects.get((job.group, job.plural, namespace, job_name))
        if job_rec is None:
            return
        new = copy.deepcopy(job_rec.obj)
        if code == 0:
            new["status"] = {"succeeded": 1, "active": 0}
            new["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
        else:
            new["status"] = {"failed": 1, "active": 0}
            new["status"]["conditions"] = [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ]
        self._replace(job, job_rec, new)

    async def _reconcile(self, kind: Kind, namespace: str, name: str) -> None:
        await asyncio.sleep(self.rollout_delay)
        rec = self.objects.get((kind.group, kind.plural, namespace, name))
        if rec is None:
            return
        obj = rec.obj
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        containers = dotted(template, "spec.containers") or []
        labels = dict(dotted(template, "metadata.labels") or {})
        broken = any("does-not-exist" in str(c.get("image", "")) for c in containers)
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        want = 1 if kind.kind in ("DaemonSet", "Job") else int(spec.get("replicas", 1))
        uid = obj["metadata"]["uid"]
        pod_kind = self.kind_of("v1", "Pod")
        mine = [r for k, r in self._dependents(uid) if k.kind == "Pod"]
        for r in mine:
            if r.obj["metadata"].get("labels", {}).get("pod-template-hash") != digest:
                self._remove(pod_kind, r)
        mine = [r for k, r in self._dependents(uid) if k.kind == "Pod"]
        for r in mine[want:]:
            self._remove(pod_kind, r)
        if kind.kind == "Job" and mine:
            return  # a Job's pod runs once; its status comes from the kubelet stand-in
        taken = {r.obj["metadata"]["name"] for r in mine}
        ordinals = (i for i in range(want + len(taken)) if f"{name}-{i}" not in taken)
        for _ in range(len(mine), want):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            pod_name = (
                f"{name}-{next(ordinals)}"
                if kind.kind == "StatefulSet"
                else f"{name}-{digest[:8]}-{suffix}"
            )
            pod = self._pod(pod_name, namespace, containers, broken)
            pod["metadata"]["labels"] = {**labels, "pod-template-hash": digest}
            if kind.kind == "Job":
                pod["metadata"]["labels"].update(
                    {"batch.kubernetes.io/job-name": name, "job-name": name, "controller-uid": uid}
                )
                pod["spec"]["restartPolicy"] = dotted(template, "spec.restartPolicy") or "Never"
                if not broken:
                    waiting = {"waiting": {"reason": "ContainerCreating"}}
                    pod["status"]["phase"] = "Pending"
                    for cs in pod["status"]["containerStatuses"]:
                        cs.update(state=waiting, ready=False, started=False)
            pod["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": kind.group_version,
                    "kind": kind.kind,
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
            self._store(pod_kind, pod, "kube-controller-manager")
            if kind.kind == "Job" and not broken:
                self._spawn(self._kubelet(kind, namespace, name, pod_name))
            if broken:
                image = containers[0].get("image")
                self.add_event(
                    pod,
                    "Failed",
                    f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found',
                )
                self.add_event(pod, "BackOff", f'Back-off pulling image "{image}"', count=3)
        ready = 0 if broken else want
        status: Obj = {"observedGeneration": obj["metadata"].get("generation", 1)}
        if kind.kind == "Job":
            status["active"] = 1  # the kubelet stand-in reports the end
        elif kind.kind == "DaemonSet":
            status.update(
                {
                    "desiredNumberScheduled": 1,
                    "currentNumberScheduled": 1,
                    "updatedNumberScheduled": 1,
                    "numberReady": ready,
                    "numberAvailable": ready,
                }
            )
        else:
            status.update(
                {
                    "replicas": want,
                    "updatedReplicas": want,
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "currentReplicas": want,
                }
            )
            if kind.kind == "StatefulSet":
                status["currentRevision"] = status["updateRevision"] = f"{name}-{digest[:8]}"
        new = copy.deepcopy(obj)
        new["status"] = status
        self._replace(kind, rec, new)


def _metadata_only(listed: Obj) -> Obj:
    """A LIST as ``PartialObjectMetadataList`` (what ``Accept: application/json;
    as=PartialObjectMetadataList;v=v1;g=meta.k8s.io`` asks for): each item's metadata only."""
    item = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"}
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": listed["metadata"],
        "items": [{**item, "metadata": i["metadata"]} for i in listed["items"]],
    }


def _strip_volatile(obj: Obj) -> Obj:
    meta = obj.get("metadata", {})
    for k in ("managedFields", "resourceVersion", "generation"):
        meta.pop(k, None)
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    return obj


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def write_kubeconfig(
    path: Path,
    api: FakeApi,
    token: str = TOKEN,
    namespace: str | None = None,
    extra_contexts: dict[str, str] | None = None,
) -> Path:
    """A kubeconfig with context ``fake`` pointing at the loopback server (plus other contexts
    named in ``extra_contexts``: name -> server URL)."""
    clusters = [{"name": "fake", "cluster": {"server": api.url}}]
    contexts: list[Obj] = [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}]
    if namespace:
        contexts[0]["context"]["namespace"] = namespace
    for name, url in (extra_contexts or {}).items():
        clusters.append({"name": name, "cluster": {"server": url}})
        contexts.append({"name": name, "context": {"cluster": name, "user": "tester"}})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fake",
        "clusters": clusters,
        "contexts": contexts,
        "users": [{"name": "tester", "user": {"token": token}}],
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config))
    return path
