"""Apply, diff and delete the objects of a manifest file (server-side apply, field manager ktl-lsp).

Each operation takes the file's ``Manifest`` list, sends what can be sent in dependency order
(namespaces and CRDs first, then identities/config/services, then the rest; the reverse for
delete), a few objects at a time within a tier, and reports one ``Outcome`` per document. Failed
API answers carry ``Finding``s placed on the manifest (``fieldpath.locate``), which the editor
shows as ``k8s-api-error`` diagnostics.

Nothing here knows about LSP: progress goes to an ``Output`` (a session).
"""

from __future__ import annotations

import asyncio
import copy
import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import yaml

from ktl_lsp.checks.findings import Finding
from ktl_lsp.k8s.client import Cluster, Resource
from ktl_lsp.k8s.errors import ApiError, Conflict, K8sError, Unauthorized
from ktl_lsp.k8s.fieldpath import doc_anchor, locate
from ktl_lsp.k8s.manifests import Manifest, tiers
from ktl_lsp.k8s.style import DIM, GREEN, RED, RESET, YELLOW

FIELD_MANAGER = "ktl-lsp"
#: Unknown or duplicate fields fail the apply, as with ``kubectl apply`` (the API's default,
#: ``Warn``, drops them with only a response header to say so).
STRICT = ("fieldValidation", "Strict")
CONCURRENCY = 8
#: How long custom resources wait for their CRD (applied in the same run) to be served.
CRD_WAIT_S = 60.0
#: Above this many objects of one resource in one namespace, one LIST replaces their GETs.
LIST_THRESHOLD = 4

Action = Literal["created", "configured", "unchanged", "failed", "skipped", "deleted", "absent"]

COLOURS: dict[str, str] = {
    "created": GREEN,
    "configured": YELLOW,
    "unchanged": DIM,
    "deleted": YELLOW,
    "absent": DIM,
    "failed": RED,
    "skipped": DIM,
}


class Output(Protocol):
    def write(self, text: str) -> None: ...

    def event(self, **fields: Any) -> None: ...


@dataclass
class Outcome:
    manifest: Manifest
    action: Action
    message: str | None = None
    namespace: str | None = None
    findings: list[Finding] = field(default_factory=list)
    diff: str = ""

    def to_lsp(self) -> dict[str, Any]:
        m = self.manifest
        out: dict[str, Any] = {
            "kind": m.kind,
            "name": m.name,
            "namespace": self.namespace,
            "action": self.action,
            "document": m.index,
        }
        if self.message:
            out["message"] = self.message
        return out


@dataclass
class Options:
    namespace: str | None = None  #: for objects that do not name one (else the context's)
    dry_run: bool = False
    force: bool = False
    atomic: bool = False
    propagation: str = "Background"


def findings_for(m: Manifest, exc: ApiError) -> list[Finding]:
    """The API's answer placed on the manifest: one finding per cause with a field."""
    out: list[Finding] = []
    prefix = "apply conflict: " if isinstance(exc, Conflict) else ""
    for cause in exc.causes:
        if not cause.field:
            continue
        where = locate(m.doc, cause.field)
        text = cause.message
        if isinstance(exc, Conflict):
            text = f"{cause.message}: {cause.field} (apply with force to take the field over)"
        elif not cause.message.startswith(cause.field):
            text = f"{cause.field}: {cause.message}"
        if not where.exact:
            text += f" (at {cause.field})"
        out.append(Finding(where.range, "error", "k8s-api-error", prefix + text))
    if not out:
        out.append(
            Finding(
                doc_anchor(m.doc),
                "error",
                "k8s-api-error",
                f"{exc.code} {exc.reason}: {exc.message}".strip(),
            )
        )
    return out


def problem_finding(m: Manifest) -> Finding:
    assert m.problem is not None
    rng = m.problem_range or doc_anchor(m.doc)
    return Finding(rng, "error", "k8s-api-error", m.problem)


def _report(out: Output, o: Outcome, verb: str = "") -> None:
    m = o.manifest
    colour = COLOURS.get(o.action, "")
    where = f" -n {o.namespace}" if o.namespace else ""
    suffix = f" {DIM}(dry run){RESET}" if verb == "dry" else ""
    out.write(f"{colour}{o.action:<10}{RESET} {m.label()}{where}{suffix}\r\n")
    if o.message and o.action in ("failed", "skipped"):
        for line in o.message.splitlines():
            out.write(f"           {RED if o.action == 'failed' else DIM}{line}{RESET}\r\n")
    out.event(
        resource=f"{m.kind}/{m.name}",
        namespace=o.namespace,
        action=o.action,
        document=m.index,
        **({"message": o.message} if o.message else {}),
    )


