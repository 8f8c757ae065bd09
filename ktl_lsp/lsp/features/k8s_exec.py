"""``ktl.exec``: a shell (or a command) inside a container, as an interactive session.

The session is a terminal like ``ktl.run``'s (``ktl/sessionData`` out, ``ktl.session.input``
and ``ktl.session.resize`` in, cancel = Ctrl-C then hang-up), recorded like any session; the
terminal itself is the API server's exec stream (``ktl_lsp/k8s/exec.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktl_lsp.k8s.guard import Mutation
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.k8s.targets import PodTarget
from ktl_lsp.lsp.arguments import ArgumentError, StartArgs
from ktl_lsp.lsp.feature import Feature, command
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.runs import Runs
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.pty.base import SpawnError
from ktl_lsp.pty.runner import Pty
from ktl_lsp.sessions.manager import LiveSession, RunSpec


@dataclass
class ExecArgs(StartArgs):
    """Exactly one of ``pod`` or ``workload`` ("deployment/web")."""

    pod: str | None = None
    workload: str | None = None
    namespace: str | None = None
    container: str | None = None
    command: list[str] | None = None  #: default: bash, else sh, whichever the image has
    tty: bool = True
    cols: int = 120
    rows: int = 30
    context: str | None = None
    title: str | None = None

    def check(self) -> None:
        if (self.pod is None) == (self.workload is None):
            raise ArgumentError("exactly one of 'pod' or 'workload' is required")
        if self.workload is not None and "/" not in self.workload:
            raise ArgumentError("field 'workload': expected <kind>/<name>, e.g. deployment/web")
        if self.command is not None and not self.command:
            raise ArgumentError("field 'command': must not be empty (leave it out for a shell)")
        if not (1 <= self.cols <= 1000 and 1 <= self.rows <= 1000):
            raise ArgumentError("fields 'cols' and 'rows': must be 1-1000")


class K8sExec(Feature):
    def __init__(self, server: KtlServer, context: KubeContext, runs: Runs) -> None:
        self.k8s = context.k8s
        self.runs = runs

    @command("ktl.exec")
    async def exec(self, a: ExecArgs) -> dict[str, Any]:
        from ktl_lsp.k8s.exec import ExecRequest, open_exec

        cluster, problem = await self.k8s.cluster(a.context)
        namespace = self.k8s.namespace(cluster, a.namespace)
        target = PodTarget(namespace, pod=a.pod, workload=a.workload)
        shown = " ".join(a.command) if a.command else "shell"
        container = f" -c {a.container}" if a.container else ""
        title = f"ktl exec {target.label}{container} -n {namespace} -- {shown}"
        req = ExecRequest(target, a.container, a.command, a.tty, a.cols, a.rows)
        mutation = Mutation("Exec", f"{shown} in {target.label}", "on")
        self.k8s.refuse_read_only(cluster, mutation)

        async def opener(live: LiveSession) -> Pty:
            if cluster is None:
                raise SpawnError(problem or "no cluster")
            refused = await self.k8s.approved(live, cluster, namespace, mutation)
            if refused is not None:
                raise SpawnError(refused)
            return await open_exec(cluster, req, live)

        spec = RunSpec(
            argv=[],
            command=title,
            cols=a.cols,
            rows=a.rows,
            kind="exec",
            title=a.title or title,
            meta=K8sSessions.meta(cluster, "ktl exec", namespace, target=target.label),
            opener=opener,
        )
        return await self.runs.launch(spec, a)
