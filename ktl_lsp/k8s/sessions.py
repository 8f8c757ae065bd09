"""Kubernetes work as recorded sessions, the same for the editor's commands and plan nodes.

One place decides which cluster and namespace a piece of work uses, what its session's meta
says, how it looks in the terminal and how a cluster error ends it (state ``error``, exit code
1, the message on a red ``error:`` line). It knows sessions and clusters, never the editor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ktl_lsp.k8s.client import Cluster, Clusters
from ktl_lsp.k8s.errors import ConfigError, K8sError
from ktl_lsp.k8s.guard import ContextPolicy, Mutation
from ktl_lsp.k8s.style import BOLD, DIM, RESET, YELLOW, error_line
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, TaskOutcome
from ktl_lsp.sessions.model import State
from ktl_lsp.sessions.provenance import safe_url

if TYPE_CHECKING:
    from ktl_lsp.k8s import ops
    from ktl_lsp.k8s.manifests import Manifest
    from ktl_lsp.sessions.approvals import Question

Body = Callable[[LiveSession, Cluster], Awaitable[TaskOutcome]]
#: Writes what a change would do (a server-side dry run) to the session; a one-line summary.
Preview = Callable[[LiveSession, Cluster], Awaitable[str]]

SHOW_DIFF = "Show diff"
CANCEL = "Cancel"


class K8sSessions:
    """The workspace's clusters (and its picked context and namespace), and sessions on them."""

    def __init__(
        self,
        manager: Callable[[], SessionManager],
        clusters: Clusters | None = None,
        policy: Callable[[], ContextPolicy] = ContextPolicy,
        approval_timeout_s: float | None = None,
    ):
        self._manager = manager  # opened on first use: start-up does not pay for the store
        self.clusters = clusters or Clusters()
        self._policy = policy  # read when used: the settings arrive after construction
        #: How long a protected context's question waits (None: until answered); no answer
        #: in time is no.
        self.approval_timeout_s = approval_timeout_s

    @property
    def policy(self) -> ContextPolicy:
        return self._policy()

    def refuse_read_only(self, cluster: Cluster | None, mutation: Mutation) -> None:
        """Raises ``ReadOnlyContext`` when ``cluster``'s context may not be changed."""
        if cluster is not None:
            self.policy.refuse_read_only(cluster.name, f"{mutation.verb.lower()} {mutation.what}")

    async def approved(
        self,
        live: LiveSession,
        cluster: Cluster,
        namespace: str | None,
        mutation: Mutation,
        preview: Preview | None = None,
    ) -> str | None:
        """None when the change may go ahead (an open context, or a person said yes), else why
        not. On a protected context the person is asked; "Show diff" runs ``preview`` and asks
        again. No answer (dismissed, withdrawn) is no."""
        self.refuse_read_only(cluster, mutation)
        if not self.protected(cluster):
            return None
        text = question(cluster, namespace, mutation)
        go = mutation.verb
        choices = [SHOW_DIFF, go, CANCEL] if preview is not None else [go, CANCEL]
        detail: str | None = None
        approvals = self._manager().approvals
        live.write(f"{DIM}waiting for approval: {text}{RESET}\r\n")
        while True:
            q = await approvals.ask(
                live.id, text, choices, detail=detail, timeout_s=self.approval_timeout_s
            )
            if q.answer == SHOW_DIFF and preview is not None:
                detail = await preview(live, cluster)
                text = f"{question(cluster, namespace, mutation)} ({detail})"
                choices = [go, CANCEL]
                continue
            refused = verdict(q, go)
            if refused is None:
                live.write(f"{DIM}approved by {q.who}{RESET}\r\n")
            return refused

    def protected(self, cluster: Cluster) -> bool:
        """Changes to ``cluster`` wait for a person's yes."""
        return self.policy.of(cluster.name) == "protected"

    async def cluster(self, context: str | None) -> tuple[Cluster | None, str | None]:
        """The cluster of ``context`` (else the picked one, else current), or why there is none."""
        try:
            return await self.clusters.get(context), None
        except ConfigError as exc:
            return None, str(exc)

    def preferred_namespace(self, given: str | None) -> str | None:
        """The argument, else the workspace's pick; None lets each document say."""
        return given or self.clusters.default_namespace

    def namespace(self, cluster: Cluster | None, given: str | None) -> str:
        """The namespace work happens in: the argument, the workspace's pick, the context's."""
        return (
            self.preferred_namespace(given)
            or (cluster.default_namespace if cluster else None)
            or "default"
        )

    @staticmethod
    def meta(
        cluster: Cluster | None, command: str, namespace: str | None, **more: Any
    ) -> dict[str, Any]:
        """Session meta in ktl's shape (``command``, ``cluster``, ``kubeContext``, ...)."""
        meta: dict[str, Any] = {"command": command, **more}
        if cluster is not None:
            meta.update(
                cluster=cluster.context.cluster,
                kubeContext=cluster.name,
                namespace=namespace or cluster.default_namespace,
            )
            if cluster.context.server:
                meta["server"] = safe_url(cluster.context.server)
        return meta

    @staticmethod
    def fail(live: LiveSession, message: str) -> TaskOutcome:
        """Ends Kubernetes work that could not be done, the one way it is shown and reported."""
        live.write(error_line(message))
        return TaskOutcome(State.ERROR, 1, message)

    @staticmethod
    def refuse(live: LiveSession, why: str) -> TaskOutcome:
        """Ends work a person did not approve: cancelled, nothing was sent."""
        live.write(f"{YELLOW}{why}{RESET}\r\n")
        return TaskOutcome(State.CANCELLED, 130, why)

    def start(
        self,
        spec: RunSpec,
        cluster: Cluster | None,
        problem: str | None,
        body: Body,
        mutation: Mutation | None = None,
        preview: Preview | None = None,
    ) -> LiveSession:
        """Runs ``body`` on ``cluster`` as a session; no cluster or a cluster error ends it.

        A ``mutation`` is refused on a read-only context (``ReadOnlyContext``, before any
        session) and waits for a person's yes on a protected one (a no ends the session
        cancelled, nothing sent)."""
        if mutation is not None:
            self.refuse_read_only(cluster, mutation)

        async def work(live: LiveSession) -> TaskOutcome:
            if cluster is None:
                return self.fail(live, problem or "no cluster")
            live.write(f"{DIM}context {cluster.name} ({cluster.context.cluster}){RESET}\r\n")
            try:
                async with cluster.using():
                    if mutation is not None:
                        namespace = live.session.meta.get("namespace")
                        refused = await self.approved(live, cluster, namespace, mutation, preview)
                        if refused is not None:
                            return self.refuse(live, refused)
                    return await body(live, cluster)
            except K8sError as exc:
                return self.fail(live, str(exc))

        return self._manager().start_task(spec, work)


