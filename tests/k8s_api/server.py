"""A loopback Kubernetes API server for tests, speaking the REST protocol of the API reference.

Driven by the real ``kubernetes`` client through a generated kubeconfig. What it answers:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``
  (``APIVersions``, ``APIGroupList``, ``APIResourceList``; CRDs appear once applied);
- typed GET, POST (create, ``generateName``, 409 AlreadyExists), PUT (replace, the body's
  ``resourceVersion`` a precondition), LIST (``labelSelector``, ``fieldSelector`` with only the
  field labels the kind accepts, else 400 ``field label not supported``, ``<Kind>List`` with
  ``metadata.resourceVersion``, items without kind/apiVersion as the real server sends them;
  ``PartialObjectMetadataList``, metadata only, when the Accept header asks for it first) and
  WATCH (``?watch=true``: chunked JSON lines ``{"type", "object"}``, ``resourceVersion`` replay,
  ``timeoutSeconds``, ``ERROR`` 410 Expired for a version older than the last
  ``history_size`` changes; an object that starts matching the watch's selectors is ``ADDED``
  for it, one that stops matching ``DELETED``; ``BOOKMARK`` every ``bookmark_interval`` with
  ``allowWatchBookmarks``);
- server-side apply: ``PATCH`` with ``Content-Type: application/apply-patch+yaml``, required
  ``fieldManager``, ``force``, ``dryRun=All``; field ownership per manager (``managedFields`` in
  FieldsV1), 409 Conflict with ``details.causes[]`` of reason ``FieldManagerConflict`` naming the
  other manager and the field, a no-op apply leaves ``resourceVersion`` alone; 201 on create.
  Typed as the real one (``schema.py``): lists merge by their list-map keys (containers by
  ``name``, container ports by ``containerPort`` + ``protocol``, ...), a mistyped value is a 400
  ``failed to create typed patch object``, and so is an unknown field with
  ``fieldValidation=Strict`` (else it is dropped with a ``Warning: 299`` header); a body with
  ``metadata.managedFields`` is a 400, its ``metadata.resourceVersion`` a precondition (409),
  its ``status`` ignored where the kind has a status subresource;
- CRDs: their kinds are served (discovery and REST) once the CRD is ``Established``, after
  ``crd_delay`` (``NamesAccepted`` and ``Established`` conditions, ``acceptedNames``); deleting
  the CRD removes its kinds and its custom resources;
- 422 Invalid with ``details.causes[].field`` from a small validator (names, pod templates,
  selectors, ports, replicas), 404 for a missing namespace, 400 for a name or kind mismatch;
- ``DELETE`` with ``propagationPolicy``, ``gracePeriodSeconds`` and ``dryRun``, as the real
  machinery deletes: a pod gets a ``deletionTimestamp`` (and ``deletionGracePeriodSeconds``) and
  goes after ``pod_grace`` seconds (its controller starts a replacement at once; a
  StatefulSet's waits for the name); an object with finalizers stays until they are removed
  (``finalize``); owned objects are deleted by a garbage collector ``gc_delay`` after their
  owner, not in the same call; Foreground answers 200 with the owner still there (finalizer
  ``foregroundDeletion``) until its dependents are gone; a deleted namespace is ``Terminating``
  (403 ``NamespaceTerminating`` for anything new in it) until its contents are gone;
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
- authentication by bearer token (401 ``Unauthorized``) or, over HTTPS (``FakeApi(certificates)``
  from ``tls.make_certificates``; ``write_kubeconfig`` then carries the CA and a client
  certificate), by client certificate (the user is its CN); RBAC-like refusals (403
  ``Forbidden`` with the reference's message shape).

Small controllers stand in for kube-controller-manager: Deployments, StatefulSets, DaemonSets and
Jobs get pods and status, a step every ``rollout_delay`` as the real ones pace a rollout (the
new generation observed first, then ``updatedReplicas`` < ``replicas``, pods Running before
Ready, old pods going once new ones are ready, a StatefulSet one ordinal at a time; a
Deployment's ``Available`` False then True and ``Progressing`` ``ReplicaSetUpdated`` then
``NewReplicaSetAvailable``, or ``ProgressDeadlineExceeded`` after ``progressDeadlineSeconds``
times ``deadline_scale`` without progress); an image containing ``does-not-exist`` never becomes ready and emits
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

Test knobs: ``add`` (any object as it is), ``add_pod``, ``delete_pod`` (at once, as with
``--grace-period=0 --force``), ``delete`` (as an API ``DELETE``), ``finalize``, ``admission_finalizers`` (``{"jobs":
["example.com/hold"]}``: finalizers a webhook adds to new objects), ``replace_pod`` (delete an owned pod and await its
replacement), ``log``, ``add_event``, ``forbid`` (``forbid("create", "pods/exec")``), ``serve``
(ports a pod listens on for port-forward, besides its ``containerPort``\\s),
``missing_programs`` (``{(namespace, pod): {"bash"}}``: programs exec does not find in the pod's
image; or the pod or pod-template annotation ``ktl-fake/missing-programs: "bash"``),
``controllers_running`` (an ``asyncio.Event``: cleared, rollouts hold), ``cut_streams`` (every watch and log stream ends, as at the API server's timeout),
``hang_streams`` (open log streams go silent without ending, the client's known hang),
``stop``/``start`` (the cluster goes away and comes back on the same port), ``requests`` (a
count of what was asked: by method, and metadata-only lists as ``PartialObjectMetadataList``).
"""

from __future__ import annotations

import asyncio
import base64
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
from multidict import CIMultiDict

from tests.k8s_api import schema

if TYPE_CHECKING:
    from tests.k8s_api.streams import Streams
    from tests.k8s_api.tls import Certificates

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
    Kind("", "v1", "Node", "nodes", False, ("no",)),
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
#: Built-in kinds without a status subresource.
NO_STATUS = {"ConfigMap", "Secret", "ServiceAccount", "Event", "Role", "RoleBinding", "ClusterRole"}
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


def modified(kind: Kind, name: str) -> StatusError:
    """A ``resourceVersion`` precondition that failed (optimistic concurrency)."""
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
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


