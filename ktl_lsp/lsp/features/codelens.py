"""CodeLens: server-executed actions above what a file defines, so they work in every editor.

Above each Kubernetes document: Apply | Diff | Delete, plus Logs | Verify | Exec on workloads
and Port-forward on workloads and Services that declare ports; above
each stack release and plan node: Run. The commands and their arguments are docs/protocol.md's (`uri` + `documents: [index]`, or `nodes: [id]`).

The structure comes from the checked workspace (parsed once per edit, shared with diagnostics).
Small files get their commands inline; a file with many lenses gets them without commands, each
resolved by `codeLens/resolve` when the editor shows it, so a huge file costs little per edit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path

from ktl_lsp.aio import import_off_loop
from ktl_lsp.lsp.checker import Checker, path_of
from ktl_lsp.lsp.feature import Feature, handles
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.sessions.model import Session, SessionFilter, State, now_ns

if TYPE_CHECKING:
    from ktl_lsp.checks import OutlineItem
    from ktl_lsp.orchestration.stack_needs import StackNeeds

#: Above this many lenses in one file, commands are left to codeLens/resolve.
INLINE_LIMIT = 100

#: action -> (title, command)
ACTIONS: dict[str, tuple[str, str]] = {
    "apply": ("Apply", "ktl.apply"),
    "diff": ("Diff", "ktl.diff"),
    "delete": ("Delete", "ktl.delete"),
    "logs": ("Logs", "ktl.logs"),
    "verify": ("Verify", "ktl.verify"),
    "run": ("Run", "ktl.plan.run"),
    "exec": ("Exec", "ktl.exec"),
    "portForward": ("Port-forward", "ktl.portForward"),
    "inferredNeeds": ("needs (inferred)", "ktl.plan.run"),
    "render": ("Render", "ktl.helm.render"),
    "renderWith": ("Render with this file", "ktl.helm.render"),
}


def lens_data(item: OutlineItem, uri: str, run_uri: str) -> list[dict[str, Any]]:
    """What each lens above `item` does (the lens's `data`, enough to build its command)."""
    if item.kind == "k8s-object":
        doc = {"uri": uri, "document": item.document}
        out = [{"action": a, **doc} for a in ("apply", "diff", "delete")]
        target = _logs_target(item) if item.is_workload else None
        if item.is_workload:
            if target is not None:
                out.append({"action": "logs", **target})
            out.append({"action": "verify", **doc})
            if target is not None and item.details.get("kind") != "CronJob":
                out.append({"action": "exec", **target})
        elif item.details.get("kind") == "Service" and item.details.get("name"):
            target = {"service": item.details["name"]}
            if item.details.get("namespace"):
                target["namespace"] = item.details["namespace"]
        ports = item.details.get("ports")
        if target is not None and ports and item.details.get("kind") != "CronJob":
            forward = [f":{p}" for p in ports.split(",")]
            out.append({"action": "portForward", **target, "ports": forward})
        return out
    node = item.details.get("name") if item.kind == "stack-release" else item.details.get("id")
    return [{"action": "run", "uri": run_uri, "node": node or item.label}]


def _logs_target(item: OutlineItem) -> dict[str, Any] | None:
    name = item.details.get("name")
    if not name:
        return None  # generateName: nothing to follow until it exists
    kind = item.details.get("kind", "")
    target: dict[str, Any] = (
        {"pod": name} if kind == "Pod" else {"workload": f"{kind.lower()}/{name}"}
    )
    namespace = item.details.get("namespace")
    if namespace:
        target["namespace"] = namespace
    return target


def command_for(data: Any) -> lsp.Command:
    """The command of a lens from its `data` (also what codeLens/resolve answers)."""
    if not isinstance(data, dict) or data.get("action") not in ACTIONS:
        raise JsonRpcInvalidParams("codeLens/resolve: not a ktl lens")
    action = data["action"]
    title, command = ACTIONS[action]
    args: dict[str, Any]
    if action == "run":
        args = {"uri": data.get("uri"), "nodes": [data.get("node")]}
    elif action == "inferredNeeds":
        title = f"needs (inferred): {', '.join(str(n) for n in data.get('needs') or [])}"
        args = {"uri": data.get("uri"), "nodes": [data.get("node")], "dryRun": True}
    elif action == "render":
        args = {"uri": data.get("uri")}
    elif action == "renderWith":
        args = {"uri": data.get("uri"), "valuesFiles": [data.get("uri")]}
    elif action in ("logs", "exec"):
        args = {k: data[k] for k in ("pod", "workload", "namespace") if k in data}
    elif action == "portForward":
        keys = ("pod", "service", "workload", "namespace", "ports")
        args = {k: data[k] for k in keys if k in data}
    else:
        args = {"uri": data.get("uri"), "documents": [data.get("document")]}
    return lsp.Command(title=title, command=command, arguments=[args])


def helm_lens_data(path: Path, uri: str) -> list[dict[str, Any]]:
    """ "Render" atop a chart's Chart.yaml and templates, "Render with this file" atop its values
    files (`ktl.helm.render`)."""
    from ktl_lsp.documents.file_kinds import FileKind, detect_file_kind  # in a worker thread
    from ktl_lsp.helm.charts import chart_root

    kind = detect_file_kind(path)
    if kind not in (FileKind.HELM_CHART, FileKind.HELM_TEMPLATE, FileKind.HELM_VALUES):
        return []
    if chart_root(path) is None:
        return []
    return [{"action": "renderWith" if kind == FileKind.HELM_VALUES else "render", "uri": uri}]


def _run_target(path: Path, uri: str, open_uris: dict[Path, str]) -> str:
    """`ktl.plan.run`'s uri for a stack file: the stack root's stack.yaml (ktl runs stacks)."""
    from ktl_lsp.checks.stack_file import stack_root_for  # in a worker thread
    from ktl_lsp.checks.stack_shapes import STACK_NAMES

    root = stack_root_for(path)
    if root is None:
        return uri
    for name in STACK_NAMES:
        stack = (root / name).resolve()
        if stack.is_file():
            return open_uris.get(stack) or from_fs_path(str(stack)) or stack.as_uri()
    return uri


def ago(ns: int, now_ns: int) -> str:
    secs = max(0, (now_ns - ns) // 1_000_000_000)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if secs >= size:
            return f"{secs // size} {unit} ago"
    return "just now"


_VERBS = {
    "ktl apply": "applied",
    "ktl diff": "diffed",
    "ktl delete": "deleted",
    "ktl verify": "verified",
}


def describe(session: Session, now_ns: int) -> str:
    """'applied 2 min ago', 'plan failed 1 h ago (exit 1)', 'running'."""
    command = str(session.meta.get("command", ""))
    verb = next((v for k, v in _VERBS.items() if command.startswith(k)), "ran")
    if session.kind == "plan":
        verb = "plan ran"
    if session.state is State.RUNNING:
        return f"{session.title[:40]}: running"
    when = ago(session.ended_ns or session.created_ns, now_ns)
    if session.state is State.DONE:
        return f"{verb} {when}"
    code = f" (exit {session.exit_code})" if session.exit_code not in (None, 0) else ""
    return f"{verb} {when}: {session.state}{code}"


class CodeLenses(Feature):
    def __init__(self, server: KtlServer, checker: Checker) -> None:
        self.server = server
        self.checker = checker
        #: Plans of the stacks shown, for their inferred needs (made on first need).
        self.stack_needs: StackNeeds | None = None
        #: Other features' lenses (with their command), given the uri and its outline.
        self.extra: list[Callable[[str, list[OutlineItem]], list[lsp.CodeLens]]] = []

    @handles(lsp.TEXT_DOCUMENT_CODE_LENS)
    async def code_lens(self, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        uri = params.text_document.uri
        path = path_of(uri)
        if path is None:
            return []
        items = await self.checker.outline(uri)
        run_uri = uri
        releases = any(i.kind == "stack-release" for i in items)
        if releases:
            run_uri = await asyncio.to_thread(_run_target, path, uri, self.checker.open_uris())
        top = lsp.Range(
            start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)
        )
        helm = await asyncio.to_thread(helm_lens_data, path, uri)
        lenses = [lsp.CodeLens(range=top, data=data) for data in helm]
        for item in items:
            line = item.range.start.line
            where = lsp.Range(
                start=lsp.Position(line=line, character=0),
                end=lsp.Position(line=line, character=0),
            )
            for data in lens_data(item, uri, run_uri):
                lenses.append(lsp.CodeLens(range=where, data=data))
        if releases:
            lenses += await self.inferred_needs_lenses(items, run_uri)
        if len(lenses) <= INLINE_LIMIT:
            for lens in lenses:
                lens.command = command_for(lens.data)
        for extra in self.extra:
            lenses += extra(uri, items)
        if items:
            history = await self.last_session_lens(uri, path)
            if history is not None:
                lenses.insert(0, history)
        return lenses

    @handles(lsp.CODE_LENS_RESOLVE)
    def resolve(self, lens: lsp.CodeLens) -> lsp.CodeLens:
        lens.command = command_for(lens.data)
        return lens

    async def inferred_needs_lenses(
        self, items: list[OutlineItem], run_uri: str
    ) -> list[lsp.CodeLens]:
        """'needs (inferred): db, config' above each release the stack's charts make need others
        (a dry run of that release when clicked)."""
        stack = path_of(run_uri)
        if stack is None or stack.name not in ("stack.yaml", "stack.yml"):
            return []
        await import_off_loop("ktl_lsp.orchestration.stack_needs")
        from ktl_lsp.orchestration.stack_needs import StackNeeds, inferred_needs_of

        self.stack_needs = self.stack_needs or StackNeeds()
        plan = await asyncio.to_thread(self.stack_needs.plan, stack)
        lenses: list[lsp.CodeLens] = []
        for item in items:
            name = item.details.get("name")
            needs = inferred_needs_of(plan, name) if plan and name else []
            if item.kind != "stack-release" or not needs:
                continue
            line = item.range.start.line
            at = lsp.Position(line=line, character=0)
            names = list(dict.fromkeys(n for n, _ in needs))
            data = {"action": "inferredNeeds", "uri": run_uri, "node": name, "needs": names}
            lenses.append(lsp.CodeLens(range=lsp.Range(start=at, end=at), data=data))
        return lenses

    async def last_session_lens(self, uri: str, path: Path) -> lsp.CodeLens | None:
        """'applied 2 min ago · open replay' above a file with history (sessions that name it)."""
        manager = self.server.manager
        found: list[Session] = []
        for key, value in (("uri", uri), ("file", str(path))):
            found += await manager.list_sessions(SessionFilter(meta={key: value}, limit=1))
        if not found:
            return None
        newest = max(found, key=lambda s: s.created_ns)
        return lsp.CodeLens(
            range=lsp.Range(
                start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)
            ),
            command=lsp.Command(
                title=f"{describe(newest, now_ns())} · open replay",
                command="ktl.session.openReplay",
                arguments=[{"sessionId": newest.id}],
            ),
        )
