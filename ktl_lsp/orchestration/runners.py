"""Where a node runs. Every runner records the node as a child session of the plan's session.

A runner turns one attempt of a node into a ``NodeHandle``: the session id, a way to wait for
the end and a way to cancel. Runners are looked up by the node's ``runner`` field in a
``Runners`` registry; an unknown or unregistered name fails its nodes with a clear reason.

The local runner starts a PTY session; ``k8s_job.JobRunner`` (``runner: kubernetes``) runs a
node as a Kubernetes Job. Both record the attempt as a session of the manager, so the scheduler
treats them alike.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ktl_lsp.orchestration.model import PlanNode
from ktl_lsp.pty import PtySpec, SpawnError
from ktl_lsp.pty.base import resolve
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, shell_argv
from ktl_lsp.sessions.model import Session, State

ExitState = Literal["done", "failed", "cancelled"]


@dataclass
class NodeExit:
    state: ExitState
    exit_code: int | None = None
    error: str | None = None
    #: Warning-severity findings the attempt reported (a verify node's), one line each.
    warnings: list[str] = field(default_factory=list)


@dataclass
class LaunchContext:
    """What the scheduler tells a runner about one attempt."""

    plan_name: str
    parent_id: str | None
    attempt: int
    cwd: str | None
    env: dict[str, str] = field(default_factory=dict)
    title: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    meta: dict[str, object] = field(default_factory=dict)


class NodeHandle(Protocol):
    @property
    def session_id(self) -> str: ...

    @property
    def session(self) -> Session: ...

    async def wait(self) -> NodeExit: ...

    def cancel(self) -> None: ...


Problem = str | None


class NodeRunner(Protocol):
    def preflight(self, node: PlanNode, cwd: str | None) -> Problem | Awaitable[Problem]:
        """Why this node cannot start (a missing executable, an unreachable cluster), or None.

        May be a coroutine (a runner that has to ask a cluster)."""

    def start(self, node: PlanNode, ctx: LaunchContext) -> NodeHandle: ...


async def preflight(runner: NodeRunner, node: PlanNode, cwd: str | None) -> Problem:
    found = runner.preflight(node, cwd)
    if inspect.isawaitable(found):
        return await found
    return found


class SessionHandle:
    """A node attempt that is a session of the manager (any kind: pty, k8s task)."""

    def __init__(self, manager: SessionManager, live: LiveSession) -> None:
        self.manager = manager
        self.live = live

    @property
    def session_id(self) -> str:
        return self.live.id

    @property
    def session(self) -> Session:
        return self.live.session

    async def wait(self) -> NodeExit:
        session = await asyncio.shield(self.live.done)
        out = exit_of(session)
        out.warnings = warnings_of(self.live.result_extra)
        return out

    def cancel(self) -> None:
        if not self.live.done.done():
            self.manager.cancel(self.live.id)


def warnings_of(result: dict[str, Any]) -> list[str]:
    """The Warning-severity findings of a session's result (``findings``, as verify reports
    them), as ``Kind/name Reason: message`` lines."""
    out = []
    for f in result.get("findings") or []:
        if isinstance(f, dict) and f.get("severity") == "warning":
            res = f.get("resource") or {}
            out.append(f"{res.get('kind')}/{res.get('name')} {f.get('reason')}: {f.get('message')}")
    return out


def exit_of(session: Session) -> NodeExit:
    if session.state is State.DONE:
        return NodeExit("done", session.exit_code)
    if session.state is State.CANCELLED:
        return NodeExit("cancelled", session.exit_code, session.error or "cancelled")
    return NodeExit("failed", session.exit_code, session.error or str(session.state))


class LocalRunner:
    """Runs a node's command in a pseudo-terminal on this machine (a ``pty`` session)."""

    def __init__(self, manager: SessionManager, cols: int = 120, rows: int = 30) -> None:
        self.manager = manager
        self.cols = cols
        self.rows = rows

    @staticmethod
    def argv_of(node: PlanNode) -> list[str]:
        if node.command is not None:
            return shell_argv(node.command)
        return list(node.argv or [])

    def preflight(self, node: PlanNode, cwd: str | None) -> str | None:
        try:
            resolve(PtySpec(self.argv_of(node), cwd=cwd, env=node.env or None))
        except SpawnError as exc:
            return str(exc)
        return None

    def start(self, node: PlanNode, ctx: LaunchContext) -> NodeHandle:
        spec = RunSpec(
            argv=self.argv_of(node),
            command=node.command,
            cwd=ctx.cwd,
            env={**node.env, **ctx.env},
            cols=self.cols,
            rows=self.rows,
            timeout_s=node.timeout_s,
            title=ctx.title,
            meta=dict(ctx.meta),
            tags=dict(ctx.tags),
            parent_id=ctx.parent_id,
        )
        return SessionHandle(self.manager, self.manager.start(spec))


class MissingRunner:
    """A runner name with no implementation here: nodes fail with a clear reason."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def preflight(self, node: PlanNode, cwd: str | None) -> str | None:
        return f"runner {self.name!r} is not available: {self.reason}"

    def start(self, node: PlanNode, ctx: LaunchContext) -> NodeHandle:  # pragma: no cover
        raise RuntimeError(self.reason)


class Runners:
    """Runner by name (``local`` always; ``kubernetes`` where a cluster client is set up)."""

    def __init__(self, local: NodeRunner, **others: NodeRunner) -> None:
        self._by_name: dict[str, NodeRunner] = {"local": local, **others}

    def register(self, name: str, runner: NodeRunner) -> None:
        self._by_name[name] = runner

    def get(self, name: str) -> NodeRunner:
        found = self._by_name.get(name)
        if found is not None:
            return found
        if name in ("kubernetes", "verify"):
            return MissingRunner(name, "no Kubernetes client is set up here")
        return MissingRunner(name, "unknown runner")


def local_runners(manager: SessionManager) -> Runners:
    return Runners(LocalRunner(manager))
