"""The tools that change things: ``run``, ``plan_run``, ``k8s_apply``, ``k8s_delete``,
``session_cancel``, each behind the write policy (``writes``) and recorded twice: as the agent's
call (its ``agent`` session holds the question, the answer and ``meta.approval``) and as the work
it started (a session of its own whose ``meta.requester`` is ``agent:<client>`` and whose
``meta.agentCall`` names the call).

Kubernetes changes go through :class:`~ktl_lsp.k8s.sessions.K8sSessions`, so the guard applies
as for a person: a read-only context refuses before anything is asked, and a protected one asks
in the operation's own session (with "Show diff") even when an allow-list entry matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shlex
from pathlib import Path
from typing import Any, Literal

import yaml

from ktl_lsp.agents.record import CALL
from ktl_lsp.agents.tools import BadArgument, plain_lines
from ktl_lsp.agents.writes import WritePolicy, WriteRefused
from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.guard import Mutation
from ktl_lsp.k8s.sessions import K8sSessions, dry_run_preview, outcome_summary
from ktl_lsp.sessions.manager import (
    LiveSession,
    RunSpec,
    SessionManager,
    TaskOutcome,
    requester,
    shell_argv,
)
from ktl_lsp.sessions.model import State

#: The longest a call waits for its work to end before answering with the running session.
MAX_WAIT_S = 300.0


class WriteTools:
    def __init__(
        self,
        manager: SessionManager,
        policy: WritePolicy,
        k8s: K8sSessions,
        approve_at: str | None = None,
    ) -> None:
        self.manager = manager
        self.policy = policy
        self.k8s = k8s
        #: Where a person answers this process's questions (its replay UI), when known.
        self.approve_at = approve_at

    # -- what every changing call does ----------------------------------------------------------
    def _call(self) -> LiveSession:
        call = CALL.get()
        if call is None:  # pragma: no cover - the Recorder always runs before a tool
            raise WriteRefused("a changing call must be recorded; this one was not")
        return call

    def _waits(self, call: LiveSession) -> None:
        """Says where a person answers (the call's session, and the meta a listing shows)."""
        if self.approve_at:
            call.session.meta["approveAt"] = self.approve_at
            call.write(f"waiting for a person's answer at {self.approve_at}\r\n")

    def _note(self, call: LiveSession, approval: str) -> None:
        call.session.meta["approval"] = approval
        call.write(f"approval: {approval}\r\n")
        self.manager.save(call.session)

    async def _permit(
        self, tool: str, args: dict[str, Any], question: str, detail: str | None = None
    ) -> tuple[LiveSession, str]:
        call = self._call()
        client = call.session.meta.get("client", "unknown")
        if not self.policy.allowed(tool, args):
            self._waits(call)
        try:
            how = await self.policy.permit(
                self.manager.approvals,
                call.id,
                tool,
                args,
                f"Agent {client}: {question}",
                detail,
            )
        except WriteRefused as exc:
            self._note(call, f"refused: {exc}")
            raise
        self._note(call, how)
        return call, how

    @staticmethod
    def _meta(call: LiveSession, approval: str) -> dict[str, Any]:
        return {
            "requester": call.session.meta.get("requester", "agent:unknown"),
            "osUser": requester(),
            "agentCall": call.id,
            "approval": approval,
        }

    async def _outcome(self, live: LiveSession, wait_s: float, approval: str) -> dict[str, Any]:
        """The started session, with its end when it ends within ``wait_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(live.done), wait_s)
        s = live.session
        out: dict[str, Any] = {"sessionId": s.id, "state": str(s.state), "approval": approval}
        if s.state is not State.RUNNING:
            out["exitCode"] = s.exit_code
            if s.error:
                out["error"] = plain_lines(s.error)
        return out

    # -- the tools ------------------------------------------------------------------------------
    async def run(
        self,
        argv: list[str] | None,
        command: str | None,
        cwd: str | None,
        env: dict[str, str] | None,
        wait_s: float,
        timeout_s: float | None,
    ) -> dict[str, Any]:
        if (argv is None) == (command is None):
            raise BadArgument("give argv (a list) or command (a shell line), not both")
        if argv is not None and not argv:
            raise BadArgument("argv must not be empty")
        if command is not None and not command.strip():
            raise BadArgument("command must not be empty")
        if cwd is not None and not Path(cwd).expanduser().is_dir():
            raise BadArgument(f"cwd is not a directory: {cwd}")
        shown = command if command is not None else shlex.join(argv or [])
        args: dict[str, Any] = {"argv": argv} if argv is not None else {"command": command}
        args.update({k: v for k, v in (("cwd", cwd), ("env", env)) if v})
        where = f" in {cwd}" if cwd else ""
        envs = f" with {', '.join(sorted(env))} set" if env else ""
        call, how = await self._permit("run", args, f"run `{shown}`{where}{envs}?")
        spec = RunSpec(
            argv=list(argv) if argv is not None else shell_argv(shown),
            command=command,
            cwd=cwd,
            env=env,
            timeout_s=timeout_s,
            meta=self._meta(call, how),
        )
        return await self._outcome(self.manager.start(spec), wait_s, how)

    async def plan_run(
        self, path: str, nodes: list[str] | None, dry_run: bool, wait_s: float
    ) -> dict[str, Any]:
        from ktl_lsp.orchestration import PlanOptions, PlanRun, load, local_runners
        from ktl_lsp.orchestration.model import select

        plan = await asyncio.to_thread(load, Path(path))
        if nodes is not None:
            plan = select(plan, nodes, True)
        args: dict[str, Any] = {"path": path, **({"nodes": nodes} if nodes is not None else {})}
        count = len(plan.nodes)
        dry = " (dry run)" if dry_run else ""
        question = f"run plan {plan.name} ({count} node{'s' if count != 1 else ''}){dry}?"
        call, how = await self._permit("plan_run", args, question)
        runners = local_runners(self.manager)
        if any(node.runner == "kubernetes" for node in plan.nodes):
            from ktl_lsp.orchestration.k8s_job import JobRunner

            runners.register("kubernetes", JobRunner(self.manager, self.k8s))
        options = PlanOptions(dry_run=dry_run, ask_people=True)
        live = PlanRun(self.manager, plan, runners, options).start()
        live.session.meta.update(self._meta(call, how))
        self.manager.save(live.session)
        return await self._outcome(live, wait_s, how)

    async def k8s_change(
        self,
        name: Literal["apply", "delete"],
        path: str | None,
        objects: list[dict[str, Any]] | None,
        context: str | None,
        namespace: str | None,
        wait_s: float,
    ) -> dict[str, Any]:
        from ktl_lsp.k8s import ops

        text, shown = _manifest_text(path, objects)
        selected = [m for m in await asyncio.to_thread(_load, text) if not m.empty]
        if not selected:
            raise BadArgument(f"{shown} holds no Kubernetes objects")
        cluster, problem = await self.k8s.cluster(context)
        if cluster is None:
            raise BadArgument(problem or "no cluster")
        count = len(selected)
        what = f"{count} object{'s' if count != 1 else ''}"
        mutation = Mutation(name.capitalize(), what, "to" if name == "apply" else "from")
        self.k8s.refuse_read_only(cluster, mutation)  # refused before anyone is asked
        ns = self.k8s.preferred_namespace(namespace)
        tool = f"k8s_{name}"
        args: dict[str, Any] = {"context": cluster.name, "namespace": namespace}
        args.update({"path": path} if path is not None else {"objects": objects})
        if self.k8s.policy.of(cluster.name) == "protected":
            # The guard asks in the operation's session, allow-listed or not.
            self.policy.require_write(tool)
            call = self._call()
            how = f"asked in the {name} session (context {cluster.name} is protected)"
            self._waits(call)
            self._note(call, how)
        else:
            names = ", ".join(f"{m.kind}/{m.name}" for m in selected[:5])
            more = f" and {count - 5} more" if count > 5 else ""
            where = f"{cluster.name} / {ns}" if ns else cluster.name
            call, how = await self._permit(
                tool, args, f"{name} {names}{more} {mutation.preposition} {where} ({shown})?"
            )
        opts = ops.Options(namespace=ns)
        title = f"ktl {name} {shown}"
        meta = {
            **K8sSessions.meta(cluster, f"ktl {name}", ns, path=path),
            **self._meta(call, how),
        }
        spec = RunSpec(argv=[], command=title, kind="k8s", title=title, meta=meta)
        body = functools.partial(_operate, name, selected, opts, title)
        preview = functools.partial(dry_run_preview, selected, opts) if name == "apply" else None
        live = self.k8s.start(spec, cluster, None, body, mutation, preview)
        out = await self._outcome(live, wait_s + self.policy.timeout_s, how)
        error = str(out.get("error") or "")
        if out["state"] == "cancelled" and error.startswith("not approved"):
            self._note(call, f"refused: {error}")
            raise WriteRefused(f"{tool} refused in session {live.id}: {error}")
        out["resources"] = live.result_extra.get("resources", [])
        return out

    async def session_cancel(self, session_id: str) -> dict[str, Any]:
        sid = await self.manager.resolve_id(session_id)
        if not self.manager.is_running_here(sid):
            raise BadArgument(
                f"session {sid} is not running in this server (it ended, or another process "
                "runs it: cancel it there)"
            )
        title = self.manager.get_live(sid).session.title
        call, how = await self._permit(
            "session_cancel", {"sessionId": sid}, f"cancel session {sid} ({title})?"
        )
        live = self.manager.cancel(sid, reason=f"cancelled by {call.session.meta['requester']}")
        return await self._outcome(live, 15.0, how)


def _manifest_text(path: str | None, objects: list[dict[str, Any]] | None) -> tuple[str, str]:
    """The YAML to send (a file's, or the objects named) and how to show it."""
    if (path is None) == (objects is None):
        raise BadArgument("give path (a manifest file) or objects, not both")
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise BadArgument(f"no such file: {path}")
        return file.read_text(encoding="utf-8-sig", errors="replace"), file.name
    docs = []
    for i, o in enumerate(objects or []):
        missing = [k for k in ("apiVersion", "kind", "name") if not o.get(k)]
        if missing:
            raise BadArgument(f"objects[{i}] needs {', '.join(missing)}")
        meta = {"name": o["name"], **({"namespace": o["namespace"]} if o.get("namespace") else {})}
        docs.append({"apiVersion": o["apiVersion"], "kind": o["kind"], "metadata": meta})
    if not docs:
        raise BadArgument("objects must name at least one object")
    shown = ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in docs[:3])
    return yaml.safe_dump_all(docs), shown + (" ..." if len(docs) > 3 else "")


def _load(text: str) -> list[Any]:
    from ktl_lsp.k8s.manifests import load

    return load(text)[1]


async def _operate(
    name: str, selected: list[Any], opts: Any, title: str, live: LiveSession, cluster: Cluster
) -> TaskOutcome:
    from ktl_lsp.k8s import ops

    live.write(f"{title}\r\n")
    operation = ops.apply if name == "apply" else ops.delete
    outcomes = await operation(cluster, selected, opts, live)
    live.write(f"{outcome_summary(outcomes)}\r\n")
    extra = {"resources": [o.to_lsp() for o in outcomes]}
    failed = [o for o in outcomes if o.action == "failed"]
    if failed:
        why = f"{len(failed)} of {len(outcomes)} failed: {failed[0].message}"
        return TaskOutcome(State.ERROR, 1, why, extra)
    return TaskOutcome(State.DONE, 0, None, extra)