def _namespace_for(res: Resource, m: Manifest, cluster: Cluster, opts: Options) -> str | None:
    if not res.namespaced:
        return None
    return m.namespace or opts.namespace or cluster.default_namespace


def _body(m: Manifest, namespace: str | None) -> dict[str, Any]:
    body = copy.deepcopy(m.obj or {})
    if namespace:
        body.setdefault("metadata", {})["namespace"] = namespace
    return body


async def _resolve(
    cluster: Cluster, manifests: list[Manifest]
) -> tuple[dict[int, Resource | None], list[Outcome]]:
    """Discovery for every sendable document; unknown kinds fail here, before anything is sent.

    A kind whose CRD is in the same file maps to None: it is resolved again once the CRD tier
    has been applied.
    """
    found: dict[int, Resource | None] = {}
    failed: list[Outcome] = []
    crd_here = any(x.kind == "CustomResourceDefinition" for x in manifests)
    for m in manifests:
        if m.obj is None:
            continue
        res = await cluster.resource_for(m.api_version, m.kind)
        if res is None and not crd_here:
            failed.append(_unknown_kind(m))
            continue
        found[m.index] = res
    return found, failed


def _unknown_kind(m: Manifest, note: str = "") -> Outcome:
    text = f"not sent: the cluster does not serve kind {m.kind} in {m.api_version}{note}"
    return Outcome(
        m, "failed", text, findings=[Finding(doc_anchor(m.doc), "error", "k8s-api-error", text)]
    )


async def _live_versions(
    cluster: Cluster, groups: dict[tuple[Resource, str | None], list[Manifest]]
) -> dict[tuple[Resource, str | None, str], str | None]:
    """resourceVersion of the live objects (None: absent), by LIST for big groups."""
    out: dict[tuple[Resource, str | None, str], str | None] = {}
    for (res, ns), members in groups.items():
        if len(members) < LIST_THRESHOLD:
            continue
        _, data = await cluster.request("GET", res.path(ns))
        if (data or {}).get("metadata", {}).get("continue"):
            continue  # paged: the GETs below are cheaper than paging the whole list
        live = {
            str(i["metadata"]["name"]): str(i["metadata"].get("resourceVersion"))
            for i in (data or {}).get("items") or []
        }
        for m in members:
            out[(res, ns, m.name)] = live.get(m.name)
    return out


async def _get_rv(cluster: Cluster, res: Resource, ns: str | None, name: str) -> str | None:
    try:
        _, data = await cluster.request("GET", res.path(ns, name))
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise
    return str((data or {}).get("metadata", {}).get("resourceVersion"))


async def _in_tiers(
    manifests: list[Manifest],
    work: Callable[[Manifest], Awaitable[Outcome]],
    reverse: bool = False,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(m: Manifest) -> Outcome:
        async with gate:
            return await work(m)

    for tier in tiers(manifests, reverse=reverse):
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(m)) for m in tier]
        outcomes.extend(t.result() for t in tasks)
    return outcomes


def _split_sendable(manifests: list[Manifest], out: Output) -> tuple[list[Manifest], list[Outcome]]:
    """Documents that can be sent, and the failed outcomes of those that cannot."""
    sendable, failed = [], []
    for m in manifests:
        if m.empty:
            continue
        if m.obj is None:
            o = Outcome(m, "failed", m.problem, findings=[problem_finding(m)])
            failed.append(o)
            _report(out, o)
        else:
            sendable.append(m)
    return sendable, failed


async def apply(
    cluster: Cluster, manifests: list[Manifest], opts: Options, out: Output
) -> list[Outcome]:
    sendable, failed = _split_sendable(manifests, out)
    resources, unknown = await _resolve(cluster, sendable)
    for o in unknown:
        _report(out, o)
    failed += unknown
    if opts.atomic and failed:
        skipped = [
            Outcome(m, "skipped", "atomic: nothing sent because another document cannot be applied")
            for m in sendable
            if m.index in resources
        ]
        for o in skipped:
            _report(out, o)
        return sorted(failed + skipped, key=lambda o: o.manifest.index)
    todo = [m for m in sendable if m.index in resources]
    groups: dict[tuple[Resource, str | None], list[Manifest]] = {}
    for m in todo:
        res = resources[m.index]
        if res is not None:
            groups.setdefault((res, _namespace_for(res, m, cluster, opts)), []).append(m)
    known = await _live_versions(cluster, groups)
    verb = "dry" if opts.dry_run else ""

    waits: dict[str, asyncio.Task[str | None]] = {}

    async def one(m: Manifest) -> Outcome:
        res = resources[m.index]
        if res is None:
            note = " (its CRD in this file is not created by a dry run)" if opts.dry_run else ""
            crd = _crd_for(m, sendable)
            if crd is not None and not opts.dry_run:
                if crd not in waits:
                    waits[crd] = asyncio.ensure_future(_established(cluster, crd))
                problem = await asyncio.shield(waits[crd])
                note = f" ({problem})" if problem else ""
            res = await cluster.resource_for(m.api_version, m.kind)
            if res is None:
                o = _unknown_kind(m, note)
                _report(out, o)
                return o
        ns = _namespace_for(res, m, cluster, opts)
        o = await _apply_one(cluster, res, m, ns, opts, known)
        _report(out, o, verb)
        return o

    outcomes = await _in_tiers(todo, one)
    return sorted(failed + outcomes, key=lambda o: o.manifest.index)