#: The field labels each kind's LIST/WATCH accepts besides metadata.name and
#: metadata.namespace (the API server's field label conversion functions), and where a label's
#: value lives when it is not at its own path.
FIELD_LABELS: dict[str, dict[str, str]] = {
    "Pod": {
        "spec.nodeName": "spec.nodeName",
        "spec.restartPolicy": "spec.restartPolicy",
        "spec.schedulerName": "spec.schedulerName",
        "spec.serviceAccountName": "spec.serviceAccountName",
        "spec.hostNetwork": "spec.hostNetwork",
        "status.phase": "status.phase",
        "status.podIP": "status.podIP",
        "status.nominatedNodeName": "status.nominatedNodeName",
    },
    "Event": {
        **{
            f"involvedObject.{f}": f"involvedObject.{f}"
            for f in (
                "kind",
                "namespace",
                "name",
                "uid",
                "apiVersion",
                "resourceVersion",
                "fieldPath",
            )
        },
        "reason": "reason",
        "reportingComponent": "reportingComponent",
        "source": "source.component",
        "type": "type",
    },
    "Secret": {"type": "type"},
    "Namespace": {"status.phase": "status.phase"},
    "ReplicaSet": {"status.replicas": "status.replicas"},
    "Job": {"status.successful": "status.succeeded"},
    "Service": {"spec.clusterIP": "spec.clusterIP", "spec.type": "spec.type"},
}


def _field_terms(kind: Kind, selector: str) -> list[tuple[str, str, bool]]:
    """(path of the value, wanted value, negated) per term; a label the kind does not accept
    is the API's 400."""
    labels = {
        "metadata.name": "metadata.name",
        "metadata.namespace": "metadata.namespace",
        **FIELD_LABELS.get(kind.kind, {}),
    }
    out = []
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        neg = "!=" in term
        k, sep, v = term.replace("!=", "=").replace("==", "=").partition("=")
        if not sep:
            raise StatusError(
                400, "BadRequest", f'invalid field selector: "{term}": no operator found'
            )
        if k.strip() not in labels:
            raise StatusError(400, "BadRequest", f"field label not supported: {k.strip()}")
        out.append((labels[k.strip()], v.strip(), neg))
    return out


def field_match(kind: Kind, selector: str, obj: Obj) -> bool:
    for path, wanted, neg in _field_terms(kind, selector):
        value = dotted(obj, path)
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        same = ("" if value is None else shown) == wanted
        if same == neg:
            return False
    return True


# -- field ownership (server-side apply) ----------------------------------------------------
#: Metadata the server owns: never part of an apply configuration's fields.
SERVER_METADATA = (
    "name",
    "namespace",
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)


def _item_step(item: Obj, lt: schema.ListType) -> str:
    return "k:" + json.dumps(schema.key_of(item, lt), separators=(",", ":"))


def _matches(item: Any, step: str) -> bool:
    if step.startswith("v:"):
        return bool(item == json.loads(step[2:]))
    key = json.loads(step[2:])
    return isinstance(item, dict) and all(item.get(k) == v for k, v in key.items())