def question(cluster: Cluster, namespace: str | None, mutation: Mutation) -> str:
    """What a person is asked before ``mutation`` on a protected context."""
    where = f"{cluster.name} / {namespace}" if namespace else cluster.name
    return f"{mutation.verb} {mutation.what} {mutation.preposition} {where}?"


def verdict(q: Question, go: str) -> str | None:
    """None when the settled question ``q`` says go ahead, else why not."""
    if q.answer == go:
        return None
    if q.state == "withdrawn":
        return f"not approved: no answer ({q.who})"
    if q.answer is None:
        return f"not approved: dismissed by {q.who}"
    return f"not approved: {q.who} chose {q.answer}"


async def dry_run_preview(
    selected: list[Manifest], opts: ops.Options, live: LiveSession, cluster: Cluster
) -> str:
    """The server-side dry-run diff of an apply, written to the session; what it would change
    (a ``Preview`` once ``selected`` and ``opts`` are bound)."""
    from ktl_lsp.k8s import ops

    live.write(f"{BOLD}diff (server-side dry run){RESET}\r\n")
    outcomes = await ops.diff(cluster, selected, opts, live)
    changed = [o for o in outcomes if o.diff]
    names = ", ".join(f"{o.manifest.kind}/{o.manifest.name}" for o in changed[:5])
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    return f"{len(changed)} of {len(outcomes)} would change{': ' + names + more if names else ''}"


def outcome_summary(outcomes: list[ops.Outcome]) -> str:
    """``2 created, 1 unchanged``: an operation's outcomes counted by action."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    return ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to do"