def _crd_for(m: Manifest, manifests: list[Manifest]) -> str | None:
    """The name of the CRD in ``manifests`` that defines ``m``'s kind."""
    group = m.api_version.rpartition("/")[0]
    for crd in manifests:
        spec = (crd.obj or {}).get("spec") if crd.kind == "CustomResourceDefinition" else None
        if not isinstance(spec, dict) or not isinstance(spec.get("names"), dict):
            continue
        if spec.get("group") == group and spec["names"].get("kind") == m.kind:
            return crd.name
    return None


async def _established(cluster: Cluster, name: str, timeout_s: float = CRD_WAIT_S) -> str | None:
    """Waits until the CRD is ``Established`` (its kind served): the API server takes a moment
    after the CRD is created. Answers why not when it will not be."""
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.05
    while True:
        try:
            _, crd = await cluster.request("GET", path)
        except ApiError as exc:
            if exc.code == 404:
                return f"its CRD {name} is not on the cluster"
            raise
        conditions = {
            str(c.get("type")): c
            for c in ((crd or {}).get("status") or {}).get("conditions") or []
            if isinstance(c, dict)
        }
        if conditions.get("Established", {}).get("status") == "True":
            return None
        names = conditions.get("NamesAccepted", {})
        if names.get("status") == "False":
            return f"CRD {name}: {names.get('message') or names.get('reason')}"
        if loop.time() >= deadline:
            return f"its CRD {name} was not Established within {timeout_s:g}s"
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _apply_one(
    cluster: Cluster,
    res: Resource,
    m: Manifest,
    ns: str | None,
    opts: Options,
    known: dict[tuple[Resource, str | None, str], str | None],
) -> Outcome:
    try:
        key = (res, ns, m.name)
        before = known[key] if key in known else await _get_rv(cluster, res, ns, m.name)
        query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER), STRICT]
        if opts.force:
            query.append(("force", "true"))
        if opts.dry_run:
            query.append(("dryRun", "All"))
        status, data = await cluster.request(
            "PATCH",
            res.path(ns, m.name),
            query,
            body=_body(m, ns),
            content_type="application/apply-patch+yaml",
        )
    except Unauthorized:
        raise
    except ApiError as exc:
        if exc.code == 404 and not exc.details.get("name"):
            # Not a missing namespace: the kind itself is gone (its CRD deleted since discovery).
            cluster.forget(res.api_version)
            if await cluster.resource_for(m.api_version, m.kind) is None:
                return _unknown_kind(m)
        message = str(exc)
        if isinstance(exc, Conflict):
            managers = sorted({c.message for c in exc.causes})
            message = f"{exc.message}\n(apply with force to take over from {', '.join(managers)})"
        return Outcome(m, "failed", message, ns, findings_for(m, exc))
    after = str((data or {}).get("metadata", {}).get("resourceVersion"))
    if before is None or status == 201:
        action: Action = "created"
    elif opts.dry_run:
        action = "configured"
    else:
        action = "unchanged" if after == before else "configured"
    return Outcome(m, action, None, ns)


