"""Kubernetes commands (docs/protocol.md): each run is a recorded session of kind ``k8s``.

``ktl.apply``, ``ktl.diff``, ``ktl.delete`` work on the documents of a manifest file (the
editor's buffer when it is open); ``ktl.logs``, ``ktl.verify`` and ``ktl.events`` watch what runs.
API errors with a field become ``k8s-api-error`` diagnostics on the manifest, replaced by the
next run on that document. The arguments are the ones the CodeLens sends (``uri`` +
``documents``; ``pod``/``workload``). Which cluster, which namespace and how a failure ends the
session are the :class:`K8sSessions` service's (``ktl_lsp/k8s/sessions.py``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pygls.uris import to_fs_path

from ktl_lsp.aio import import_off_loop
from ktl_lsp.checks.findings import Finding
from ktl_lsp.errors import UserError
from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.guard import Mutation
from ktl_lsp.k8s.sessions import Body, K8sSessions, dry_run_preview, outcome_summary
from ktl_lsp.k8s.style import BOLD, DIM, GREEN, RED, RESET
from ktl_lsp.lsp.arguments import ArgumentError, StartArgs, parse
from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.features.cluster_crds import ClusterCrds
from ktl_lsp.lsp.features.helm import HelmCharts, HelmRenderArgs
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.manager import LiveSession, RunSpec, TaskOutcome
from ktl_lsp.sessions.model import State

if TYPE_CHECKING:
    from ktl_lsp.k8s import ops
    from ktl_lsp.k8s.manifests import Manifest
    from ktl_lsp.k8s.verify import ObjectRef, Verdict


# -- arguments ---------------------------------------------------------------------------------
@dataclass
class FileArgs(StartArgs):
    """``ktl.apply`` / ``ktl.diff`` / ``ktl.delete``: documents of one manifest file."""

    uri: str
    documents: list[int] | None = None  #: 0-based document indexes; all when absent
    context: str | None = None
    namespace: str | None = None  #: for documents that name none (else the context's)
    dryRun: bool = False  #: server-side dry run (dryRun=All): nothing is persisted
    force: bool = False  #: apply only: take over fields another field manager owns
    atomic: bool = False  #: apply only: send nothing when any document cannot be sent
    propagation: Literal["Background", "Foreground", "Orphan"] = "Background"  #: delete only
    #: apply and diff of a chart (``uri`` a file of it): values files over its defaults, ``set``
    #: entries and the release name it is rendered as (namespace: ``namespace``)
    valuesFiles: list[str] = field(default_factory=list)
    set: dict[str, str | int | float | bool] = field(default_factory=dict)
    release: str = "release-name"

    def check(self) -> None:
        if any(i < 0 for i in self.documents or []):
            raise ArgumentError("field 'documents': indexes are 0-based and not negative")


@dataclass
class LogsArgs(StartArgs):
    """``ktl.logs``: exactly one of ``pod``, ``workload`` ("deployment/web"), ``selector``."""

    pod: str | None = None
    workload: str | None = None
    selector: str | None = None
    namespace: str | None = None
    container: str | None = None  #: one container; all when absent
    follow: bool = True
    tailLines: int | None = 100
    sinceSeconds: int | None = None
    highlight: list[str] = field(default_factory=list)
    context: str | None = None

    def check(self) -> None:
        given = [n for n in ("pod", "workload", "selector") if getattr(self, n)]
        if len(given) != 1:
            raise ArgumentError("exactly one of 'pod', 'workload' or 'selector' is required")
        if self.tailLines is not None and self.tailLines < 0:
            raise ArgumentError("field 'tailLines': must be >= 0")
        if self.sinceSeconds is not None and self.sinceSeconds <= 0:
            raise ArgumentError("field 'sinceSeconds': must be positive")


@dataclass
class ResourceRef:
    kind: str
    name: str
    namespace: str | None = None
    apiVersion: str | None = None


@dataclass
class VerifyArgs(StartArgs):
    uri: str | None = None
    documents: list[int] | None = None
    resources: list[dict[str, Any]] | None = None  #: [{kind, name, namespace?, apiVersion?}]
    timeoutS: float = 120.0
    eventsWindowS: float = 900.0
    denyReasons: list[str] = field(default_factory=list)
    allowReasons: list[str] = field(default_factory=list)
    context: str | None = None
    namespace: str | None = None

    def check(self) -> None:
        if (self.uri is None) == (self.resources is None):
            raise ArgumentError("exactly one of 'uri' or 'resources' is required")
        if self.timeoutS <= 0:
            raise ArgumentError("field 'timeoutS': must be positive")
        if self.eventsWindowS <= 0:
            raise ArgumentError("field 'eventsWindowS': must be positive")

    def refs(self) -> list[ResourceRef]:
        out = []
        for i, r in enumerate(self.resources or []):
            try:
                out.append(parse(ResourceRef, [r]))
            except ArgumentError as exc:
                raise ArgumentError(f"field 'resources[{i}]': {exc}") from exc
        return out


@dataclass
class EventsArgs(StartArgs):
    namespace: str | None = None
    uri: str | None = None
    documents: list[int] | None = None
    follow: bool = True
    context: str | None = None

    def check(self) -> None:
        if self.namespace is not None and self.uri is not None:
            raise ArgumentError("give 'namespace' or 'uri', not both")


# -- the feature -------------------------------------------------------------------------------
class K8sCommands(Feature):
    def __init__(
        self,
        server: KtlServer,
        context: KubeContext,
        crds: ClusterCrds,
        checker: Checker,
        runs: Runs,
        helm: HelmCharts,
    ) -> None:
        self.server = server
        self.helm = helm
        self.k8s = context.k8s
        self.crds = crds
        self.checker = checker
        self.runs = runs

    @command("ktl.apply")
    async def apply(self, a: FileArgs) -> dict[str, Any]:
        return await self._file_operation("apply", a)

    @command("ktl.diff")
    async def diff(self, a: FileArgs) -> dict[str, Any]:
        return await self._file_operation("diff", a)

    @command("ktl.delete")
    async def delete(self, a: FileArgs) -> dict[str, Any]:
        return await self._file_operation("delete", a)

    @command("ktl.logs")
    async def logs(self, a: LogsArgs) -> dict[str, Any]:
        cluster, problem = await self.k8s.cluster(a.context)
        namespace = self.k8s.namespace(cluster, a.namespace)
        target = a.pod or a.workload or f"-l {a.selector}"
        title = (
            f"ktl logs {target}"
            + (" -f" if a.follow else "")
            + (f" -c {a.container}" if a.container else "")
        )
        spec = _spec(title, K8sSessions.meta(cluster, "ktl logs", namespace))
        body = functools.partial(_follow_logs, a, namespace)
        return await self._start(spec, cluster, problem, body, a)

    @command("ktl.verify")
    async def verify(self, a: VerifyArgs) -> dict[str, Any]:
        selected: list[Manifest]
        cluster, problem = await self.k8s.cluster(a.context)
        namespace = self.k8s.preferred_namespace(a.namespace)
        text, selected = "", []
        targets: list[ObjectRef]
        if a.uri is not None:
            text, selected = await self._documents(a.uri, a.documents)
            targets = _targets(selected, namespace)
        else:
            targets = _ref_targets(a.refs(), namespace)
        shown = _short(a.uri) if a.uri else ", ".join(t.label for t in targets)
        spec = _spec(f"ktl verify {shown}", K8sSessions.meta(cluster, "ktl verify", namespace))
        body = functools.partial(self._run_verify, a, targets, selected, text)
        return await self._start(spec, cluster, problem, body, a)

    @command("ktl.events")
    async def events(self, a: EventsArgs) -> dict[str, Any]:
        cluster, problem = await self.k8s.cluster(a.context)
        namespace = self.k8s.namespace(cluster, a.namespace)
        targets: list[ObjectRef] | None = None
        if a.uri is not None:
            _, selected = await self._documents(a.uri, a.documents)
            targets = _targets(selected, namespace)
            names = {t.namespace for t in targets if t.namespace}
            if len(names) == 1:
                namespace = names.pop() or namespace
        title = (
            f"ktl events -n {namespace}"
            + (f" ({_short(a.uri)})" if a.uri else "")
            + (" -w" if a.follow else "")
        )
        spec = _spec(title, K8sSessions.meta(cluster, "ktl events", namespace))
        body = functools.partial(_watch_events, a, namespace, targets)
        return await self._start(spec, cluster, problem, body, a)

    # -- what the commands share ------------------------------------------------------------
    async def _start(
        self, spec: RunSpec, cluster: Cluster | None, problem: str | None, body: Body, a: StartArgs
    ) -> dict[str, Any]:
        live = self.k8s.start(spec, cluster, problem, body)
        return await self.runs.follow(live, a, a.detach)

    async def _documents(
        self, uri: str, documents: list[int] | None, with_objects: bool = True
    ) -> tuple[str, list[Manifest]]:
        """The text of ``uri`` (the editor's buffer when open) and the selected documents."""
        text = await asyncio.to_thread(self._read, uri)
        selected = _select(await _load(text), documents)
        return text, [m for m in selected if m.obj is not None] if with_objects else selected

    def _read(self, uri: str) -> str:
        doc = self.checker.document(uri)
        if doc is not None:
            return doc.source
        try:
            fs_path = to_fs_path(uri)
        except Exception as exc:
            raise ArgumentError(f"field 'uri': not a file uri: {uri}") from exc
        if not fs_path:
            raise ArgumentError(f"field 'uri': not a file uri: {uri}")
        try:
            return Path(fs_path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ArgumentError(f"field 'uri': cannot read {fs_path}: {exc}") from exc

    def _publish(
        self,
        uri: str,
        text: str,
        owner: str,
        selected: list[Manifest],
        by_doc: dict[int, list[Finding]],
    ) -> None:
        """Findings from the cluster on the documents they are about (until the next run)."""
        for m in selected:
            self.checker.set_extra(uri, f"{owner}#{m.index}", by_doc.get(m.index, []), text)
        self._refresh_lenses()

    def _refresh_lenses(self) -> None:
        """Asks the editor to re-read CodeLenses (the history lens shows the last outcome)."""
        self.server.refresh_code_lenses()

    # -- apply, diff, delete ------------------------------------------------------------------
    async def _file_operation(self, name: str, a: FileArgs) -> dict[str, Any]:
        chart = await asyncio.to_thread(self.helm.chart_of, a.uri) if name != "delete" else None
        if chart is not None:
            return await self._chart_operation(name, a, chart)
        text, selected = await self._documents(a.uri, a.documents, with_objects=False)
        cluster, problem = await self.k8s.cluster(a.context)
        from ktl_lsp.k8s import ops

        namespace = self.k8s.preferred_namespace(a.namespace)
        opts = ops.Options(namespace, a.dryRun, a.force, a.atomic, a.propagation)
        named = {m.namespace for m in selected if m.namespace}
        shown = namespace or (named.pop() if len(named) == 1 else None)
        flags = " --dry-run=server" if a.dryRun else ""
        flags += " --force-conflicts" if a.force and name == "apply" else ""
        title = f"ktl {name} -f {_short(a.uri)}{flags}"
        meta = K8sSessions.meta(cluster, f"ktl {name}", shown, uri=a.uri, documents=a.documents)
        meta.update(_dry_run(a))
        body = functools.partial(self._run_file_operation, name, a, text, selected, opts, title)
        mutation, preview = None, None
        if name != "diff" and not a.dryRun:
            count = len(selected)
            what = f"{count} object{'s' if count != 1 else ''}"
            mutation = Mutation(name.capitalize(), what, "to" if name == "apply" else "from")
            if name == "apply":
                preview = functools.partial(dry_run_preview, selected, opts)
        live = self.k8s.start(_spec(title, meta), cluster, problem, body, mutation, preview)
        return await self.runs.follow(live, a, a.detach)

    async def _chart_operation(self, name: str, a: FileArgs, chart: Path) -> dict[str, Any]:
        """Apply or diff what the chart renders (CRDs included, as `helm install` and ktl send
        them), as the documents of a manifest file are; the chart's files get no diagnostics
        from the cluster (their lines are not the rendered ones), the session says it all."""
        if a.documents is not None:
            raise ArgumentError("field 'documents': not for a chart (it is sent whole)")
        cluster, problem = await self.k8s.cluster(a.context)
        namespace = self.k8s.namespace(cluster, a.namespace)
        args = HelmRenderArgs(a.uri, a.valuesFiles, a.set, a.release, namespace)
        _, rendered = await self.helm.render_for(args, include_crds=True)
        if rendered.error is not None:
            error = rendered.error
            where = (
                f"{error.template}:{error.line + 1}: "
                if error.template and error.line is not None
                else ""
            )
            raise UserError(f"the chart does not render: {where}{error.message}")
        text = rendered_stream(rendered.manifests)
        selected = await _load(text)
        from ktl_lsp.k8s import ops

        opts = ops.Options(namespace, a.dryRun, a.force, False, a.propagation)
        flags = "".join(f" -f {Path(v).name}" for v in a.valuesFiles)
        flags += "".join(f" --set {k}={v}" for k, v in a.set.items())
        flags += " --dry-run=server" if a.dryRun else ""
        flags += " --force-conflicts" if a.force and name == "apply" else ""
        title = f"ktl {name} --chart {chart.name} {a.release}{flags}"
        meta = K8sSessions.meta(
            cluster, f"ktl {name}", namespace, uri=a.uri, chart=str(chart), release=a.release
        )
        meta.update(_dry_run(a))
        body = functools.partial(
            self._run_file_operation, name, a, text, selected, opts, title, publish=False
        )
        return await self._start(_spec(title, meta), cluster, problem, body, a)

    async def _run_file_operation(
        self,
        name: str,
        a: FileArgs,
        text: str,
        selected: list[Manifest],
        opts: ops.Options,
        title: str,
        live: LiveSession,
        cluster: Cluster,
        publish: bool = True,
    ) -> TaskOutcome:
        from ktl_lsp.k8s import ops

        live.write(f"{BOLD}{title}{RESET}\r\n")
        operation = {"apply": ops.apply, "diff": ops.diff, "delete": ops.delete}[name]
        started = time.monotonic()
        outcomes = await operation(cluster, selected, opts, live)
        by_doc: dict[int, list[Finding]] = {}
        for o in outcomes:
            by_doc.setdefault(o.manifest.index, []).extend(o.findings)
        if not publish:
            self._refresh_lenses()
        elif name != "delete" or any(by_doc.values()):
            self._publish(a.uri, text, "k8s-api", selected, by_doc)
        else:
            self._refresh_lenses()
        failed = [o for o in outcomes if o.action == "failed"]
        elapsed = time.monotonic() - started
        live.write(
            f"{RED if failed else GREEN}{outcome_summary(outcomes)}{RESET} "
            f"{DIM}in {elapsed:.2f}s, {cluster.requests} requests{RESET}\r\n"
        )
        if name == "apply" and not a.dryRun and outcomes:
            self.crds.learn_soon(a.context)  # new CRDs make their resources checkable
        extra: dict[str, Any] = {"resources": [o.to_lsp() for o in outcomes]}
        if name == "diff":
            extra["diff"] = "".join(o.diff for o in outcomes)
            extra["changed"] = sum(1 for o in outcomes if o.diff)
        if failed:
            why = f"{len(failed)} of {len(outcomes)} failed: {failed[0].message}"
            return TaskOutcome(State.ERROR, 1, why, extra)
        return TaskOutcome(State.DONE, 0, None, extra)

    # -- verify -------------------------------------------------------------------------------
    async def _run_verify(
        self,
        a: VerifyArgs,
        targets: list[ObjectRef],
        selected: list[Manifest],
        text: str,
        live: LiveSession,
        cluster: Cluster,
    ) -> TaskOutcome:
        from ktl_lsp.k8s.verify import VerifyOptions, verify

        opts = VerifyOptions(a.timeoutS, a.eventsWindowS, a.denyReasons, a.allowReasons)
        verdict = await verify(cluster, targets, opts, live)
        if a.uri is not None:
            self._publish(a.uri, text, "k8s-verify", selected, _verify_findings(verdict, selected))
        return verdict.outcome()


# -- helpers --------------------------------------------------------------------------------------
def _dry_run(a: FileArgs) -> dict[str, Any]:
    """Meta saying nothing was persisted (the audit trail leaves such runs out)."""
    return {"dryRun": True} if a.dryRun else {}


def _spec(title: str, meta: dict[str, Any]) -> RunSpec:
    return RunSpec(argv=[], command=title, kind="k8s", title=title, meta=meta)


async def _load(text: str) -> list[Manifest]:
    """The documents of a manifest file, parsed in a thread. The manifest, YAML and operation
    modules are imported there on first use: start-up does not need them."""
    await import_off_loop("ktl_lsp.k8s.ops", "ktl_lsp.k8s.manifests")
    from ktl_lsp.k8s.manifests import load

    return (await asyncio.to_thread(load, text))[1]


def rendered_stream(manifests: dict[str, str]) -> str:
    """A render's manifests as one multi-document file, as `helm template` prints them."""
    return "".join(
        f"---\n# Source: {name}\n{text.rstrip()}\n" for name, text in sorted(manifests.items())
    )


def _select(manifests: list[Manifest], documents: list[int] | None) -> list[Manifest]:
    if documents is None:
        return manifests
    out = []
    for i in documents:
        if i >= len(manifests):
            raise ArgumentError(
                f"field 'documents': no document {i} (the file has {len(manifests)})"
            )
        out.append(manifests[i])
    return out


def _targets(selected: list[Manifest], namespace: str | None) -> list[ObjectRef]:
    from ktl_lsp.k8s.verify import ObjectRef

    return [
        ObjectRef(m.kind, m.name, m.namespace or namespace, m.api_version, m.index)
        for m in selected
    ]


def _ref_targets(refs: list[ResourceRef], namespace: str | None) -> list[ObjectRef]:
    from ktl_lsp.k8s.verify import ObjectRef

    return [ObjectRef(r.kind, r.name, r.namespace or namespace, r.apiVersion or "") for r in refs]


def _short(uri: str) -> str:
    return os.path.basename(to_fs_path(uri) or uri)


def _verify_findings(verdict: Verdict, selected: list[Manifest]) -> dict[int, list[Finding]]:
    """Verify's findings as diagnostics on the documents of the objects they are about."""
    from ktl_lsp.k8s.fieldpath import doc_anchor

    docs = {m.index: m for m in selected}
    by_doc: dict[int, list[Finding]] = {}
    for f in verdict.findings:
        m = docs.get(f.target.document) if f.target.document is not None else None
        if m is not None:
            severity: Any = "error" if f.severity == "error" else "warning"
            message = f"verify: {f.reason}: {f.message}"
            by_doc.setdefault(m.index, []).append(
                Finding(doc_anchor(m.doc), severity, "k8s-verify", message)
            )
    return by_doc


async def _follow_logs(
    a: LogsArgs, namespace: str, live: LiveSession, cluster: Cluster
) -> TaskOutcome:
    from ktl_lsp.k8s.logs import LogFollower, LogRequest

    req = LogRequest(
        namespace,
        a.pod,
        a.selector,
        a.workload,
        a.container,
        a.follow,
        a.tailLines,
        a.sinceSeconds,
        a.highlight,
    )
    lines = await LogFollower(cluster, req, live).run()
    return TaskOutcome(State.DONE, 0, None, {"lines": lines})


async def _watch_events(
    a: EventsArgs,
    namespace: str,
    targets: list[ObjectRef] | None,
    live: LiveSession,
    cluster: Cluster,
) -> TaskOutcome:
    from ktl_lsp.k8s.events import events

    shown = await events(cluster, namespace, live, a.follow, targets)
    return TaskOutcome(State.DONE, 0, None, {"events": shown})
