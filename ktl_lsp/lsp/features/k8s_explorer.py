"""The cluster explorer (docs/protocol.md, Cluster explorer): live watches pushed to the editor
as ``ktl/resources``, one object as YAML or described, and actions on objects as sessions.

A watch is a recorded session of kind ``k8s``: what changes in the cluster is written to it
once per batch, so its replay shows what happened. Batches are paced per watch (at most
``MAX_BATCHES_PER_S`` a second) and coalesce the updates of one object; an editor that reads
slowly gets fewer, bigger batches. Only editors that opt in (``initializationOptions.resources``)
get the notifications; ``ktl.k8s.resources`` answers the same state on request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pygls.exceptions import JsonRpcException

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.explorer import KINDS, Explorer
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.k8s.style import DIM, GREEN, RED, RESET, YELLOW
from ktl_lsp.lsp.arguments import ArgumentError, StartArgs
from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import REQUEST_FAILED, Feature, command
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.manager import LiveSession, RunSpec, TaskOutcome
from ktl_lsp.sessions.model import State

MAX_BATCHES_PER_S = 10
#: Lines one batch writes to the watch's session; the rest is counted.
LINES_PER_BATCH = 40
LIVE_SCHEME = "ktl-live"

Obj = dict[str, Any]


@dataclass
class WatchArgs(StartArgs):
    """``ktl.k8s.watch``: what to watch; answers at once (``detach``) with the watch's id."""

    context: str | None = None
    namespace: str | None = None  #: one namespace
    namespaces: list[str] | None = None  #: several; all when neither is given
    kinds: list[str] | None = None  #: plurals (``pods``) or a CRD's ``plural.group``
    detach: bool = True

    def check(self) -> None:
        if self.namespace and self.namespaces:
            raise ArgumentError("give 'namespace' or 'namespaces', not both")
        if self.kinds is not None and not self.kinds:
            raise ArgumentError("field 'kinds': must not be empty (leave it out for all)")


@dataclass
class WatchRef:
    watchId: str


@dataclass
class ObjectArgs:
    """One object of the cluster."""

    kind: str
    name: str
    namespace: str | None = None
    context: str | None = None
    apiVersion: str | None = None


@dataclass
class GetArgs(ObjectArgs):
    #: a Secret's values as they are (redacted otherwise; ``ktl.k8s.edit`` needs it for one)
    reveal: bool = False


@dataclass
class _Action(StartArgs):
    """An action on one object, run as a session."""

    kind: str
    name: str
    namespace: str | None = None
    context: str | None = None


@dataclass(kw_only=True)
class ScaleArgs(_Action):
    replicas: int

    def check(self) -> None:
        if self.replicas < 0:
            raise ArgumentError("field 'replicas': must be >= 0")


@dataclass
class RestartArgs(_Action):
    pass


@dataclass
class DeleteArgs(_Action):
    propagation: Literal["Background", "Foreground", "Orphan"] = "Background"


ActionRun = Callable[[Cluster, str], Awaitable[tuple[str, dict[str, Any]]]]


@dataclass
class Watch:
    id: str
    context: str
    explorer: Explorer
    live: LiveSession | None = None
    snapshot_sent: bool = False
    last_flush: float = 0.0
    scheduled: asyncio.TimerHandle | None = None
    sent: set[str] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)
    batches: int = 0


def live_uri(context: str, kind: str, name: str, namespace: str | None) -> str:
    """``ktl-live://<context>/<namespace or _>/<Kind>/<name>.yaml``"""
    return f"{LIVE_SCHEME}://{context}/{namespace or '_'}/{kind}/{name}.yaml"


def _label(node: Obj) -> str:
    where = f"{node['namespace']}/" if node.get("namespace") else ""
    return f"{node['kind']} {where}{node['name']}"