# -- diff ------------------------------------------------------------------------------------
DROP_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
    "finalizers",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def normalize(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a diff should not show (as ktl's diff): server bookkeeping and status."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for k in DROP_METADATA:
            meta.pop(k, None)
        _drop_annotations(meta)
    spec = out.get("spec")
    if isinstance(spec, dict):
        if spec.get("clusterIP") in ("", None):
            spec.pop("clusterIP", None)
        tmeta = (
            (spec.get("template") or {}).get("metadata")
            if isinstance(spec.get("template"), dict)
            else None
        )
        if isinstance(tmeta, dict):
            _drop_annotations(tmeta)
    normalized: dict[str, Any] = _sort_named(out)
    return normalized


def _drop_annotations(meta: dict[str, Any]) -> None:
    ann = meta.get("annotations")
    if not isinstance(ann, dict):
        return
    for k in [k for k in ann if k == "helm.sh/chart" or k.startswith("checksum/")]:
        del ann[k]
    if not ann:
        del meta["annotations"]


def _sort_named(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sort_named(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_sort_named(v) for v in value]
        if items and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
            items.sort(key=lambda i: i["name"])
        return items
    return value


def _yaml(obj: dict[str, Any] | None) -> list[str]:
    if obj is None:
        return []
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)


def unified(live: dict[str, Any] | None, merged: dict[str, Any] | None, label: str) -> str:
    lines = difflib.unified_diff(
        _yaml(normalize(live)), _yaml(normalize(merged)), f"live/{label}", f"merged/{label}"
    )
    return "".join(lines)


async def diff(
    cluster: Cluster, manifests: list[Manifest], opts: Options, out: Output
) -> list[Outcome]:
    sendable, failed = _split_sendable(manifests, out)
    resources, unknown = await _resolve(cluster, sendable)
    for o in unknown:
        _report(out, o)

    async def one(m: Manifest) -> Outcome:
        res = resources[m.index]
        if res is None:
            o = Outcome(m, "created", "a custom resource whose CRD is not on the cluster yet")
            o.diff = unified(None, m.obj, f"{m.kind}.{m.name}")
            _report(out, o)
            return o
        ns = _namespace_for(res, m, cluster, opts)
        label = ".".join(
            p for p in (res.api_version.replace("/", "."), m.kind, ns or "", m.name) if p
        )
        try:
            try:
                _, live = await cluster.request("GET", res.path(ns, m.name))
            except ApiError as exc:
                if exc.code != 404:
                    raise
                live = None
            _, merged = await cluster.request(
                "PATCH",
                res.path(ns, m.name),
                [("fieldManager", FIELD_MANAGER), ("force", "true"), ("dryRun", "All"), STRICT],
                body=_body(m, ns),
                content_type="application/apply-patch+yaml",
            )
        except Unauthorized:
            raise
        except ApiError as exc:
            o = Outcome(m, "failed", str(exc), ns, findings_for(m, exc))
            _report(out, o)
            return o
        text = unified(live, merged, label)
        action: Action = "created" if live is None else ("configured" if text else "unchanged")
        o = Outcome(m, action, None, ns, diff=text)
        _report(out, o)
        if text:
            for line in text.splitlines():
                colour = (
                    GREEN
                    if line.startswith("+")
                    else RED
                    if line.startswith("-")
                    else DIM
                    if line.startswith("@@")
                    else ""
                )
                out.write(f"    {colour}{line}{RESET}\r\n")
        return o

    outcomes = await _in_tiers([m for m in sendable if m.index in resources], one)
    return sorted(failed + unknown + outcomes, key=lambda o: o.manifest.index)


# -- delete ----------------------------------------------------------------------------------
async def delete(
    cluster: Cluster, manifests: list[Manifest], opts: Options, out: Output
) -> list[Outcome]:
    sendable, failed = _split_sendable(manifests, out)
    resources, unknown = await _resolve(cluster, sendable)
    for o in unknown:
        _report(out, o)

    async def one(m: Manifest) -> Outcome:
        res = resources[m.index]
        if res is None:
            o = Outcome(m, "absent", "its kind is not served by the cluster")
            _report(out, o)
            return o
        ns = _namespace_for(res, m, cluster, opts)
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": opts.propagation,
        }
        query: list[tuple[str, Any]] = []
        if opts.dry_run:
            query.append(("dryRun", "All"))
            body["dryRun"] = ["All"]
        try:
            await cluster.request("DELETE", res.path(ns, m.name), query, body=body)
            o = Outcome(m, "deleted", None, ns)
        except Unauthorized:
            raise
        except ApiError as exc:
            if exc.code == 404:
                o = Outcome(m, "absent", None, ns)
            else:
                o = Outcome(m, "failed", str(exc), ns, findings_for(m, exc))
        _report(out, o, "dry" if opts.dry_run else "")
        return o

    outcomes = await _in_tiers([m for m in sendable if m.index in resources], one, reverse=True)
    return sorted(failed + unknown + outcomes, key=lambda o: o.manifest.index)


__all__ = [
    "FIELD_MANAGER",
    "K8sError",
    "Options",
    "Outcome",
    "apply",
    "delete",
    "diff",
    "normalize",
    "unified",
]
