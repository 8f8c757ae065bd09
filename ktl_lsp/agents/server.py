"""The MCP server: the read-only tools, session resources and prompts over one session manager.

Built once per process (``ktl-lsp mcp`` on stdio, ``ktl-lsp serve --mcp`` under ``/mcp``) on
the official ``mcp`` SDK. Tool arguments are checked by the SDK against the signatures below
(a wrong type is an MCP error before anything runs); our own refusals (``UserError``, a
cluster's ``K8sError``) become tool errors whose text says why.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import Resource, ToolAnnotations
from pydantic import Field

from ktl_lsp import __version__
from ktl_lsp.agents.changed import ListChanged
from ktl_lsp.agents.changes import MAX_WAIT_S, WriteTools
from ktl_lsp.agents.cluster import ClusterTools
from ktl_lsp.agents.record import Recorder
from ktl_lsp.agents.tools import (
    DEFAULT_MAX_BYTES,
    ListQuery,
    SessionTools,
    check_paths_json,
    redact_text,
)
from ktl_lsp.agents.writes import WritePolicy
from ktl_lsp.errors import UserError
from ktl_lsp.k8s.client import Clusters
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.k8s.guard import ContextPolicy
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.sessions.manager import SessionManager

T = TypeVar("T")
#: Sessions listed as resources (newest first).
RESOURCES = 50
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False)
Objects = Annotated[
    list[dict[str, str]] | None,
    Field(description="instead of path: [{apiVersion, kind, name, namespace?}]"),
]
WaitSeconds = Annotated[
    float,
    Field(ge=0, le=MAX_WAIT_S, description="wait this long for the work to end (after approval)"),
]
SessionId = Annotated[str, Field(description="a session id, or a unique prefix of one (4+)")]
Context_ = Annotated[str | None, Field(description="kubeconfig context (default: the current one)")]
Namespace = Annotated[str | None, Field(description="namespace (default: the context's)")]

INSTRUCTIONS = (
    "ktl-lsp records terminal commands, Kubernetes operations and plans as sessions. "
    "Find sessions with list_sessions, read what they printed with read_output (tailLines for "
    "the end), see why a plan failed with get_plan, compare runs with compare_sessions, and "
    "look at the cluster with the k8s_* tools. Output is redacted. Tools that change things "
    "(run, plan_run, k8s_apply, k8s_delete, session_cancel) exist only when the user allowed "
    "them, and each waits for a person's approval unless the user allow-listed it."
)


class _Server(MCPServer):
    """Lists the newest sessions as resources (``ktl://sessions/<id>``), beside the templates."""

    def __init__(self, found: SessionTools, **kwargs: Any) -> None:
        super().__init__("ktl-lsp", **kwargs)
        self.found = found

    async def list_resources(self) -> list[Resource]:
        listed = await self.found.list_sessions(ListQuery(limit=RESOURCES))
        return [
            *await super().list_resources(),
            *(
                Resource(
                    uri=f"ktl://sessions/{s['sessionId']}",
                    name=s["sessionId"],
                    title=s["title"],
                    description=f"{s['kind']} session, {s['state']}"
                    + (f" (exit {s['exitCode']})" if "exitCode" in s else ""),
                    mime_type="application/json",
                )
                for s in listed["sessions"]
            ),
        ]


async def _answer(work: Awaitable[T]) -> T:
    try:
        return await work
    except (UserError, K8sError) as exc:
        raise ToolError(redact_text(str(exc))) from exc


def build(
    manager: SessionManager,
    transport: str,
    clusters: Clusters | None = None,
    writes: WritePolicy | None = None,
    contexts: ContextPolicy | None = None,
    approve_at: str | None = None,
) -> MCPServer:
    """The server with the read-only tools, and the changing ones when ``writes`` allows them
    (each asks a person through ``manager.approvals`` unless allow-listed). ``contexts``: the
    read-only and protected contexts, enforced for agents as for a person; ``approve_at``: where
    a person answers (the replay UI), noted in each call that waits."""
    found = SessionTools(manager)
    cluster = ClusterTools(clusters)
    changed = ListChanged(manager)
    mcp = _Server(
        found,
        version=__version__,
        instructions=INSTRUCTIONS,
        middleware=[changed, Recorder(manager, transport)],
        subscriptions=changed.bus,
    )
    # Say that resources/list changes (sessions start and end): the SDK's options default
    # to no list-changed notifications.
    lowlevel = mcp._lowlevel_server
    lowlevel.create_initialization_options = functools.partial(  # type: ignore[method-assign]
        lowlevel.create_initialization_options, NotificationOptions(resources_changed=True)
    )

    @mcp.tool(annotations=READ)
    async def list_sessions(
        state: Literal["running", "done", "error", "cancelled", "interrupted"] | None = None,
        kind: Annotated[str | None, Field(description="pty, k8s, exec, plan, agent, ...")] = None,
        meta: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        since: Annotated[str | None, Field(description="ISO 8601 time")] = None,
        parentId: str | None = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        """Recorded sessions, newest first, filtered as ktl.sessions.list (agent calls are
        left out unless kind is "agent")."""
        q = ListQuery(state, kind, meta, tags, since, parentId, limit)
        return await _answer(found.list_sessions(q))

    @mcp.tool(annotations=READ)
    async def get_session(sessionId: SessionId) -> dict[str, Any]:
        """One session: command, state, exit code, timings, cluster/namespace, children."""
        return await _answer(found.get_session(sessionId))

    @mcp.tool(annotations=READ)
    async def read_output(
        sessionId: SessionId,
        fromSeq: Annotated[int | None, Field(ge=1, description="page from this frame")] = None,
        tailLines: Annotated[int | None, Field(ge=0, le=1_000_000)] = None,
        maxBytes: Annotated[int, Field(ge=1, le=1 << 20)] = DEFAULT_MAX_BYTES,
        offset: Annotated[int, Field(ge=0, description="with fromSeq: nextOffset")] = 0,
    ) -> dict[str, Any]:
        """A session's output as plain redacted text: forward from fromSeq (continue with
        nextSeq, and nextOffset as offset when given) or its last tailLines lines; never more
        than maxBytes."""
        return await _answer(found.read_output(sessionId, fromSeq, tailLines, maxBytes, offset))

    @mcp.tool(annotations=READ)
    async def search_output(
        query: Annotated[
            str,
            Field(description='words (all must appear, any case), "a phrase", prefix*'),
        ],
        sessionId: SessionId | None = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
        state: Literal["running", "done", "error", "cancelled", "interrupted"] | None = None,
        kind: Annotated[str | None, Field(description="pty, k8s, exec, plan, ...")] = None,
    ) -> dict[str, Any]:
        """Output lines holding every word of query, newest first, across all recorded
        sessions (the store's full-text index) or in one session; each match names its
        session and frame (seq, for read_output's fromSeq)."""
        return await _answer(found.search_output(query, sessionId, limit, state, kind))

    @mcp.tool(annotations=READ)
    async def compare_sessions(a: SessionId, b: SessionId) -> dict[str, Any]:
        """Two runs side by side: exit codes, durations and a diff of their normalised output
        (timestamps, ids and pod hashes replaced)."""
        return await _answer(found.compare_sessions(a, b))

    @mcp.tool(annotations=READ)
    async def get_plan(sessionId: SessionId) -> dict[str, Any]:
        """A plan run: its nodes and their states, and which failed and why (with the end of
        each failed node's output)."""
        return await _answer(found.get_plan(sessionId))

    @mcp.tool(annotations=READ)
    async def check(
        paths: list[str],
        k8sVersion: Annotated[str | None, Field(description="X.Y")] = None,
    ) -> dict[str, Any]:
        """The editor's diagnostics for files or directories: what `ktl-lsp check` reports."""
        return await _answer(_in_thread(check_paths_json, paths, k8sVersion))

    @mcp.tool(annotations=READ)
    async def k8s_list(
        kinds: list[str] | None = None, namespace: Namespace = None, context: Context_ = None
    ) -> dict[str, Any]:
        """Pods, workloads, services (or namespaces) with status, readiness and ports."""
        return await _answer(cluster.list(kinds, namespace, context))

    @mcp.tool(annotations=READ)
    async def k8s_describe(
        kind: str, name: str, namespace: Namespace = None, context: Context_ = None
    ) -> dict[str, Any]:
        """One object as YAML (Secret values hidden) and its events."""
        return await _answer(cluster.describe(kind, name, namespace, context))

    @mcp.tool(annotations=READ)
    async def k8s_logs(
        pod: str,
        namespace: Namespace = None,
        container: str | None = None,
        tailLines: Annotated[int, Field(ge=1, le=5000)] = 200,
        maxBytes: Annotated[int, Field(ge=1, le=1 << 20)] = DEFAULT_MAX_BYTES,
        context: Context_ = None,
    ) -> dict[str, Any]:
        """The last lines of a pod's log (bounded by tailLines and maxBytes)."""
        return await _answer(cluster.logs(pod, namespace, container, tailLines, maxBytes, context))

    @mcp.tool(annotations=READ)
    async def k8s_events(namespace: Namespace = None, context: Context_ = None) -> dict[str, Any]:
        """The events of a namespace, oldest first."""
        return await _answer(cluster.events(namespace, context))

    @mcp.tool(annotations=READ)
    async def k8s_diff(
        path: str, namespace: Namespace = None, context: Context_ = None
    ) -> dict[str, Any]:
        """What applying a file would change: a server-side dry run (nothing is changed)."""
        return await _answer(cluster.diff(path, namespace, context))

    if writes is not None and writes.allow_write:
        guard = contexts or ContextPolicy()
        k8s = K8sSessions(
            lambda: manager, cluster.clusters, lambda: guard, approval_timeout_s=writes.timeout_s
        )
        _add_write_tools(mcp, WriteTools(manager, writes, k8s, approve_at))

    @mcp.resource("ktl://sessions/{session_id}", mime_type="application/json", name="session")
    async def session_resource(session_id: str) -> dict[str, Any]:
        """A session's metadata and the plain-text tail of its output."""
        try:
            out = await found.get_session(session_id)
            page = await found.read_output(session_id, tail_lines=100, max_bytes=16384)
        except UserError as exc:
            raise ResourceError(str(exc)) from exc
        return {**out, "outputTail": page["text"]}

    @mcp.resource(
        "ktl://sessions/{session_id}/output", mime_type="text/plain", name="session-output"
    )
    async def session_output(session_id: str) -> str:
        """A session's output as plain redacted text (its last 64 KB)."""
        try:
            page = await found.read_output(session_id, tail_lines=1_000_000)
        except UserError as exc:
            raise ResourceError(str(exc)) from exc
        return str(page["text"])

    @mcp.prompt(name="why-did-this-session-fail")
    async def why_failed(sessionId: str) -> list[UserMessage]:
        """Explain why a session failed, from its metadata, plan and output."""
        s = await _answer(found.get_session(sessionId))
        tail = await _answer(found.read_output(sessionId, tail_lines=200))
        parts = [
            "Explain why this ktl session failed and propose a fix. Quote the lines that show "
            "the cause.",
            f"Session: {s}",
        ]
        if s.get("kind") == "plan":
            parts.append(f"Plan: {await _answer(found.get_plan(sessionId))}")
        parts.append(f"Last lines of its output:\n{tail['text']}")
        return [UserMessage("\n\n".join(parts))]

    @mcp.prompt(name="compare-with-last-good-run")
    async def compare_last_good(sessionId: str) -> list[UserMessage]:
        """Compare a session with the last successful run of the same command or plan."""
        good = await _answer(found.last_good(sessionId))
        if good is None:
            raise ToolError(f"no earlier successful run of session {sessionId}'s command")
        result = await _answer(found.compare_sessions(good.id, sessionId))
        return [
            UserMessage(
                "Here is a run and the last good run of the same command. Say what changed "
                "and which change most likely broke it.\n\n"
                f"Comparison (a = last good, b = this run): {result}"
            )
        ]

    return mcp


def _add_write_tools(mcp: MCPServer, tools: WriteTools) -> None:
    """``run``, ``plan_run``, ``k8s_apply``, ``k8s_delete``, ``session_cancel``: each asks a
    person (the gateway, the replay UI) unless an ``agents.allow`` entry matches."""

    @mcp.tool(annotations=WRITE)
    async def run(
        argv: Annotated[
            list[str] | None, Field(description="the program and its arguments")
        ] = None,
        command: Annotated[str | None, Field(description="a shell command line")] = None,
        cwd: str | None = None,
        env: Annotated[dict[str, str] | None, Field(description="added to the environment")] = None,
        waitSeconds: WaitSeconds = 10.0,
        timeoutSeconds: Annotated[float | None, Field(gt=0)] = None,
    ) -> dict[str, Any]:
        """Run a command as a recorded session, once a person approves (or an allow-list entry
        matches). Answers sessionId, and state and exitCode when it ends within waitSeconds;
        read its output with read_output."""
        return await _answer(tools.run(argv, command, cwd, env, waitSeconds, timeoutSeconds))

    @mcp.tool(annotations=WRITE)
    async def plan_run(
        path: Annotated[str, Field(description="a plan file or a ktl stack.yaml")],
        nodes: Annotated[list[str] | None, Field(description="only these (and their deps)")] = None,
        dryRun: bool = False,
        waitSeconds: WaitSeconds = 10.0,
    ) -> dict[str, Any]:
        """Run a plan, once a person approves; see it with get_plan."""
        return await _answer(tools.plan_run(path, nodes, dryRun, waitSeconds))

    @mcp.tool(annotations=WRITE)
    async def k8s_apply(
        path: str,
        namespace: Namespace = None,
        context: Context_ = None,
        waitSeconds: WaitSeconds = 30.0,
    ) -> dict[str, Any]:
        """Apply a manifest file (server-side apply), once a person approves. Read-only
        contexts refuse; protected ones ask in the apply's session, with its diff."""
        return await _answer(tools.k8s_change("apply", path, None, context, namespace, waitSeconds))

    @mcp.tool(annotations=WRITE)
    async def k8s_delete(
        path: str | None = None,
        objects: Objects = None,
        namespace: Namespace = None,
        context: Context_ = None,
        waitSeconds: WaitSeconds = 30.0,
    ) -> dict[str, Any]:
        """Delete the objects of a manifest file, or the objects named, once a person
        approves. Read-only contexts refuse; protected ones ask in the delete's session."""
        return await _answer(
            tools.k8s_change("delete", path, objects, context, namespace, waitSeconds)
        )

    @mcp.tool(annotations=WRITE)
    async def session_cancel(sessionId: SessionId) -> dict[str, Any]:
        """Cancel a session running in this server, once a person approves."""
        return await _answer(tools.session_cancel(sessionId))


async def _in_thread(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)
