"""A plan run as a session: the parent session (kind ``plan``) and its record.

The parent session's output is a readable log of the run (one line per node event, then a
``[done/total]`` status line that the editor's progress shows). Its ``meta.plan`` holds the DAG
with each node's state, sessions and timing (``readyAt``, ``startedAt``, ``endedAt``,
``queuedMs``, ``waitedOn``), saved whenever a node ends, so the replay UI can draw a timeline,
``ktl.sessions.diff`` can compare two runs, and ``resume`` knows what is left to do, even
after the server died mid-run.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktl_lsp.orchestration.model import (
    FINAL_STATES,
    RERUN_STATES,
    Plan,
    PlanError,
    PlanNode,
    waves,
)
from ktl_lsp.orchestration.runners import Runners, preflight
from ktl_lsp.orchestration.scheduler import WAITING, BudgetAsk, NodeRecord, PlanHooks, Scheduler
from ktl_lsp.sessions.manager import (
    LiveSession,
    RunSpec,
    SessionManager,
    TaskOutcome,
    refuse_imported,
)
from ktl_lsp.sessions.model import Session, SessionFilter, State

MARKS = {"running": "▶", "done": "✓", "failed": "✗", "skipped": "↷", "cancelled": "■"}
#: A plan's question's choices: go on, or skip the node (and stop after a pause).
APPROVE_CHOICES = ["Approve", "Deny"]


@dataclass
class PlanOptions:
    concurrency: int | None = None
    dry_run: bool = False
    resume_of: Session | None = None  #: the earlier plan session to resume
    #: Whether a person may be asked (the session manager's approvals: the editor, the
    #: gateway): budgets, ``approve: true`` nodes, pauses. Without, budgets and approvals are no.
    ask_people: bool = False
    on_interactive: Callable[[NodeRecord], None] | None = None
    on_progress: Callable[[str, int], None] | None = None  #: (parent id, percentage)
    tags: dict[str, str] = field(default_factory=dict)


def carried_over(plan: Plan, previous: Session) -> dict[str, NodeRecord]:
    """Nodes of an earlier run that are done and stay done: everything else runs again."""
    refuse_imported(previous, "be resumed")
    record = previous.meta.get("plan")
    if previous.kind != "plan" or not isinstance(record, dict):
        raise PlanError([f"session {previous.id} is not a plan run"])
    if previous.state is State.RUNNING:
        raise PlanError([f"plan session {previous.id} is still running"])
    ids = {n.id for n in plan.nodes}
    out: dict[str, NodeRecord] = {}
    for item in record.get("nodes") or []:
        if not isinstance(item, dict) or item.get("id") not in ids:
            continue
        if item.get("state") in RERUN_STATES:
            continue
        kept = NodeRecord(
            str(item["id"]),
            [str(d) for d in item.get("deps") or []],
            state="done",
            attempts=int(item.get("attempts") or 0),
            session_id=item.get("sessionId"),
            exit_code=item.get("exitCode"),
            resumed_from=str(item.get("resumedFrom") or previous.id),
            cost=item.get("cost"),
        )
        out[kept.id] = kept
    return out


#: A plan file larger than this is not copied into its run's recording.
PLAN_FILE_KEPT = 1 << 20


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _digest(path: str | None) -> str | None:
    data = _read(path)
    return hashlib.sha256(data).hexdigest() if data is not None else None


class _SessionHooks(PlanHooks):
    def __init__(self, run: PlanRun) -> None:
        self.run = run

    def changed(self, record: NodeRecord) -> None:
        self.run.node_changed(record)

    async def ask_budget(self, ask: BudgetAsk) -> float | None:
        if not self.run.options.ask_people:
            return None
        self.run.line(
            f"budget: {', '.join(ask.nodes)} need {ask.needed:g}; {max(0.0, ask.remaining):g} "
            f"of {ask.budget:g} left; asking to raise it"
        )
        raised = round(ask.spent + ask.needed, 6)
        names = ", ".join(ask.nodes[:5]) + (
            f" and {len(ask.nodes) - 5} more" if len(ask.nodes) > 5 else ""
        )
        raise_to = f"Raise to {raised:g}"
        q = await self.run.manager.approvals.ask(
            self.run.live.id,
            f"plan {self.run.plan.name}: {names} would exceed the budget "
            f"({max(0.0, ask.remaining):g} of {ask.budget:g} left, needs {ask.needed:g}). "
            "Raise the budget?",
            [raise_to, "Skip"],
        )
        if q.answer != raise_to:
            return None
        self.run.line(f"budget raised to {raised:g} by {q.who}")
        self.run.live.event(budget=raised)
        return raised

    async def approve(self, record: NodeRecord, question: str) -> str | None:
        if not self.run.options.ask_people:
            return "nobody to approve it (run from the editor or the gateway)"
        q = await self.run.manager.approvals.ask(
            self.run.live.id, f"plan {self.run.plan.name}: {question}", APPROVE_CHOICES
        )
        if q.answer == APPROVE_CHOICES[0]:
            self.run.line(f"{record.id}: approved by {q.who}")
            return None
        if q.state == "withdrawn":
            return f"not approved: no answer ({q.who})"
        return f"not approved: {q.who} chose {q.answer or 'nothing (dismissed)'}"

    def interactive(self, record: NodeRecord) -> None:
        self.run.line(f"{record.id} needs input: session {record.session_id}")
        if self.run.options.on_interactive is not None:
            self.run.options.on_interactive(record)


class PlanRun:
    """One run of a plan: owns the parent session, the scheduler and the record."""

    def __init__(
        self, manager: SessionManager, plan: Plan, runners: Runners, options: PlanOptions
    ) -> None:
        self.manager = manager
        self.plan = plan
        self.runners = runners
        self.options = options
        self.scheduler: Scheduler | None = None
        self._file = _read(plan.source)
        self._digest = hashlib.sha256(self._file).hexdigest() if self._file is not None else None
        self.file_changed = False
        self._live: LiveSession | None = None

    @property
    def live(self) -> LiveSession:
        assert self._live is not None
        return self._live

    def start(self) -> LiveSession:
        plan = self.plan
        previous = self.options.resume_of
        meta: dict[str, Any] = {
            "command": f"ktl.plan.run {plan.source or plan.name}",
            "plan": self._record([]),
        }
        if plan.source:
            meta["file"] = plan.source  # lets the file's CodeLens show its last run
        if plan.kind == "stack":
            meta["repo"] = plan.info.get("stackRoot")
        title = f"plan {plan.name}"
        if previous is not None:
            title += f" (resume {previous.id[:8]})"
        if self.options.dry_run:
            title += " (dry run)"
        tags = {"plan": plan.name, **self.options.tags}
        spec = RunSpec(
            argv=[], command=meta["command"], kind="plan", title=title, meta=meta, tags=tags
        )
        spec.cwd = str(Path(plan.source).parent) if plan.source else None
        self._live = self.manager.start_task(spec, self._work)
        if self._file is not None and len(self._file) <= PLAN_FILE_KEPT:
            # The file as this run read it: a bundle of the run carries it, later edits or not.
            text = self._file.decode("utf-8", errors="replace")
            self._live.event(planFile={"path": plan.source, "sha256": self._digest, "text": text})
        return self._live

    # the work -----------------------------------------------------------------------------
    async def _work(self, live: LiveSession) -> TaskOutcome:
        plan = self.plan
        carried = carried_over(plan, self.options.resume_of) if self.options.resume_of else {}
        concurrency = self.options.concurrency or plan.concurrency
        self.line(
            f"plan {plan.name}: {len(plan.nodes)} nodes, concurrency {concurrency}"
            + (f", budget {plan.budget:g}" if plan.budget is not None else "")
            + (
                f", {len(carried)} done in {self.options.resume_of.id}"
                if self.options.resume_of and carried
                else ""
            )
        )
        for note in plan.info.get("notes") or []:
            self.line(f"note: {note}")
        scheduler = Scheduler(
            plan,
            self.runners,
            parent_id=live.id,
            concurrency=concurrency,
            carried=carried,
            hooks=_SessionHooks(self),
            listen=self.manager.listen,
            durations=await self._past_durations(live.id),
        )
        self.scheduler = scheduler
        if self.options.dry_run:
            return await self._dry_run(scheduler)
        try:
            records = await scheduler.run()
        except asyncio.CancelledError:
            self._save(final=True)
            live.result_extra["nodes"] = self.nodes_json()
            self.line("plan cancelled")
            raise
        return self._outcome(records)

    async def _dry_run(self, scheduler: Scheduler) -> TaskOutcome:
        nodes = self.plan.by_id()
        for index, wave in enumerate(waves(self.plan)):
            for node_id in wave:
                node = nodes[node_id]
                record = scheduler.records[node_id]
                runner = self.runners.get(node.runner)
                problem = None if node.worktree else await preflight(runner, node, node.cwd)
                if record.state == "done":
                    self.line(f"wave {index}: {node_id} (done in {record.resumed_from})")
                    continue
                self.line(
                    f"wave {index}: {node_id}: {node.display}"
                    + (f"  !! {problem}" if problem else "")
                )
                for need in node.meta.get("inferredNeeds") or []:
                    reasons = ", ".join(f"{r['type']} {r['evidence']}" for r in need["reasons"])
                    self.line(f"  needs {need['name']} (inferred: {reasons})")
                if problem:
                    record.reason = problem
        self._save(final=True)
        extra = {"nodes": self.nodes_json(), "dryRun": True, "order": waves(self.plan)}
        return TaskOutcome(State.DONE, 0, None, extra)

    def _outcome(self, records: dict[str, NodeRecord]) -> TaskOutcome:
        counts: dict[str, int] = {}
        for record in records.values():
            counts[record.state] = counts.get(record.state, 0) + 1
        self._save(final=True)
        extra: dict[str, Any] = {"nodes": self.nodes_json()}
        if self.file_changed:
            extra["planFileChanged"] = True
        total = len(records)
        if counts.get("done", 0) == total:
            self.line(f"plan {self.plan.name}: all {total} nodes done")
            return TaskOutcome(State.DONE, 0, None, extra)
        parts = [f"{counts[s]} {s}" for s in ("failed", "skipped", "cancelled") if counts.get(s)]
        error = f"{', '.join(parts)} of {total} nodes"
        self.line(f"plan {self.plan.name}: {error}")
        return TaskOutcome(State.ERROR, 1, error, extra)

    # visibility ---------------------------------------------------------------------------
    def line(self, text: str) -> None:
        self.live.write(text + "\r\n")

    def node_changed(self, record: NodeRecord) -> None:
        live = self.live
        fields: dict[str, Any] = {"node": record.id, "state": record.state}
        if record.session_id and record.state == "running":
            fields["sessionId"] = record.session_id
            fields["attempt"] = record.attempts
        if record.reason:
            fields["reason"] = record.reason
        if record.exit_code is not None and record.state in FINAL_STATES:
            fields["exitCode"] = record.exit_code
        live.event(**fields)
        mark = MARKS.get(record.state, "·")
        if record.state == "running" and record.reason == WAITING:
            text = f"⏸ {record.id}: {record.reason}"
        elif record.state == "running" and record.reason:
            text = f"↻ {record.id}: {record.reason}"  # between attempts
        elif record.state == "running":
            text = f"{mark} {record.id}" + (
                f" (attempt {record.attempts})" if record.attempts > 1 else ""
            )
        elif record.state == "done":
            secs = ((record.ended_ns or 0) - (record.started_ns or 0)) / 1e9
            text = f"{mark} {record.id} in {secs:.1f}s"
        else:
            text = f"{mark} {record.id}: {record.reason or record.state}"
        self.line(text)
        if record.state in FINAL_STATES:
            self._check_file()
            self._save()
        self._status()

    def _status(self) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            return
        total = len(scheduler.records) or 1
        final = sum(1 for r in scheduler.records.values() if r.state in FINAL_STATES)
        running = scheduler.running
        percentage = final * 100 // total
        text = f"[{final}/{total}]"
        waiting = [r for r in running if scheduler.records[r].reason == WAITING]
        running = [r for r in running if r not in waiting]
        if waiting:
            text += f" paused: {', '.join(waiting)} waiting for approval"
        if running:
            shown = ", ".join(running[:4]) + (f" +{len(running) - 4}" if len(running) > 4 else "")
            text += f" running: {shown}"
        self.line(text)
        if self.options.on_progress is not None:
            self.options.on_progress(self.live.id, percentage)

    def _check_file(self) -> None:
        if self.file_changed or self._digest is None:
            return
        if _digest(self.plan.source) != self._digest:
            self.file_changed = True
            self.line(
                f"note: {self.plan.source} changed while the plan runs; this run keeps the "
                "version it started with"
            )
            self.live.event(planFileChanged=True)

    # the record ---------------------------------------------------------------------------
    async def _past_durations(self, this_run: str) -> dict[str, float]:
        """How long each node took (seconds) in the newest earlier run of this plan that ran
        it to the end, for the scheduler's order when the plan gives no ``estDurationS``."""
        plan = self.plan
        if all(n.est_duration_s is not None for n in plan.nodes):
            return {}
        flt = SessionFilter(kind="plan", tags={"plan": plan.name}, limit=20)
        out: dict[str, float] = {}
        for session in await self.manager.list_sessions(flt):
            record = session.meta.get("plan")
            if session.id == this_run or not isinstance(record, dict):
                continue
            if record.get("dryRun") or record.get("source") != plan.source:
                continue
            for item in record.get("nodes") or []:
                if not isinstance(item, dict) or item.get("state") != "done":
                    continue
                ms = item.get("durationMs")
                if isinstance(ms, int | float) and not isinstance(ms, bool):
                    out.setdefault(str(item.get("id")), ms / 1000)
        return out

    def nodes_json(self) -> list[dict[str, Any]]:
        scheduler = self.scheduler
        if scheduler is None:
            return []
        return [{**scheduler.records[n.id].to_json(), **_inferred(n)} for n in self.plan.nodes]

    def _record(self, nodes: list[dict[str, Any]]) -> dict[str, Any]:
        plan = self.plan
        out: dict[str, Any] = {
            "name": plan.name,
            "source": plan.source,
            "kind": plan.kind,
            "concurrency": self.options.concurrency or plan.concurrency,
            "failFast": plan.fail_fast,
            "nodes": nodes,
        }
        if plan.budget is not None:
            out["budget"] = plan.budget
        if plan.limits:
            out["limits"] = dict(plan.limits)
        if plan.info:
            out.update({k: v for k, v in plan.info.items() if v})
        if self.options.resume_of is not None:
            out["resumeOf"] = self.options.resume_of.id
        if self.options.dry_run:
            out["dryRun"] = True
        return out

    def _save(self, final: bool = False) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            return
        record = self._record(
            [{**scheduler.records[n.id].to_record(), **_inferred(n)} for n in self.plan.nodes]
        )
        if scheduler.budget is not None:
            record["budget"] = scheduler.budget
            record["spent"] = scheduler.spent
        if self.file_changed:
            record["fileChanged"] = True
        self.live.session.meta["plan"] = record
        if not final:
            self.manager.save(self.live.session)  # a crash mid-run still leaves the DAG


def _inferred(node: PlanNode) -> dict[str, Any]:
    """A stack node's inferred needs (as ``ktl stack plan --output json`` lists them), and why
    there are none when its chart did not render."""
    return {k: node.meta[k] for k in ("inferredNeeds", "inferredNeedsError") if k in node.meta}
