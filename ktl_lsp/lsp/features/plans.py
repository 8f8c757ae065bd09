"""Orchestration commands (docs/protocol.md): ``ktl.plan.run`` and ``ktl.plan.cancelNode``.

The plan is a parent session (``kind: "plan"``) and each node a child session (``parentId``);
the result is the ``SessionResult`` plus ``nodes``. A plan the diagnostics call broken (cycle,
unknown dep, duplicate id, schema error; for stacks ktl's own wording) is refused with
``InvalidParams`` and the same messages.

Beyond the original contract: ``stackCommand`` (the per-release command template for
stacks), ``profile`` (a stack profile), ``detach``, ``workDoneToken``; the result also carries
``reason`` per node, ``order`` on dry runs and ``planFileChanged`` when the file was edited
while running.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.uris import to_fs_path

from ktl_lsp.aio import import_off_loop
from ktl_lsp.lsp.arguments import ArgumentError, StartArgs
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.features.stream import EditorFeed
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.model import Session

if TYPE_CHECKING:
    from ktl_lsp.orchestration import Plan, PlanRun
    from ktl_lsp.orchestration.scheduler import NodeRecord


@dataclass
class PlanRunArgs(StartArgs):
    uri: str | None = None  #: a plan file or a ktl stack.yaml (may be omitted with resume)
    nodes: list[str] | None = None  #: run only these (ids, or release names for stacks)
    withDeps: bool = True  #: with ``nodes``: also what they depend on
    concurrency: int | None = None
    dryRun: bool = False
    resume: str | None = None  #: an earlier plan session: rerun its failed/cancelled/skipped
    stackCommand: list[str] | str | None = None
    profile: str | None = None

    def check(self) -> None:
        if self.uri is None and self.resume is None:
            raise ArgumentError("missing field 'uri'")
        if self.concurrency is not None and self.concurrency < 1:
            raise ArgumentError("field 'concurrency': must be >= 1")
        if isinstance(self.stackCommand, list) and not self.stackCommand:
            raise ArgumentError("field 'stackCommand': must not be empty")


@dataclass
class CancelNodeArgs:
    sessionId: str  #: the plan's session
    node: str  #: a node id (or, for stacks, a release name)


class Plans(Feature):
    def __init__(
        self, server: KtlServer, runs: Runs, feed: EditorFeed, context: KubeContext
    ) -> None:
        self.server = server
        self.runs = runs
        self.feed = feed
        self.k8s = context.k8s
        #: Plans running in this server, by their session id (for ``ktl.plan.cancelNode``).
        self.running: dict[str, PlanRun] = {}

    @command("ktl.plan.run")
    async def run(self, a: PlanRunArgs) -> dict[str, Any]:
        manager = self.server.manager
        previous = None
        if a.resume is not None:
            previous = await manager.refuse_imported(
                await manager.resolve_id(a.resume), "be resumed"
            )
        path = self._path_of(a.uri or _source_of(previous, a.resume))
        await import_off_loop("ktl_lsp.orchestration")  # not needed to start the server
        from ktl_lsp.orchestration import PlanOptions, PlanRun, local_runners

        plan = await self._load(path, a, previous)
        options = PlanOptions(
            concurrency=a.concurrency,
            dry_run=a.dryRun,
            resume_of=previous,
            ask_people=True,  # through the approvals: the editor is asked, the gateway may answer
            on_interactive=lambda record: _interactive(self.server, plan.name, record),
            on_progress=self.feed.report,
        )
        runners = local_runners(manager)
        if any(node.runner == "kubernetes" for node in plan.nodes):
            from ktl_lsp.orchestration.k8s_job import JobRunner

            runners.register("kubernetes", JobRunner(manager, self.k8s))
        if any(node.runner == "verify" for node in plan.nodes):
            from ktl_lsp.orchestration.k8s_verify import VerifyRunner

            runners.register("verify", VerifyRunner(manager, self.k8s))
        run = PlanRun(manager, plan, runners, options)
        live = run.start()
        self.running[live.id] = run
        live.done.add_done_callback(lambda _: self.running.pop(live.id, None))
        return await self.runs.follow(live, a, a.detach)

    @command("ktl.plan.cancelNode")
    async def cancel_node(self, a: CancelNodeArgs) -> dict[str, Any]:
        """Cancels one node of a running plan, started or not; its dependents are skipped."""
        run = self.running.get(await self.server.manager.resolve_id(a.sessionId))
        if run is None or run.scheduler is None:
            raise ArgumentError(f"no running plan with session {a.sessionId}")
        from ktl_lsp.orchestration.model import resolve_names

        (node_id,) = resolve_names(run.plan, [a.node])
        run.scheduler.cancel_node(node_id)
        return {}

    async def _load(self, path: Path, a: PlanRunArgs, previous: Session | None) -> Plan:
        """The plan to run: the file, narrowed to the nodes asked for (or the earlier run's).
        A broken plan is refused before any session exists."""
        from ktl_lsp.orchestration import load
        from ktl_lsp.orchestration.model import select
        from ktl_lsp.orchestration.run import carried_over

        plan = await asyncio.to_thread(load, path, a.stackCommand, a.profile)
        if a.nodes is not None:
            plan = select(plan, a.nodes, a.withDeps)
        elif previous is not None:
            plan = select(plan, _previous_ids(previous, plan), with_deps=False)
        if previous is not None:
            carried_over(plan, previous)
        return plan

    def _path_of(self, uri: str) -> Path:
        path = to_fs_path(uri) if "://" in uri else uri
        if not path:
            raise ArgumentError(f"field 'uri': not a file: {uri}")
        resolved = Path(path).expanduser()
        if not resolved.is_absolute():
            root = self.server.workspace.root_path if self.server.workspace else None
            resolved = Path(root or os.getcwd()) / resolved
        return resolved


def _source_of(previous: Session | None, resume: str | None) -> str:
    """The plan file an earlier plan session ran."""
    record = previous.meta.get("plan") if previous is not None else None
    source = record.get("source") if isinstance(record, dict) else None
    if not source:
        raise ArgumentError(f"session {resume} is not a plan run")
    return str(source)


def _previous_ids(previous: Session, plan: Any) -> list[str]:
    """Resume runs the nodes of the earlier run (it may have been a selection)."""
    record = previous.meta.get("plan")
    items = record.get("nodes") if isinstance(record, dict) else None
    ids = {str(i.get("id")) for i in items or [] if isinstance(i, dict)}
    return [n.id for n in plan.nodes if n.id in ids] or [n.id for n in plan.nodes]


def _interactive(ls: KtlServer, plan_name: str, record: NodeRecord) -> None:
    ls.window_show_message(
        lsp.ShowMessageParams(
            type=lsp.MessageType.Info,
            message=f"ktl plan {plan_name}: {record.id} needs your input (session {record.session_id})",
        )
    )
