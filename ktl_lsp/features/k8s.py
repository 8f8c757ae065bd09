"""Kubernetes commands (PROTOCOL.md section 1, "Kubernetes"): each run is a recorded session.

``ktl.k8s.contexts`` and ``ktl.k8s.use`` pick the cluster; ``ktl.apply``, ``ktl.diff``,
``ktl.delete`` work on the documents of a manifest file (the editor's buffer when it is open);
``ktl.logs``, ``ktl.verify`` and ``ktl.events`` watch what runs. API errors with a field become
``k8s-api-error`` diagnostics on the manifest, replaced by the next run on that document.
The arguments are the ones the CodeLens sends (``uri`` + ``documents``; ``pod``/``workload``).
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pygls.uris import to_fs_path

from ktl_lsp.aio import import_off_loop
from ktl_lsp.checks.findings import Finding
from ktl_lsp.features.arguments import ArgumentError, parse
from ktl_lsp.features.cluster_crds import learn_soon
from ktl_lsp.features.diagnostics import checker_of
from ktl_lsp.features.sessions import follow
from ktl_lsp.k8s.client import Cluster, Clusters
from ktl_lsp.k8s.errors import ConfigError, K8sError
from ktl_lsp.server import KtlServer
from ktl_lsp.sessions.manager import LiveSession, RunSpec, TaskOutcome
from ktl_lsp.sessions.model import State

if TYPE_CHECKING:
    from ktl_lsp.k8s import ops
    from ktl_lsp.k8s.manifests import Manifest

BOLD, DIM, RED, GREEN, RESET = "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[0m"


# -- arguments ---------------------------------------------------------------------------------
@dataclass
class UseArgs:
    """``ktl.k8s.use``: the context and namespace for this workspace's commands."""

    context: str | None = None  #: a kubeconfig context; "" goes back to the current-context
    namespace: str | None = None  #: default namespace; "" goes back to the context's


@dataclass
class FileArgs:
    """``ktl.apply`` / ``ktl.diff`` / ``ktl.delete``: documents of one manifest file."""

    uri: str
    documents: list[int] | None = None  #: 0-based document indexes; all when absent
    context: str | None = None
    namespace: str | None = None  #: for documents that name none (else the context's)
    dryRun: bool = False  #: server-side dry run (dryRun=All): nothing is persisted
    force: bool = False  #: apply only: take over fields another field manager owns
    atomic: bool = False  #: apply only: send nothing when any document cannot be sent
    propagation: Literal["Background", "Foreground", "Orphan"] = "Background"  #: delete only
    detach: bool = False
    workDoneToken: int | str | None = None

    def check(self) -> None:
        if any(i < 0 for i in self.documents or []):
            raise ArgumentError("field 'documents': indexes are 0-based and not negative")


@dataclass
class LogsArgs:
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
    detach: bool = False
    workDoneToken: int | str | None = None

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
class VerifyArgs:
    uri: str | None = None
    documents: list[int] | None = None
    resources: list[dict[str, Any]] | None = None  #: [{kind, name, namespace?, apiVersion?}]
    timeoutS: float = 120.0
    eventsWindowS: float = 900.0
    denyReasons: list[str] = field(default_factory=list)
    allowReasons: list[str] = field(default_factory=list)
    context: str | None = None
    namespace: str | None = None
    detach: bool = False
    workDoneToken: int | str | None = None

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
class EventsArgs:
    namespace: str | None = None
    uri: str | None = None
    documents: list[int] | None = None
    follow: bool = True
    context: str | None = None
    detach: bool = False
    workDoneToken: int | str | None = None

    def check(self) -> None:
        if self.namespace is not None and self.uri is not None:
            raise ArgumentError("give 'namespace' or 'uri', not both")


@dataclass
class NoArgs:
    pass


# -- per-server state -----------------------------------------------------------------------------
@dataclass
class LastRun:
    action: str  #: "applied", "apply failed", "diffed", "deleted", ...
    session_id: str
    at: float


@dataclass
class K8sState:
    clusters: Clusters = field(default_factory=Clusters)
    #: (uri, document) -> the last apply/diff/delete/verify of that document (for CodeLens)
    last: dict[tuple[str, int], LastRun] = field(default_factory=dict)


_states: weakref.WeakKeyDictionary[KtlServer, K8sState] = weakref.WeakKeyDictionary()


def state_of(server: KtlServer) -> K8sState:
    found = _states.get(server)
    if found is None:
        found = _states[server] = K8sState()
    return found