def leaves(obj: Obj, t: schema.Type, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Every field an apply configuration sets, as FieldsV1 paths: items of ``listType=map``
    lists by their keys (``k:{"containerPort":80,"protocol":"TCP"}``), of sets by value
    (``v:"x"``); an atomic list is one field."""
    out: dict[FieldPath, Any] = {}
    for key, value in obj.items():
        if not prefix and key in ("apiVersion", "kind", "status"):
            continue
        if prefix == ("f:metadata",) and key in SERVER_METADATA:
            continue
        path = (*prefix, f"f:{key}")
        sub = schema.child(t, key) or "object"
        lt = schema.list_type(t, key)
        if isinstance(value, dict) and value:
            out.update(leaves(value, sub, path))
        elif isinstance(value, list) and value and lt.kind == "map":
            for entry in value:
                if isinstance(entry, dict):
                    out.update(leaves(entry, schema.item(sub), (*path, _item_step(entry, lt))))
        elif isinstance(value, list) and value and lt.kind == "set":
            for entry in value:
                out[(*path, "v:" + json.dumps(entry))] = entry
        else:
            out[path] = value
    return out


def value_at(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    cur = obj
    for step in path:
        if step.startswith("f:") and isinstance(cur, dict) and step[2:] in cur:
            cur = cur[step[2:]]
        elif step[:2] in ("k:", "v:") and isinstance(cur, list):
            found = [i for i in cur if _matches(i, step)]
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
    elif last[:2] in ("k:", "v:") and isinstance(parent, list):
        parent[:] = [i for i in parent if not _matches(i, last)]


def merge(live: Any, config: Any, t: schema.Type) -> Any:
    """``config`` merged into ``live``: maps field by field, keyed lists item by item, sets by
    value; everything else (atomic lists included) is replaced."""
    if not (isinstance(live, dict) and isinstance(config, dict)):
        return copy.deepcopy(config)
    out = dict(live)
    for k, v in config.items():
        if k not in live:
            out[k] = copy.deepcopy(v)
            continue
        sub = schema.child(t, k) or "object"
        lt = schema.list_type(t, k)
        old = live[k]
        if lt.kind == "map" and isinstance(old, list) and isinstance(v, list):
            steps = {_item_step(i, lt): i for i in v if isinstance(i, dict)}
            kept = []
            for i in old:
                step = _item_step(i, lt) if isinstance(i, dict) else ""
                kept.append(merge(i, steps.pop(step), schema.item(sub)) if step in steps else i)
            out[k] = kept + [copy.deepcopy(i) for i in steps.values()]
        elif lt.kind == "set" and isinstance(old, list) and isinstance(v, list):
            out[k] = old + [copy.deepcopy(i) for i in v if i not in old]
        else:
            out[k] = merge(old, v, sub)
    return out


def render_path(path: FieldPath) -> str:
    out = ""
    for step in path:
        if step.startswith("f:"):
            out += "." + step[2:]
        elif step.startswith("k:"):
            key = json.loads(step[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
        else:
            out += f"[={step[2:]}]"
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
    stopped: bool = False  #: a deleted pod's grace period is over (its containers stopped)
    progress: int = 0  #: rollout steps taken (a Deployment's progress deadline watches it)
    stalled: bool = False  #: no progress within the Deployment's progressDeadlineSeconds


class FakeApi:
    """The loopback API server; ``async with FakeApi() as api:`` runs it on 127.0.0.1."""

    def __init__(self, certificates: Certificates | None = None) -> None:
        #: Serve HTTPS with these (``tls.make_certificates``); client certificates authenticate.
        self.certificates = certificates
        self.kinds: list[Kind] = list(BUILTIN)
        self.objects: dict[tuple[str, str, str, str], _Record] = {}
        self.rv = 100
        #: (resourceVersion, type, kind, object, the object before a MODIFIED)
        self.history: deque[tuple[int, str, Kind, Obj, Obj | None]] = deque(maxlen=5000)
        #: How often a watch that allows them gets a ``BOOKMARK``.
        self.bookmark_interval = 0.2
        self.watches: list[_Watch] = []
        self.logs: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        self._log_events: dict[tuple[str, str, str], asyncio.Event] = {}
        self._cut = asyncio.Event()
        self._hang = asyncio.Event()
        self.tokens: dict[str, str] = {TOKEN: "admin"}
        self.forbidden: set[tuple[str, str, str]] = set()  # (user, verb, plural)
        #: (verb, plural, namespace): refused in that namespace and so at the cluster scope
        self.forbidden_in: set[tuple[str, str, str]] = set()
        self.requests: Counter[str] = Counter()
        #: "METHOD path" of every request that may change something (not GET, not a dry run).
        self.writes: list[str] = []
        self.controllers = True
        self.rollout_delay = 0.05
        #: How long a new CRD takes to become ``Established`` (and its kinds served).
        self.crd_delay = 0.2
        #: How long a deleted pod takes to stop (its grace period, scaled down).
        self.pod_grace = 0.1
        #: Scales a Deployment's progressDeadlineSeconds (0.1: a 1 s deadline passes in 0.1 s).
        self.deadline_scale = 1.0
        #: plural -> finalizers added to every new object of it (a webhook's, say).
        self.admission_finalizers: dict[str, list[str]] = {}
        #: How long the garbage collector takes to delete the dependents of a deleted owner.
        self.gc_delay = 0.05
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Cleared, the workload controllers hold their next step (a test sees the state
        #: before a rollout starts).
        self.controllers_running = asyncio.Event()
        self.controllers_running.set()
        #: Workloads whose controller loop runs -> whether something changed meanwhile.
        self._reconciling: dict[tuple[str, str, str, str], bool] = {}
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
        context = self.certificates.server_context() if self.certificates else None
        site = web.TCPSite(
            self._runner, "127.0.0.1", self.port, reuse_address=True, ssl_context=context
        )
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
        scheme = "https" if self.certificates else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # knobs -----------------------------------------------------------------------------------
    def forbid(self, verb: str, plural: str, user: str = "*") -> None:
        self.forbidden.add((user, verb, plural))

    def forbid_in(self, namespace: str, plural: str, *verbs: str) -> None:
        """RBAC granted in every namespace but this one: ``verbs`` (list and watch by
        default) on ``plural`` are refused there and at the cluster scope."""
        for verb in verbs or ("list", "watch"):
            self.forbidden_in.add((verb, plural, namespace))

    def expire(self) -> None:
        """The watch cache forgets its history: open watches end and resuming from any
        version seen so far is a 410 Expired (the client must list again)."""
        self.history.clear()
        self.rv += 2
        self.cut_streams()

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

    def crash_pod(
        self, name: str, namespace: str = "default", reason: str = "CrashLoopBackOff"
    ) -> None:
        """Every container of the pod waits with ``reason`` after a failed run (its last
        state terminated, ``OOMKilled`` or ``Error``), as the kubelet reports a crash loop."""
        rec = self.objects[("", "pods", namespace, name)]
        obj = copy.deepcopy(rec.obj)
        last = "OOMKilled" if reason == "OOMKilled" else "Error"
        for cs in obj.get("status", {}).get("containerStatuses", []):
            cs.update(
                ready=False,
                started=False,
                restartCount=int(cs.get("restartCount", 0)) + 1,
                state={"waiting": {"reason": reason, "message": "back-off restarting"}},
                lastState={
                    "terminated": {"reason": last, "exitCode": 137 if last == "OOMKilled" else 1}
                },
            )
        obj["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
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
        old, rec.obj = rec.obj, obj
        self._notify("MODIFIED", kind, obj, old)

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
            self._pod_deleted(obj)  # a StatefulSet's replacement waited for the name
        if kind.kind == "CustomResourceDefinition":
            self._crd_deleted(obj)
        if self._dependents(obj["metadata"]["uid"]):
            self._spawn(self._collect_garbage(obj["metadata"]["uid"]))

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

    @property
    def history_size(self) -> int:
        """How many changes a watch can resume from; an older ``resourceVersion`` is a
        410 Expired (a small size makes clients relist)."""
        return self.history.maxlen or 0

    @history_size.setter
    def history_size(self, size: int) -> None:
        self.history = deque(self.history, maxlen=size)

    def _notify(self, type_: str, kind: Kind, obj: Obj, old: Obj | None = None) -> None:
        snapshot = copy.deepcopy(obj)
        before = copy.deepcopy(old) if old is not None else None
        self.history.append(
            (int(obj["metadata"]["resourceVersion"]), type_, kind, snapshot, before)
        )
        for w in self.watches:
            seen = self._watch_event(w, type_, kind, snapshot, before)
            if seen is not None:
                w.queue.put_nowait((seen, snapshot))

    def _watch_event(
        self, w: _Watch, type_: str, kind: Kind, obj: Obj, old: Obj | None
    ) -> str | None:
        """What a watch sees of a change: an object that starts matching its selectors is
        ADDED for it, one that stops matching is DELETED."""
        now = self._watch_matches(w, kind, obj)
        if type_ != "MODIFIED":
            return type_ if now else None
        before = old is not None and self._watch_matches(w, kind, old)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None

    @staticmethod
    def _watch_matches(w: _Watch, kind: Kind, obj: Obj) -> bool:
        if (w.kind.group, w.kind.plural) != (kind.group, kind.plural):
            return False
        meta = obj["metadata"]
        if w.namespace and meta.get("namespace") != w.namespace:
            return False
        if w.labels and not label_match(w.labels, meta.get("labels") or {}):
            return False
        return not (w.fields and not field_match(w.kind, w.fields, obj))

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
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        if peer:
            # A client certificate the CA signed (the TLS handshake checked it): its CN.
            subject = dict(pair for rdn in peer.get("subject", ()) for pair in rdn)
            self.requests["client-certificate"] += 1
            return str(subject.get("commonName", ""))
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
            if not self._has_status(k):
                continue
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
            "POST": None if name else "create",
            "PUT": "update" if name else None,
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
            _field_terms(kind, q.get("fieldSelector") or "")
            listed = self._list(kind, namespace, q.get("labelSelector"), q.get("fieldSelector"))
            accept = request.headers.get("Accept", "")
            if "as=PartialObjectMetadataList" in accept.split(",")[0].replace(" ", ""):
                self.requests["PartialObjectMetadataList"] += 1
                return web.json_response(_metadata_only(listed))
            return web.json_response(listed)
        if method == "PATCH":
            return await self._apply(request, kind, namespace, name)
        if method in ("POST", "PUT"):
            return await self._write(request, kind, namespace, name)
        return await self._delete(request, kind, namespace, name)

    async def _write(
        self, request: web.Request, kind: Kind, namespace: str, name: str
    ) -> web.Response:
        """POST (create; ``generateName`` honoured, 409 AlreadyExists) and PUT (replace; the
        body's ``resourceVersion``, when set, must be the live one), typed and validated as an
        apply is; the status of a kind with a status subresource is kept."""
        q = request.query
        try:
            body = json.loads(await request.text())
        except ValueError as exc:
            raise StatusError(400, "BadRequest", f"error decoding JSON: {exc}") from exc
        if not isinstance(body, dict) or body.get("kind") != kind.kind:
            raise StatusError(
                400,
                "BadRequest",
                f"the kind in the data does not match the expected kind ({kind.kind})",
            )
        meta = body.setdefault("metadata", {})
        if request.method == "POST" and not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = meta["generateName"] + suffix
        name = name or str(meta.get("name") or "")
        if not name or meta.get("name", name) != name:
            raise StatusError(400, "BadRequest", "the name of the object does not match the URL")
        if kind.namespaced:
            meta["namespace"] = namespace
            if ("", "namespaces", "", namespace) not in self.objects:
                raise StatusError(404, "NotFound", f'namespaces "{namespace}" not found')
        rec = self.objects.get((kind.group, kind.plural, namespace, name))
        if request.method == "POST" and rec is not None:
            raise StatusError(
                409,
                "AlreadyExists",
                f'{kind.qualified} "{name}" already exists',
                {"name": name, "group": kind.group, "kind": kind.plural},
            )
        if request.method == "PUT" and rec is None:
            raise not_found(kind, name)
        wanted = meta.pop("resourceVersion", None)
        if rec is not None and wanted and str(wanted) != rec.obj["metadata"]["resourceVersion"]:
            raise modified(kind, name)
        checked = schema.Checked()
        body = schema.check(body, self._type_of(kind), checked)
        strict = q.get("fieldValidation") == "Strict"
        if checked.wrong or (checked.unknown and strict):
            problems = [f'unknown field "{schema.render(p, smd=False)}"' for p in checked.unknown]
            problems += [f"{schema.render(p, smd=False)}: {m}" for p, m in checked.wrong]
            raise StatusError(
                400,
                "BadRequest",
                f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: '
                f"strict decoding error: {', '.join(problems)}",
            )
        warnings = [f'unknown field "{schema.render(p, smd=False)}"' for p in checked.unknown]
        body["apiVersion"] = kind.group_version
        if rec is not None and self._has_status(kind):
            body["status"] = copy.deepcopy(rec.obj.get("status"))
        self._default(kind, body)
        causes = self._validate(kind, body, rec.obj if rec else None)
        if causes:
            raise invalid(kind, name, causes)
        manager = q.get("fieldManager") or "kubectl-client-side-apply"
        entry = {"manager": manager, "operation": "Update", "apiVersion": kind.group_version}
        body["metadata"]["managedFields"] = [{**entry, "time": now_rfc3339()}]
        if q.get("dryRun") == "All":
            return _answer(body, 201 if rec is None else 200, warnings)
        if rec is None:
            body["metadata"]["generation"] = 1
            self._store(kind, body, manager)
            self._after_write(kind, body)
            return _answer(body, 201, warnings)
        for keep in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if keep in rec.obj["metadata"]:
                body["metadata"][keep] = rec.obj["metadata"][keep]
        if _spec_of(rec.obj) != _spec_of(body):
            body["metadata"]["generation"] = int(rec.obj["metadata"].get("generation", 1)) + 1
        self._replace(kind, rec, body)
        self._after_write(kind, body)
        self._maybe_gone(kind, rec)
        return _answer(body, 200, warnings)

    def _authorize(
        self, user: str, verb: str, kind: Kind, namespace: str, name: str, sub: str
    ) -> None:
        resource = f"{kind.plural}/{sub}" if sub else kind.plural
        # pods/exec and pods/portforward are resources of their own (forbid("create",
        # "pods/exec")); other subresources go with their resource.
        target = resource if sub in ("exec", "portforward") else kind.plural
        refused_in = any(
            (v, p) == (verb, target) and (ns == namespace or not namespace)
            for v, p, ns in self.forbidden_in
        )
        if not refused_in and not (
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
            if fields and not field_match(kind, fields, rec.obj):
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
        _field_terms(kind, w.fields or "")  # a bad selector is a 400, before the stream opens
        since = q.get("resourceVersion", "")
        timeout = float(q.get("timeoutSeconds", "1800"))
        oldest = self.history[0][0] if self.history else self.rv
        backlog: list[tuple[str, Obj]] = []
        expired = False
        if since and since != "0":
            if int(since) < oldest - 1:
                expired = True
            else:
                for rv, t, k, o, before in self.history:
                    seen = self._watch_event(w, t, k, o, before) if rv > int(since) else None
                    if seen is not None:
                        backlog.append((seen, o))
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
            bookmarks = q.get("allowWatchBookmarks") == "true"
            while not cut.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                getter = asyncio.ensure_future(w.queue.get())
                cutter = asyncio.ensure_future(cut.wait())
                wait = min(left, self.bookmark_interval) if bookmarks else left
                try:
                    done, _ = await asyncio.wait(
                        {getter, cutter}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    cutter.cancel()
                    if not getter.done():
                        getter.cancel()
                if getter in done:
                    t, o = getter.result()
                    await resp.write(json.dumps({"type": t, "object": o}).encode() + b"\n")
                elif bookmarks and not done:
                    # Nothing for this watch: it is up to date with everything so far.
                    mark = {
                        "kind": kind.kind,
                        "apiVersion": kind.group_version,
                        "metadata": {"resourceVersion": str(self.rv)},
                    }
                    await resp.write(
                        json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n"
                    )
                    self.requests["BOOKMARK"] += 1
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
        ns_rec = self.objects.get(("", "namespaces", "", namespace)) if kind.namespaced else None
        if rec is None and ns_rec is not None and ns_rec.obj["metadata"].get("deletionTimestamp"):
            message = (
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated"
            )
            raise StatusError(
                403,
                "Forbidden",
                f'{kind.qualified} "{name}" is forbidden: {message}',
                {
                    "name": name,
                    "group": kind.group,
                    "kind": kind.plural,
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": message,
                            "field": "metadata.namespace",
                        }
                    ],
                },
            )
        if "managedFields" in meta:
            raise StatusError(400, "BadRequest", "metadata.managedFields must be nil")
        expected_rv = meta.pop("resourceVersion", None)
        if expected_rv is not None and (
            rec is None or str(expected_rv) != rec.obj["metadata"]["resourceVersion"]
        ):
            raise modified(kind, name)
        if self._has_status(kind):
            config.pop("status", None)  # the status subresource's, not the apply's
        typed = self._type_of(kind)
        checked = schema.Checked()
        config = schema.check(config, typed, checked)
        validation = q.get("fieldValidation", "Warn")
        warnings = []
        if checked.wrong or (checked.unknown and validation == "Strict"):
            errors = [f"{schema.render(p)}: {m}" for p, m in checked.wrong]
            if validation == "Strict":
                errors += [
                    f"{schema.render(p)}: field not declared in schema" for p in checked.unknown
                ]
            joined = errors[0] if len(errors) == 1 else "errors:\n  " + "\n  ".join(errors)
            where = f"{namespace}/{name}" if namespace else name
            group_version = f"{kind.group}/{kind.version}" if kind.group else kind.version
            raise StatusError(
                400,
                "BadRequest",
                f"failed to create typed patch object ({where}; {group_version}, Kind={kind.kind}): {joined}",
            )
        if validation == "Warn":
            warnings = [f'unknown field "{schema.render(p, smd=False)}"' for p in checked.unknown]
        applied = leaves(config, typed)
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
        merged = merge(live, config, typed)
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
                return _answer(rec.obj, 200, warnings)
            if _spec_of(before) != _spec_of(merged):
                merged["metadata"]["generation"] = int(before["metadata"].get("generation", 1)) + 1
            if dry_run:
                return _answer(merged, 200, warnings)
            rec.owners, rec.owner_versions = owners, versions
            self._replace(kind, rec, merged)
            self._after_write(kind, merged)
            self._maybe_gone(kind, rec)  # its last finalizer may have been taken off
            return _answer(merged, 200, warnings)
        merged["metadata"]["generation"] = 1
        held = self.admission_finalizers.get(kind.plural, [])
        if held:  # a mutating webhook's, as policy controllers add them
            merged["metadata"]["finalizers"] = [
                *(merged["metadata"].get("finalizers") or []),
                *held,
            ]
        merged["metadata"].setdefault("uid", str(uuid.uuid4()))
        merged["metadata"]["creationTimestamp"] = now_rfc3339()
        if dry_run:
            return _answer(merged, 201, warnings)
        new = self._store(kind, merged, manager)
        new.owners, new.owner_versions = owners, versions
        self._after_write(kind, merged)
        return _answer(merged, 201, warnings)

    def _crd_of(self, kind: Kind) -> Obj | None:
        rec = self.objects.get(
            ("apiextensions.k8s.io", "customresourcedefinitions", "", kind.qualified)
        )
        return rec.obj if rec is not None and kind not in BUILTIN else None

    def _type_of(self, kind: Kind) -> schema.Type:
        """The schema applies are checked against (see ``schema.py``)."""
        crd = self._crd_of(kind)
        if crd is None:
            return schema.model_of(kind.group_version, kind.kind) or "object"
        found = schema.crd_schema(crd, kind.version)
        if found is None:
            return "object"
        props = {**(found.get("properties") or {})}
        props.update(apiVersion="str", kind="str", metadata="V1ObjectMeta")
        return {**found, "properties": props}

    def _has_status(self, kind: Kind) -> bool:
        crd = self._crd_of(kind)
        if crd is None:
            return kind.kind not in NO_STATUS
        for v in (crd.get("spec") or {}).get("versions") or []:
            if v.get("name") == kind.version:
                return "status" in (v.get("subresources") or {})
        return False

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
            self._spawn(self._establish(obj["metadata"]["name"]))
        if self.controllers and kind.kind in WORKLOADS:
            self._spawn(
                self._reconcile(kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            )

    @staticmethod
    def _crd_kinds(crd: Obj) -> list[Kind]:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        return [
            Kind(
                spec.get("group", ""),
                v["name"],
                names.get("kind", ""),
                names.get("plural", ""),
                spec.get("scope") == "Namespaced",
                tuple(names.get("shortNames") or ()),
            )
            for v in spec.get("versions") or []
            if v.get("served", True)
        ]

    async def _establish(self, name: str) -> None:
        """The apiextensions controllers: names accepted, then ``Established`` after
        ``crd_delay``; only then are the CRD's kinds served (discovery and REST paths)."""
        await asyncio.sleep(self.crd_delay)
        crd_kind = self.kind_of("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        rec = self.objects.get(("apiextensions.k8s.io", "customresourcedefinitions", "", name))
        if rec is None or rec.obj["metadata"].get("deletionTimestamp"):
            return
        obj = copy.deepcopy(rec.obj)
        spec = obj.get("spec") or {}
        stamp = now_rfc3339()
        obj["status"] = {
            "acceptedNames": {
                k: v for k, v in (spec.get("names") or {}).items() if k != "categories"
            },
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": stamp,
                },
            ],
        }
        for new in self._crd_kinds(obj):
            if new not in self.kinds:
                self.kinds.append(new)
        self._replace(crd_kind, rec, obj)

    def _crd_deleted(self, crd: Obj) -> None:
        """A deleted CRD's kinds are no longer served and its custom resources go with it."""
        for gone in self._crd_kinds(crd):
            if gone in self.kinds:
                self.kinds.remove(gone)
            for key, rec in list(self.objects.items()):
                if key[:2] == (gone.group, gone.plural):
                    self._remove(gone, rec)

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
        if dry_run:
            return web.json_response(rec.obj, status=200)
        grace = q.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
        obj = self._begin_delete(kind, rec, policy, None if grace is None else int(grace))
        # 202 only for the legacy orphanDependents=false (the API keeps 200 for the rest).
        legacy = str(q.get("orphanDependents", body.get("orphanDependents"))).lower() == "false"
        return web.json_response(obj, status=202 if legacy else 200)

    def _begin_delete(self, kind: Kind, rec: _Record, policy: str, grace: int | None) -> Obj:
        """What a DELETE does: an object without finalizers (and not a pod in its grace period,
        nor a namespace) goes at once, its dependents later by the garbage collector; the others
        get a ``deletionTimestamp`` and go once their finalizers are done."""
        if rec.obj["metadata"].get("deletionTimestamp"):
            return rec.obj
        obj = copy.deepcopy(rec.obj)
        meta = obj["metadata"]
        uid = meta["uid"]
        if policy == "Orphan":
            for dep_kind, dep in self._dependents(uid):
                new = copy.deepcopy(dep.obj)
                refs = new["metadata"].get("ownerReferences") or []
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                self._replace(dep_kind, dep, new)
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground":
            finalizers.append("foregroundDeletion")
        graceful = kind.kind == "Pod" and grace != 0
        if not finalizers and not graceful and kind.kind != "Namespace":
            self._remove(kind, rec)
            if kind.kind == "Pod":
                self._pod_deleted(obj)
            return obj
        meta["deletionTimestamp"] = now_rfc3339()
        if finalizers:
            meta["finalizers"] = finalizers
        if kind.kind == "Pod":
            declared = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            meta["deletionGracePeriodSeconds"] = declared if grace is None else grace
        if kind.kind == "Namespace":
            obj["status"] = {"phase": "Terminating"}
        self._replace(kind, rec, obj)
        if kind.kind == "Pod":
            self._pod_deleted(obj)
            self._spawn(self._stop_pod(kind, rec, grace))
        if kind.kind == "Namespace":
            self._spawn(self._empty_namespace(kind, rec))
        if "foregroundDeletion" in finalizers:
            self._spawn(self._delete_dependents_first(kind, rec))
        return obj

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str = "",
        policy: str = "Background",
    ) -> Obj:
        """What an API ``DELETE`` does (a pod: its grace period, and so on); the object as the
        API answers it."""
        k = self.kind_of(api_version, kind)
        rec = self.objects[(k.group, k.plural, namespace if k.namespaced else "", name)]
        return copy.deepcopy(self._begin_delete(k, rec, policy, None))

    def finalize(
        self, api_version: str, kind: str, name: str, namespace: str = "", finalizer: str = ""
    ) -> None:
        """A controller is done with its finalizer (all of them when none is named)."""
        k = self.kind_of(api_version, kind)
        rec = self.objects[(k.group, k.plural, namespace if k.namespaced else "", name)]
        obj = copy.deepcopy(rec.obj)
        left = [f for f in obj["metadata"].get("finalizers") or [] if finalizer and f != finalizer]
        obj["metadata"]["finalizers"] = left
        self._replace(k, rec, obj)
        self._maybe_gone(k, rec)

    def _maybe_gone(self, kind: Kind, rec: _Record) -> None:
        """Removes an object being deleted once nothing holds it any more."""
        meta = rec.obj["metadata"]
        if self.objects.get(self._key(kind, rec.obj)) is not rec or not meta.get(
            "deletionTimestamp"
        ):
            return
        if meta.get("finalizers") or (kind.kind == "Pod" and not rec.stopped):
            return
        if kind.kind == "Namespace":
            return  # the namespace controller removes it once it is empty
        self._remove(kind, rec)

    async def _stop_pod(self, kind: Kind, rec: _Record, grace: int | None) -> None:
        """The kubelet stops a deleted pod's containers within its grace period (``pod_grace``
        seconds here, unless the DELETE asked for less)."""
        await asyncio.sleep(self.pod_grace if grace is None else min(grace, self.pod_grace))
        rec.stopped = True
        self._maybe_gone(kind, rec)

    async def _gone(self, check: Any) -> None:
        while check():
            await asyncio.sleep(0.02)

    async def _collect_garbage(self, owner_uid: str) -> None:
        """The garbage collector: dependents whose owners are all gone are deleted (in the
        background), a moment after their owner."""
        await asyncio.sleep(self.gc_delay)
        live = {r.obj["metadata"]["uid"] for r in self.objects.values()}
        for dep_kind, dep in self._dependents(owner_uid):
            refs = dep.obj["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") in live for r in refs):
                self._begin_delete(dep_kind, dep, "Background", None)

    async def _delete_dependents_first(self, kind: Kind, rec: _Record) -> None:
        """Foreground deletion: the dependents are deleted and gone before the owner's
        ``foregroundDeletion`` finalizer is dropped."""
        await asyncio.sleep(self.gc_delay)
        uid = rec.obj["metadata"]["uid"]
        for dep_kind, dep in self._dependents(uid):
            self._begin_delete(dep_kind, dep, "Background", None)
        await self._gone(lambda: self._dependents(uid))
        if self.objects.get(self._key(kind, rec.obj)) is not rec:
            return
        obj = copy.deepcopy(rec.obj)
        left = [f for f in obj["metadata"].get("finalizers") or [] if f != "foregroundDeletion"]
        obj["metadata"]["finalizers"] = left
        self._replace(kind, rec, obj)
        self._maybe_gone(kind, rec)

    async def _empty_namespace(self, kind: Kind, rec: _Record) -> None:
        """The namespace controller: everything in a Terminating namespace is deleted, then
        the namespace goes."""
        await asyncio.sleep(self.gc_delay)
        name = rec.obj["metadata"]["name"]

        def contents() -> list[tuple[Kind, _Record]]:
            return [
                (k, r)
                for (group, plural, ns, _), r in list(self.objects.items())
                if ns == name
                for k in self.kinds
                if (k.group, k.plural) == (group, plural)
            ]

        for k, r in contents():
            self._begin_delete(k, r, "Background", None)
        await self._gone(contents)
        if self.objects.get(self._key(kind, rec.obj)) is rec:
            self._remove(kind, rec)

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
                "imageID": "" if broken else f"docker.io/library/{c.get('image', '')}@sha256:0",
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
        """kube-controller-manager for one workload, one step every ``rollout_delay`` (see
        ``_rollout_step``) until there is nothing left to do; one loop per workload at a time."""
        key = (kind.group, kind.plural, namespace, name)
        if key in self._reconciling:
            self._reconciling[key] = True  # the running loop takes another turn
            return
        self._reconciling[key] = False
        try:
            while True:
                await asyncio.sleep(self.rollout_delay)
                await self.controllers_running.wait()
                self._reconciling[key] = False
                rec = self.objects.get(key)
                if self._rollout_step(kind, namespace, name):
                    if rec is not None:
                        rec.progress += 1
                        rec.stalled = False
                elif not self._reconciling[key]:
                    if rec is not None and kind.kind == "Deployment":
                        self._spawn(self._progress_deadline(kind, rec, rec.progress))
                    return
        finally:
            self._reconciling.pop(key, None)

    async def _progress_deadline(self, kind: Kind, rec: _Record, progress: int) -> None:
        """A Deployment that makes no progress for ``progressDeadlineSeconds`` (times
        ``deadline_scale``) gets ``Progressing`` False, ``ProgressDeadlineExceeded``."""
        seconds = int((rec.obj.get("spec") or {}).get("progressDeadlineSeconds", 600))
        await asyncio.sleep(seconds * self.deadline_scale)
        status = rec.obj.get("status") or {}
        progressing = [c for c in status.get("conditions") or [] if c["type"] == "Progressing"]
        done = progressing and progressing[0].get("reason") == "NewReplicaSetAvailable"
        key = self._key(kind, rec.obj)
        if self.objects.get(key) is not rec or rec.progress != progress or done:
            return
        rec.stalled = True
        self._rollout_step(kind, key[2], key[3])

    def _rollout_step(self, kind: Kind, namespace: str, name: str) -> bool:
        """One step of a rollout, as the real controllers pace it: the new generation is
        observed first; a ReplicaSet creates its pods at once, a rolling update one more than
        wanted at a time (an old pod goes once a new one is ready), a StatefulSet one pod at a
        time, each after the one before is ready (replacing an old pod by name, the highest
        ordinal first); pods become ready one step after they start. The status (replicas,
        updated, ready, ``Progressing``/``Available`` conditions) follows each step. Answers
        whether anything changed."""
        rec = self.objects.get((kind.group, kind.plural, namespace, name))
        if rec is None or rec.obj["metadata"].get("deletionTimestamp"):
            return False  # being deleted: the garbage collector takes its pods
        obj = rec.obj
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        containers = dotted(template, "spec.containers") or []
        broken = any("does-not-exist" in str(c.get("image", "")) for c in containers)
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        want = 1 if kind.kind in ("DaemonSet", "Job") else int(spec.get("replicas", 1))
        uid = obj["metadata"]["uid"]
        generation = obj["metadata"].get("generation", 1)
        pod_kind = self.kind_of("v1", "Pod")

        def active() -> list[_Record]:
            """Its pods that are not being deleted (a terminating pod counts for nothing)."""
            return [
                r
                for k, r in self._dependents(uid)
                if k.kind == "Pod" and not r.obj["metadata"].get("deletionTimestamp")
            ]

        def current(r: _Record) -> bool:
            return r.obj["metadata"].get("labels", {}).get("pod-template-hash") == digest

        if kind.kind != "Job" and (obj.get("status") or {}).get("observedGeneration") != generation:
            # The new generation is observed first, counted against the new template.
            self._workload_status(kind, rec, want, digest, active(), current)
            return True
        pods = active()
        new = [r for r in pods if current(r)]
        old = [r for r in pods if not current(r)]
        changed = True
        if kind.kind == "Job":
            if pods or [r for k, r in self._dependents(uid) if k.kind == "Pod"]:
                return False  # a Job's pod runs once; its status comes from the kubelet stand-in
            self._create_pod(kind, obj, digest, broken)
            new_obj = copy.deepcopy(obj)
            new_obj["status"] = {"active": 1}  # the kubelet stand-in reports the end
            self._replace(kind, rec, new_obj)
            return False
        # A container in a crash loop (waiting after it terminated) is never made ready.
        starting = [r for r in new if not _pod_ready(r.obj) and not _crash_looping(r.obj)]
        if len(new) > want:
            self._begin_delete(pod_kind, new[-1], "Background", None)
        elif starting and not broken:
            self._ready_pod(starting[0])
        elif len(new) < want and kind.kind == "StatefulSet":
            if starting:
                changed = False  # OrderedReady: the next pod waits for this one
            elif old and not self._sts_slot_free(uid, name, want):
                self._begin_delete(pod_kind, max(old, key=_ordinal), "Background", None)
            else:
                changed = self._create_pod(kind, obj, digest, broken)
        elif len(new) < want:
            for _ in range(1 if old else want - len(new)):
                self._create_pod(kind, obj, digest, broken)
        elif old and not starting:
            self._begin_delete(pod_kind, old[0], "Background", None)
        else:
            changed = False
        self._workload_status(kind, rec, want, digest, active(), current)
        return changed

    def _sts_slot_free(self, uid: str, name: str, want: int) -> bool:
        taken = {r.obj["metadata"]["name"] for k, r in self._dependents(uid) if k.kind == "Pod"}
        return any(f"{name}-{i}" not in taken for i in range(want))

    def _create_pod(self, kind: Kind, owner: Obj, digest: str, broken: bool) -> bool:
        """A pod of the workload's template: Running but not yet ready (a Job's: still being
        created; a broken image's: never pulled)."""
        meta = owner["metadata"]
        name, namespace, uid = meta["name"], meta.get("namespace", ""), meta["uid"]
        template = (owner.get("spec") or {}).get("template") or {}
        containers = dotted(template, "spec.containers") or []
        if kind.kind == "StatefulSet":
            taken = {r.obj["metadata"]["name"] for k, r in self._dependents(uid) if k.kind == "Pod"}
            want = int((owner.get("spec") or {}).get("replicas", 1))
            free = [i for i in range(want) if f"{name}-{i}" not in taken]
            if not free:
                return False
            pod_name = f"{name}-{free[0]}"
        else:
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            pod_name = f"{name}-{digest[:8]}-{suffix}"
        pod = self._pod(pod_name, namespace, containers, broken)
        labels = dict(dotted(template, "metadata.labels") or {})
        pod["metadata"]["labels"] = {**labels, "pod-template-hash": digest}
        if not broken:
            pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
            for cs in pod["status"]["containerStatuses"]:
                cs["ready"] = False
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
        self._store(self.kind_of("v1", "Pod"), pod, "kube-controller-manager")
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
        return True

    def _ready_pod(self, rec: _Record) -> None:
        obj = copy.deepcopy(rec.obj)
        obj["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        for cs in obj["status"].get("containerStatuses", []):
            cs["ready"] = True
        self._replace(self.kind_of("v1", "Pod"), rec, obj)

    def _workload_status(
        self,
        kind: Kind,
        rec: _Record,
        want: int,
        digest: str,
        pods: list[_Record],
        current: Any,
    ) -> None:
        obj = rec.obj
        name = obj["metadata"]["name"]
        updated = [r for r in pods if current(r)]
        ready = [r for r in pods if _pod_ready(r.obj)]
        status: Obj = {"observedGeneration": obj["metadata"].get("generation", 1)}
        done = len(updated) == want == len(pods) and len(ready) == want
        if kind.kind == "DaemonSet":
            status.update(
                {
                    "desiredNumberScheduled": want,
                    "currentNumberScheduled": len(pods),
                    "updatedNumberScheduled": len(updated),
                    "numberReady": len(ready),
                    "numberAvailable": len(ready),
                }
            )
            if len(ready) < want:
                status["numberUnavailable"] = want - len(ready)
        else:
            status.update(
                {
                    "replicas": len(pods),
                    "updatedReplicas": len(updated),
                    "readyReplicas": len(ready),
                    "availableReplicas": len(ready),
                }
            )
        if kind.kind == "StatefulSet":
            revision = f"{name}-{digest[:8]}"
            previous = (obj.get("status") or {}).get("currentRevision") or revision
            status["currentReplicas"] = len(pods) - len(updated) if not done else len(pods)
            status["updateRevision"] = revision
            status["currentRevision"] = revision if done else previous
        if kind.kind == "Deployment":
            stamp = now_rfc3339()
            replica_set = f'ReplicaSet "{name}-{digest[:8]}"'
            available = len(ready) >= want
            status["conditions"] = [
                {
                    "type": "Available",
                    "status": "True" if available else "False",
                    "reason": "MinimumReplicasAvailable"
                    if available
                    else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability."
                    if available
                    else "Deployment does not have minimum availability.",
                    "lastUpdateTime": stamp,
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                    "message": f"{replica_set} has successfully progressed."
                    if done
                    else f"{replica_set} is progressing.",
                    "lastUpdateTime": stamp,
                },
            ]
            if rec.stalled and not done:
                status["conditions"][1].update(
                    status="False",
                    reason="ProgressDeadlineExceeded",
                    message=f"{replica_set} has timed out progressing.",
                )
        before = {k: v for k, v in (obj.get("status") or {}).items()}
        if _without_stamps(before) != _without_stamps(status):
            new = copy.deepcopy(obj)
            new["status"] = status
            self._replace(kind, rec, new)


def _pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _crash_looping(pod: Obj) -> bool:
    """The kubelet restarts it with back-off (``crash_pod``): waiting, its last run ended."""
    return any(
        "waiting" in (cs.get("state") or {}) and "terminated" in (cs.get("lastState") or {})
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
    )


def _ordinal(rec: _Record) -> int:
    return int(str(rec.obj["metadata"]["name"]).rpartition("-")[2] or 0)


def _without_stamps(status: Obj) -> Obj:
    out = copy.deepcopy(status)
    for c in out.get("conditions") or []:
        c.pop("lastUpdateTime", None)
    return out


def _answer(obj: Obj, status: int, warnings: list[str]) -> web.Response:
    """A JSON answer with the API's ``Warning: 299 - "..."`` headers."""
    headers = CIMultiDict[str]()
    for text in warnings:
        headers.add("Warning", f"299 - {json.dumps(text)}")
    return web.json_response(obj, status=status, headers=headers)


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


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path,
    api: FakeApi,
    token: str = TOKEN,
    namespace: str | None = None,
    extra_contexts: dict[str, str] | None = None,
    client_certificate: bool = True,
) -> Path:
    """A kubeconfig with context ``fake`` pointing at the loopback server (plus other contexts
    named in ``extra_contexts``: name -> server URL). Over HTTPS it carries the CA and, unless
    ``client_certificate`` is false, the client certificate and key instead of the token."""
    cluster: Obj = {"server": api.url}
    user: Obj = {"token": token}
    if api.certificates is not None:
        certs = api.certificates
        cluster["certificate-authority-data"] = _b64(certs.ca)
        if client_certificate:
            user = {
                "client-certificate-data": _b64(certs.client_cert),
                "client-key-data": _b64(certs.client_key),
            }
    clusters = [{"name": "fake", "cluster": cluster}]
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
        "users": [{"name": "tester", "user": user}],
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config))
    return path
