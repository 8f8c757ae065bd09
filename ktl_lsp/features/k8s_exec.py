"""``ktl.exec``: a shell (or a command) inside a container, as an interactive session.

The session is a terminal like ``ktl.run``'s (``ktl/sessionData`` out, ``ktl.session.input``
and ``ktl.session.resize`` in, cancel = Ctrl-C then hang-up), recorded like any session; the
terminal itself is the API server's exec stream (``ktl_lsp/k8s/exec.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktl_lsp.features.arguments import ArgumentError, parse
from ktl_lsp.features.k8s import cluster_of, namespace_of, session_meta
from ktl_lsp.features.sessions import follow
from ktl_lsp.k8s.targets import Target
from ktl_lsp.pty.base import SpawnError
from ktl_lsp.pty.runner import Pty
from ktl_lsp.server import KtlServer
from ktl_lsp.sessions.manager import LiveSession, RunSpec


@dataclass
class ExecArgs:
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
    detach: bool = False
    workDoneToken: int | str | None = None

    def check(self) -> None:
        if (self.pod is None) == (self.workload is None):
            raise ArgumentError("exactly one of 'pod' or 'workload' is required")
        if self.workload is not None and "/" not in self.workload:
            raise ArgumentError("field 'workload': expected <kind>/<name>, e.g. deployment/web")
        if self.command is not None and not self.command:
            raise ArgumentError("field 'command': must not be empty (leave it out for a shell)")
        if not (1 <= self.cols <= 1000 and 1 <= self.rows <= 1000):
            raise ArgumentError("fields 'cols' and 'rows': must be 1-1000")


def setup(server: KtlServer) -> None:
    @server.command("ktl.exec")
    async def exec_(ls: KtlServer, *args: Any) -> dict[str, Any]:
        from ktl_lsp.k8s.exec import ExecRequest, open_exec

        a = parse(ExecArgs, args)
        cluster, problem = await cluster_of(ls, a.context)
        namespace = namespace_of(ls, cluster, a.namespace)
        target = Target(namespace, pod=a.pod, workload=a.workload)
        shown = " ".join(a.command) if a.command else "shell"
        command = (
            f"ktl exec {target.label}"
            + (f" -c {a.container}" if a.container else "")
            + f" -n {namespace} -- {shown}"
        )
        req = ExecRequest(target, a.container, a.command, a.tty, a.cols, a.rows)

        async def opener(live: LiveSession) -> Pty:
            if cluster is None:
                raise SpawnError(problem or "no cluster")
            return await open_exec(cluster, req, live)

        spec = RunSpec(
            argv=[],
            command=command,
            cols=a.cols,
            rows=a.rows,
            kind="exec",
            title=a.title or command,
            meta=session_meta(cluster, "ktl exec", namespace, target=target.label),
            opener=opener,
        )
        manager = ls.manager
        live = manager.create_pending(spec)
        if ls.feed is not None:
            ls.feed.watch(live.session, a.workDoneToken)
        manager.launch(live, spec)
        return await follow(ls, live, a.detach, watched=True)