def last_run(server: KtlServer, uri: str, document: int) -> LastRun | None:
    """The last outcome of a document (for a lens such as "applied 2 min ago")."""
    return state_of(server).last.get((uri, document))


# -- helpers ------------------------------------------------------------------------------------
def _read(ls: KtlServer, uri: str) -> str:
    doc = checker_of(ls).document(uri)
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


async def _load(text: str) -> list[Manifest]:
    """The documents of a manifest file, parsed in a thread. The manifest, YAML and operation
    modules are imported there on first use: start-up does not need them."""
    await import_off_loop("ktl_lsp.k8s.ops", "ktl_lsp.k8s.manifests")
    from ktl_lsp.k8s.manifests import load

    return (await asyncio.to_thread(load, text))[1]


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


def _short(uri: str) -> str:
    path = to_fs_path(uri) or uri
    return os.path.basename(path)


async def cluster_of(ls: KtlServer, context: str | None) -> tuple[Cluster | None, str | None]:
    try:
        return await state_of(ls).clusters.get(context), None
    except ConfigError as exc:
        return None, str(exc)


def namespace_of(ls: KtlServer, cluster: Cluster | None, given: str | None) -> str:
    """The namespace a command works in: the argument, the workspace's pick, the context's."""
    return (
        given
        or state_of(ls).clusters.default_namespace
        or (cluster.default_namespace if cluster else "default")
    )


def session_meta(
    cluster: Cluster | None, command: str, namespace: str | None, **more: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"command": command, **more}
    if cluster is not None:
        meta.update(
            cluster=cluster.context.cluster,
            kubeContext=cluster.name,
            namespace=namespace or cluster.default_namespace,
        )
    return meta


async def start_k8s_session(
    ls: KtlServer,
    spec: RunSpec,
    cluster: Cluster | None,
    problem: str | None,
    body: Callable[[LiveSession, Cluster], Awaitable[TaskOutcome]],
    detach: bool,
    token: int | str | None,
) -> dict[str, Any]:
    """Runs ``body`` as a k8s session; cluster errors end it as error with a clear message."""

    async def work(live: LiveSession) -> TaskOutcome:
        if cluster is None:
            live.write(f"{RED}error: {problem}{RESET}\r\n")
            return TaskOutcome(State.ERROR, 1, problem)
        live.write(f"{DIM}context {cluster.name} ({cluster.context.cluster}){RESET}\r\n")
        try:
            async with cluster.using():
                return await body(live, cluster)
        except K8sError as exc:
            live.write(f"{RED}error: {exc}{RESET}\r\n")
            return TaskOutcome(State.ERROR, 1, str(exc))

    live = ls.manager.start_task(spec, work)
    return await follow(ls, live, detach=detach, token=token)


def _summary(outcomes: list[ops.Outcome]) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    return ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to do"


def _refresh_lenses(ls: KtlServer) -> None:
    """Asks the editor to re-read CodeLenses (their titles can show the last outcome)."""
    caps = ls.client_capabilities
    ws = caps.workspace if caps else None
    if not (ws and ws.code_lens and ws.code_lens.refresh_support):
        return
    try:
        fut = ls.workspace_code_lens_refresh(None)
    except Exception:
        return
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())


def _publish(
    ls: KtlServer,
    uri: str,
    text: str,
    owner: str,
    selected: list[Manifest],
    by_doc: dict[int, list[Finding]],
) -> None:
    checker = checker_of(ls)
    for m in selected:
        checker.set_extra(uri, f"{owner}#{m.index}", by_doc.get(m.index, []), text)