def _line(mark: str, node: Obj) -> str:
    colour = {"error": RED, "ok": GREEN, "pending": YELLOW, "warn": YELLOW}.get(
        str(node.get("health")), ""
    )
    bits = [str(node[k]) for k in ("status", "ready") if node.get(k)]
    if node.get("restarts"):
        bits.append(f"restarts {node['restarts']}")
    warnings = node.get("warnings") or []
    if warnings:
        bits.append(f"Warning {warnings[0].get('reason')}")
    return f"{mark} {_label(node)} {colour}{' '.join(bits)}{RESET}\r\n"


class ClusterExplorer(Feature):
    def __init__(
        self, server: KtlServer, context: KubeContext, runs: Runs, checker: Checker
    ) -> None:
        self.server = server
        self.k8s = context.k8s
        self.runs = runs
        self.checker = checker
        self.watches: dict[str, Watch] = {}
        #: Called after each batch with the watch and the uids it added, changed or deleted
        #: (None: a snapshot, everything); drift follows the cluster through it.
        self.on_batch: list[Callable[[Watch, set[str] | None], None]] = []

    # -- watches ------------------------------------------------------------------------------
    @command("ktl.k8s.watch")
    async def watch(self, a: WatchArgs) -> dict[str, Any]:
        cluster, problem = await self.k8s.cluster(a.context)
        namespaces = a.namespaces or ([a.namespace] if a.namespace else None)
        kinds = list(a.kinds or KINDS)
        shown = f" -n {','.join(namespaces)}" if namespaces else " -A"
        title = f"ktl watch {','.join(kinds) if a.kinds else 'all'}{shown}"
        meta = K8sSessions.meta(
            cluster, "ktl watch", namespaces[0] if namespaces else None, kinds=kinds
        )
        spec = RunSpec(argv=[], command=title, kind="k8s", title=title, meta=meta)
        holder: dict[str, Watch] = {}

        async def body(live: LiveSession, cluster: Cluster) -> TaskOutcome:
            w = holder["w"]
            w.explorer.cluster = cluster
            self.watches[w.id] = w
            try:
                await w.explorer.run()
            finally:
                self.watches.pop(w.id, None)
                if w.scheduled is not None:
                    w.scheduled.cancel()
            return TaskOutcome(State.DONE, 0, None)

        if cluster is None:
            live = self.k8s.start(spec, cluster, problem, body)
            return await self.runs.answer(live, a.detach)
        explorer = Explorer(cluster, kinds, namespaces)
        w = holder["w"] = Watch("", cluster.name, explorer)
        explorer.on_change = lambda: self._schedule(w)
        live = self.k8s.start(spec, cluster, problem, body)
        w.id, w.live = live.id, live
        result = await self.runs.answer(live, a.detach)
        return {**result, "watchId": live.id, "context": cluster.name}

    @command("ktl.k8s.resources")
    async def resources(self, a: WatchRef) -> dict[str, Any]:
        w = self._watch(a.watchId)
        return {
            "watchId": w.id,
            "context": w.context,
            "ready": w.explorer.ready.is_set(),
            "resources": list(w.explorer.nodes.values()),
            "streams": w.explorer.stream_states(),
        }

    def _watch(self, watch_id: str) -> Watch:
        w = self.watches.get(watch_id)
        if w is None:
            raise ArgumentError(f"field 'watchId': no running watch {watch_id}")
        return w

    def _schedule(self, w: Watch) -> None:
        if w.scheduled is not None:
            return
        delay = max(0.0, w.last_flush + 1.0 / MAX_BATCHES_PER_S - time.monotonic())
        w.scheduled = asyncio.get_running_loop().call_later(delay, self._flush, w)

    def _flush(self, w: Watch) -> None:
        w.scheduled = None
        explorer = w.explorer
        if not explorer.ready.is_set() or w.id not in self.watches:
            return
        opted_in = self.server.settings.resources
        if opted_in and self.server.editor_congested():
            w.last_flush = time.monotonic()
            self._schedule(w)  # the changes wait, coalescing, until the editor reads again
            return
        w.last_flush = time.monotonic()
        if not w.snapshot_sent:
            w.snapshot_sent = True
            snap = explorer.snapshot()
            w.sent = {n["uid"] for n in snap["resources"]}
            w.labels = {n["uid"]: _label(n) for n in snap["resources"]}
            self._record_snapshot(w, snap)
            message: Obj = {"watchId": w.id, "context": w.context, "event": "snapshot", **snap}
            touched: set[str] | None = None
        else:
            if not explorer.pending:
                return
            delta = explorer.take()
            added = [n for n in delta["updated"] if n["uid"] not in w.sent]
            updated = [n for n in delta["updated"] if n["uid"] in w.sent]
            deleted = [uid for uid in delta["deleted"] if uid in w.sent]
            for n in added:
                w.sent.add(n["uid"])
                w.labels[n["uid"]] = _label(n)
            self._record_delta(w, added, updated, deleted, delta.get("streams"))
            for uid in deleted:
                w.sent.discard(uid)
                w.labels.pop(uid, None)
            if not (added or updated or deleted or "streams" in delta):
                return
            touched = {n["uid"] for n in added + updated} | set(deleted)
            message = {"watchId": w.id, "context": w.context, "event": "delta"}
            message.update(added=added, updated=updated, deleted=deleted)
            if "streams" in delta:
                message["streams"] = delta["streams"]
        w.batches += 1
        if opted_in:
            self.server.send_raw_notification("ktl/resources", message)
        for hook in self.on_batch:
            hook(w, touched)

    def _record_snapshot(self, w: Watch, snap: Obj) -> None:
        if w.live is None:
            return
        counts: dict[str, int] = {}
        for n in snap["resources"]:
            counts[n["kind"]] = counts.get(n["kind"], 0) + 1
        text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing"
        lines = [f"{DIM}listed: {text}{RESET}\r\n"]
        lines += [_line("!", n) for n in snap["resources"] if n.get("health") == "error"]
        lines += self._stream_lines(snap["streams"])
        w.live.write("".join(lines))

    def _record_delta(
        self,
        w: Watch,
        added: list[Obj],
        updated: list[Obj],
        deleted: list[str],
        streams: list[Obj] | None,
    ) -> None:
        if w.live is None:
            return
        lines = [_line("+", n) for n in added] + [_line("~", n) for n in updated]
        lines += [f"- {w.labels.get(uid, uid)}\r\n" for uid in deleted]
        lines += self._stream_lines(streams or [])
        if len(lines) > LINES_PER_BATCH:
            more = len(lines) - LINES_PER_BATCH
            lines = [*lines[:LINES_PER_BATCH], f"{DIM}... and {more} more changes{RESET}\r\n"]
        if lines:
            w.live.write("".join(lines))

    @staticmethod
    def _stream_lines(streams: list[Obj]) -> list[str]:
        out = []
        for s in streams:
            if s["state"] in ("forbidden", "error", "retrying"):
                where = f" in {s['namespace']}" if s.get("namespace") else ""
                out.append(
                    f"{YELLOW}{s['plural']}{where}: {s['state']}{RESET} {DIM}{s.get('message') or ''}{RESET}\r\n"
                )
        return out

    # -- one object ---------------------------------------------------------------------------
    async def _cluster(self, context: str | None) -> Cluster:
        cluster, problem = await self.k8s.cluster(context)
        if cluster is None:
            raise JsonRpcException(problem or "no cluster", REQUEST_FAILED)
        return cluster

    @command("ktl.k8s.get")
    async def get(self, a: GetArgs) -> dict[str, Any]:
        from ktl_lsp.k8s.inspect import as_yaml, fetch

        cluster = await self._cluster(a.context)
        async with cluster.using():
            res, obj = await fetch(cluster, a.kind, a.name, a.namespace, a.apiVersion)
        namespace = (obj.get("metadata") or {}).get("namespace")
        return {
            "context": cluster.name,
            "kind": res.kind,
            "apiVersion": res.api_version,
            "name": a.name,
            "namespace": namespace,
            "uri": live_uri(cluster.name, res.kind, a.name, namespace),
            "yaml": await asyncio.to_thread(as_yaml, obj, a.reveal),
        }

    @command("ktl.k8s.describe")
    async def describe(self, a: ObjectArgs) -> dict[str, Any]:
        from ktl_lsp.k8s.inspect import describe

        cluster = await self._cluster(a.context)
        async with cluster.using():
            text = await describe(cluster, a.kind, a.name, a.namespace, a.apiVersion)
        return {"context": cluster.name, "text": text}

    @command("ktl.k8s.source")
    async def source(self, a: ObjectArgs) -> dict[str, Any] | None:
        """The workspace file (and the line of its name) that declares a cluster object."""
        group = (a.apiVersion or "").rpartition("/")[0]
        if not a.apiVersion:
            for av, kind, _ in KINDS.values():
                if kind == a.kind:
                    group = av.rpartition("/")[0]
        placed = await asyncio.to_thread(self.checker.workspace.objects, a.kind, group)
        default = self.k8s.clusters.default_namespace or "default"
        for p in placed:
            s = p.summary
            if s.name != a.name:
                continue
            if not s.cluster_scoped and (s.namespace or default) != (a.namespace or default):
                continue
            r = p.name_range
            return {
                "uri": Path(p.path).as_uri(),
                "range": {
                    "start": {"line": r.start.line, "character": r.start.character},
                    "end": {"line": r.end.line, "character": r.end.character},
                },
            }
        return None

    # -- actions ------------------------------------------------------------------------------
    async def _act(self, name: str, title: str, a: _Action, run: ActionRun) -> dict[str, Any]:
        """Runs an action on an object as a session (through ``K8sSessions.start``, like every
        change to a cluster): ``run(cluster, namespace)`` answers its line and result extra."""
        cluster, problem = await self.k8s.cluster(a.context)
        meta = K8sSessions.meta(cluster, name, self.k8s.namespace(cluster, a.namespace))
        spec = RunSpec(argv=[], command=title, kind="k8s", title=title, meta=meta)

        async def body(live: LiveSession, cluster: Cluster) -> TaskOutcome:
            said, extra = await run(cluster, self.k8s.namespace(cluster, a.namespace))
            live.write(f"{GREEN}{a.kind}/{a.name} {said}{RESET}\r\n")
            return TaskOutcome(State.DONE, 0, None, extra)

        live = self.k8s.start(spec, cluster, problem, body)
        return await self.runs.follow(live, a, a.detach)

    @command("ktl.k8s.scale")
    async def scale(self, a: ScaleArgs) -> dict[str, Any]:
        from ktl_lsp.k8s import inspect

        async def run(cluster: Cluster, ns: str) -> tuple[str, dict[str, Any]]:
            before, _ = await inspect.scale(cluster, a.kind, a.name, ns, a.replicas)
            return f"scaled {before} -> {a.replicas}", {"before": before, "replicas": a.replicas}

        title = f"ktl scale {a.kind.lower()}/{a.name} --replicas={a.replicas}"
        return await self._act("ktl scale", title, a, run)

    @command("ktl.k8s.restart")
    async def restart(self, a: RestartArgs) -> dict[str, Any]:
        from ktl_lsp.k8s import inspect

        async def run(cluster: Cluster, ns: str) -> tuple[str, dict[str, Any]]:
            await inspect.restart(cluster, a.kind, a.name, ns)
            return "restarted", {}

        title = f"ktl rollout-restart {a.kind.lower()}/{a.name}"
        return await self._act("ktl rollout-restart", title, a, run)

    @command("ktl.k8s.delete")
    async def delete(self, a: DeleteArgs) -> dict[str, Any]:
        from ktl_lsp.k8s import inspect

        async def run(cluster: Cluster, ns: str) -> tuple[str, dict[str, Any]]:
            await inspect.delete(cluster, a.kind, a.name, ns, a.propagation)
            return f"deleted ({a.propagation})", {}

        title = f"ktl delete {a.kind.lower()}/{a.name} --cascade={a.propagation.lower()}"
        return await self._act("ktl delete", title, a, run)
