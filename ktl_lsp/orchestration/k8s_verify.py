"""``verify:`` nodes: ktl's verify gate (``k8s/verify.py``) as a plan node, the same session
``ktl.verify`` records (kind ``k8s``, its findings as the result).

A verify that passes with Warning-severity findings (events whose reasons the node's
``denyReasons`` / ``allowReasons`` do not make fail) ends ``done``; the scheduler reads those
findings from the node's exit and, with ``pauseOn: [warning]``, asks a person before the
node's dependents start.
"""

from __future__ import annotations

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.k8s.verify import ObjectRef, VerifyOptions, verify
from ktl_lsp.orchestration.model import PlanNode, VerifyStep
from ktl_lsp.orchestration.runners import LaunchContext, NodeHandle, SessionHandle
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, TaskOutcome


class VerifyRunner:
    """Runs ``verify:`` nodes on the cluster of each node's ``context`` (else the picked one)."""

    def __init__(self, manager: SessionManager, k8s: K8sSessions) -> None:
        self.manager = manager
        self.k8s = k8s
        #: Clusters found in preflight, by node id: start is not a coroutine.
        self._clusters: dict[str, tuple[Cluster | None, str | None]] = {}

    async def preflight(self, node: PlanNode, cwd: str | None) -> str | None:
        step = _step(node)
        found = await self.k8s.cluster(step.context)
        self._clusters[node.id] = found
        return found[1]

    def start(self, node: PlanNode, ctx: LaunchContext) -> NodeHandle:
        step = _step(node)
        cluster, problem = self._clusters.get(node.id) or (None, "no cluster looked up")
        namespace = self.k8s.namespace(cluster, step.namespace)
        meta = {**ctx.meta, **K8sSessions.meta(cluster, "ktl verify", namespace)}
        spec = RunSpec(
            argv=[],
            command=node.display,
            kind="k8s",
            title=ctx.title,
            meta=meta,
            tags=dict(ctx.tags),
            parent_id=ctx.parent_id,
            timeout_s=node.timeout_s,
        )
        targets = [_ref(text, namespace) for text in step.resources]
        options = VerifyOptions(
            step.timeout_s, step.events_window_s, step.deny_reasons, step.allow_reasons
        )

        async def body(live: LiveSession, on: Cluster) -> TaskOutcome:
            return (await verify(on, targets, options, live)).outcome()

        return SessionHandle(self.manager, self.k8s.start(spec, cluster, problem, body))


def _step(node: PlanNode) -> VerifyStep:
    if node.verify is None:  # pragma: no cover - the loader gives verify nodes this runner
        raise ValueError(f"node {node.id} has no verify step")
    return node.verify


def _ref(text: str, namespace: str) -> ObjectRef:
    kind, _, name = text.partition("/")
    return ObjectRef(kind, name, namespace)