# -- commands -----------------------------------------------------------------------------------
def setup(server: KtlServer) -> None:
    @server.command("ktl.k8s.contexts")
    async def contexts(ls: KtlServer, *args: Any) -> dict[str, Any]:
        parse(NoArgs, args)
        st = state_of(ls)
        try:
            config = await st.clusters.config()
        except ConfigError as exc:
            return {"current": None, "contexts": [], "error": str(exc)}
        current = st.clusters.default_context or config.current
        return {
            "current": current,
            "kubeconfig": list(config.files),
            "namespace": st.clusters.default_namespace,
            "contexts": [c.to_lsp() for c in config.contexts],
        }

    @server.command("ktl.k8s.use")
    async def use(ls: KtlServer, *args: Any) -> dict[str, Any]:
        a = parse(UseArgs, args)
        st = state_of(ls)
        if a.context is not None:
            if a.context:
                try:
                    config = await st.clusters.config()
                    config.context(a.context)
                except ConfigError as exc:
                    raise ArgumentError(f"field 'context': {exc}") from exc
            st.clusters.default_context = a.context or None
        if a.namespace is not None:
            st.clusters.default_namespace = a.namespace or None
        if a.context is not None:
            learn_soon(ls)
        return {"context": st.clusters.default_context, "namespace": st.clusters.default_namespace}

    def file_command(name: str, verb: str) -> None:
        @server.command(f"ktl.{name}")
        async def run(ls: KtlServer, *args: Any) -> dict[str, Any]:
            a = parse(FileArgs, args)
            text = await asyncio.to_thread(_read, ls, a.uri)
            manifests = await _load(text)
            selected = _select(manifests, a.documents)
            st = state_of(ls)
            cluster, problem = await cluster_of(ls, a.context)
            namespace = a.namespace or st.clusters.default_namespace
            from ktl_lsp.k8s import ops

            opts = ops.Options(namespace, a.dryRun, a.force, a.atomic, a.propagation)
            named = {m.namespace for m in selected if m.namespace}
            shown = namespace or (named.pop() if len(named) == 1 else None)
            flags = " --dry-run=server" if a.dryRun else ""
            flags += " --force-conflicts" if a.force and name == "apply" else ""
            command = f"ktl {name} -f {_short(a.uri)}{flags}"
            spec = RunSpec(
                argv=[],
                command=command,
                kind="k8s",
                title=command,
                meta=session_meta(cluster, f"ktl {name}", shown, uri=a.uri, documents=a.documents),
            )

            async def body(live: LiveSession, cluster: Cluster) -> TaskOutcome:
                live.write(f"{BOLD}{command}{RESET}\r\n")
                operation = {"apply": ops.apply, "diff": ops.diff, "delete": ops.delete}[name]
                started = time.monotonic()
                outcomes = await operation(cluster, selected, opts, live)
                by_doc: dict[int, list[Finding]] = {}
                for o in outcomes:
                    by_doc.setdefault(o.manifest.index, []).extend(o.findings)
                if name != "delete" or any(by_doc.values()):
                    _publish(ls, a.uri, text, "k8s-api", selected, by_doc)
                failed = [o for o in outcomes if o.action == "failed"]
                summary = _summary(outcomes)
                live.write(
                    f"{RED if failed else GREEN}{summary}{RESET} {DIM}in {time.monotonic() - started:.2f}s, {cluster.requests} requests{RESET}\r\n"
                )
                now = time.time()
                for o in outcomes:
                    word = (
                        f"{verb} failed"
                        if o.action == "failed"
                        else ("diffed" if name == "diff" else o.action)
                    )
                    st.last[(a.uri, o.manifest.index)] = LastRun(word, live.id, now)
                _refresh_lenses(ls)
                if name == "apply" and not a.dryRun and outcomes:
                    learn_soon(ls, a.context)  # new CRDs make their resources checkable
                extra: dict[str, Any] = {"resources": [o.to_lsp() for o in outcomes]}
                if name == "diff":
                    extra["diff"] = "".join(o.diff for o in outcomes)
                    extra["changed"] = sum(1 for o in outcomes if o.diff)
                if failed:
                    return TaskOutcome(
                        State.ERROR,
                        1,
                        f"{len(failed)} of {len(outcomes)} failed: {failed[0].message}",
                        extra,
                    )
                return TaskOutcome(State.DONE, 0, None, extra)

            return await start_k8s_session(
                ls, spec, cluster, problem, body, a.detach, a.workDoneToken
            )

    file_command("apply", "apply")
    file_command("diff", "diff")
    file_command("delete", "delete")

    @server.command("ktl.logs")
    async def logs(ls: KtlServer, *args: Any) -> dict[str, Any]:
        from ktl_lsp.k8s.logs import LogFollower, LogRequest

        a = parse(LogsArgs, args)
        cluster, problem = await cluster_of(ls, a.context)
        namespace = namespace_of(ls, cluster, a.namespace)
        target = a.pod or a.workload or f"-l {a.selector}"
        command = (
            f"ktl logs {target}"
            + (" -f" if a.follow else "")
            + (f" -c {a.container}" if a.container else "")
        )
        spec = RunSpec(
            argv=[],
            command=command,
            kind="k8s",
            title=command,
            meta=session_meta(cluster, "ktl logs", namespace),
        )

        async def body(live: LiveSession, cluster: Cluster) -> TaskOutcome:
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
            follower = LogFollower(cluster, req, live)
            lines = await follower.run()
            return TaskOutcome(State.DONE, 0, None, {"lines": lines})

        return await start_k8s_session(ls, spec, cluster, problem, body, a.detach, a.workDoneToken)

    @server.command("ktl.verify")
    async def verify(ls: KtlServer, *args: Any) -> dict[str, Any]:
        from ktl_lsp.k8s.verify import Target, VerifyOptions
        from ktl_lsp.k8s.verify import verify as run_verify

        a = parse(VerifyArgs, args)
        st = state_of(ls)
        cluster, problem = await cluster_of(ls, a.context)
        namespace = a.namespace or st.clusters.default_namespace
        targets: list[Target] = []
        selected: list[Manifest] = []
        text = ""
        if a.uri is not None:
            text = await asyncio.to_thread(_read, ls, a.uri)
            manifests = await _load(text)
            selected = [m for m in _select(manifests, a.documents) if m.obj is not None]
            targets = [
                Target(m.kind, m.name, m.namespace or namespace, m.api_version, m.index)
                for m in selected
            ]
        else:
            targets = [
                Target(r.kind, r.name, r.namespace or namespace, r.apiVersion or "")
                for r in a.refs()
            ]
        title = f"ktl verify {_short(a.uri) if a.uri else ', '.join(t.label for t in targets)}"
        spec = RunSpec(
            argv=[],
            command=title,
            kind="k8s",
            title=title,
            meta=session_meta(cluster, "ktl verify", namespace),
        )

        async def body(live: LiveSession, cluster: Cluster) -> TaskOutcome:
            from ktl_lsp.k8s.fieldpath import doc_anchor

            opts = VerifyOptions(a.timeoutS, a.eventsWindowS, a.denyReasons, a.allowReasons)
            verdict = await run_verify(cluster, targets, opts, live)
            if a.uri is not None:
                by_doc: dict[int, list[Finding]] = {}
                docs = {m.index: m for m in selected}
                for f in verdict.findings:
                    m = docs.get(f.target.document) if f.target.document is not None else None
                    if m is not None:
                        sev: Any = "error" if f.severity == "error" else "warning"
                        by_doc.setdefault(m.index, []).append(
                            Finding(
                                doc_anchor(m.doc),
                                sev,
                                "k8s-verify",
                                f"verify: {f.reason}: {f.message}",
                            )
                        )
                _publish(ls, a.uri, text, "k8s-verify", selected, by_doc)
                now = time.time()
                for m in selected:
                    st.last[(a.uri, m.index)] = LastRun(
                        "verified" if verdict.passed else "verify failed", live.id, now
                    )
                _refresh_lenses(ls)
            extra = {"findings": [f.to_lsp() for f in verdict.findings], "passed": verdict.passed}
            if verdict.passed:
                return TaskOutcome(State.DONE, 0, None, extra)
            return TaskOutcome(State.ERROR, 1, verdict.summary, extra)

        return await start_k8s_session(ls, spec, cluster, problem, body, a.detach, a.workDoneToken)

    @server.command("ktl.events")
    async def events(ls: KtlServer, *args: Any) -> dict[str, Any]:
        from ktl_lsp.k8s.events import events as run_events
        from ktl_lsp.k8s.verify import Target

        a = parse(EventsArgs, args)
        cluster, problem = await cluster_of(ls, a.context)
        targets: list[Target] | None = None
        namespace = namespace_of(ls, cluster, a.namespace)
        if a.uri is not None:
            text = await asyncio.to_thread(_read, ls, a.uri)
            manifests = await _load(text)
            selected = [m for m in _select(manifests, a.documents) if m.obj is not None]
            targets = [
                Target(m.kind, m.name, m.namespace or namespace, m.api_version, m.index)
                for m in selected
            ]
            names = {t.namespace for t in targets if t.namespace}
            if len(names) == 1:
                namespace = names.pop() or namespace
        title = (
            f"ktl events -n {namespace}"
            + (f" ({_short(a.uri)})" if a.uri else "")
            + (" -w" if a.follow else "")
        )
        spec = RunSpec(
            argv=[],
            command=title,
            kind="k8s",
            title=title,
            meta=session_meta(cluster, "ktl events", namespace),
        )

        async def body(live: LiveSession, cluster: Cluster) -> TaskOutcome:
            shown = await run_events(cluster, namespace, live, a.follow, targets)
            return TaskOutcome(State.DONE, 0, None, {"events": shown})

        return await start_k8s_session(ls, spec, cluster, problem, body, a.detach, a.workDoneToken)
