"""``ktl.k8s.edit``: a live object's YAML as a document of its own, applied when it is saved.

The object is written (without status and server bookkeeping) to a temporary file the editor
opens; its ``ktl-live:`` uri is answered too, and ``ktl.k8s.live`` serves that uri's text for an
editor that shows such documents itself (VS Code's ``TextDocumentContentProvider``). Saving the
file runs ``ktl.diff`` on it against the object's context (a server-side dry run, so a 422 puts
its line diagnostics on the document as for any manifest), then asks the editor whether to apply
the change (``window/showMessageRequest`` naming the object and the context); "Apply" runs
``ktl.apply`` with ``force`` (the editor's values win, as ``kubectl edit``'s do).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from ktl_lsp.aio import background
from ktl_lsp.lsp.arguments import ArgumentError
from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import REQUEST_FAILED, Feature, command
from ktl_lsp.lsp.features.k8s import FileArgs, K8sCommands
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.features.k8s_explorer import LIVE_SCHEME, GetArgs, live_uri
from ktl_lsp.lsp.server import KtlServer

#: Metadata the server keeps for itself; an edited object is applied without it.
BOOKKEEPING = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
APPLY = "Apply"
#: Diff lines shown in the question before it is cut.
DIFF_LINES_SHOWN = 40


@dataclass
class LiveArgs:
    uri: str  #: a ``ktl-live:`` uri


@dataclass
class _Edit:
    context: str
    kind: str
    name: str
    namespace: str | None
    live_uri: str


def editable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as it is edited: no status, no server bookkeeping."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in BOOKKEEPING}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


class K8sEdit(Feature):
    def __init__(
        self, server: KtlServer, context: KubeContext, checker: Checker, k8s: K8sCommands
    ) -> None:
        self.server = server
        self.k8s = context.k8s
        self.commands = k8s
        self.edits: dict[str, _Edit] = {}  #: file uri -> what it edits
        self._dir: Path | None = None
        checker.on_edit(self._edited)

    def _root(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="ktl-live-"))
        return self._dir

    async def _yaml(self, a: GetArgs) -> tuple[str, str, str | None, str]:
        from ktl_lsp.k8s.inspect import as_yaml, fetch

        cluster, problem = await self.k8s.cluster(a.context)
        if cluster is None:
            raise JsonRpcException(problem or "no cluster", REQUEST_FAILED)
        async with cluster.using():
            res, obj = await fetch(cluster, a.kind, a.name, a.namespace, a.apiVersion)
        if res.kind == "Secret" and not a.reveal:
            raise ArgumentError(
                "a Secret is edited with its values: ask with 'reveal': true (its values are "
                "written to a temporary file only you can read)"
            )
        namespace = (obj.get("metadata") or {}).get("namespace")
        text = await asyncio.to_thread(as_yaml, editable(obj), True)
        return cluster.name, res.kind, namespace, text

    @command("ktl.k8s.edit")
    async def edit(self, a: GetArgs) -> dict[str, Any]:
        context, kind, namespace, text = await self._yaml(a)
        folder = self._root() / context / (namespace or "_") / kind
        path = folder / f"{a.name}.yaml"

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)

        await asyncio.to_thread(write)
        uri = path.as_uri()
        shown = live_uri(context, kind, a.name, namespace)
        self.edits[uri] = _Edit(context, kind, a.name, namespace, shown)
        return {"uri": uri, "liveUri": shown, "context": context, "yaml": text}

    @command("ktl.k8s.live")
    async def live(self, a: LiveArgs) -> dict[str, Any]:
        """The text of a ``ktl-live://<context>/<namespace or _>/<Kind>/<name>.yaml`` uri."""
        prefix = f"{LIVE_SCHEME}://"
        parts = a.uri.removeprefix(prefix).split("/") if a.uri.startswith(prefix) else []
        if len(parts) != 4 or not parts[3].endswith(".yaml"):
            raise ArgumentError(f"field 'uri': not a {LIVE_SCHEME}: uri of an object: {a.uri}")
        context, namespace, kind, name = parts[0], parts[1], parts[2], parts[3][: -len(".yaml")]
        args = GetArgs(kind, name, None if namespace == "_" else namespace, context)
        _, _, _, text = await self._yaml(args)
        return {"uri": a.uri, "yaml": text}

    # -- saving -------------------------------------------------------------------------------
    def _edited(self, uri: str, event: str) -> None:
        if event == "save" and uri in self.edits:
            background(self._saved(uri, self.edits[uri]), name="ktl-live-save")

    async def _saved(self, uri: str, edit: _Edit) -> None:
        what = f"{edit.kind}/{edit.name}" + (f" in {edit.namespace}" if edit.namespace else "")
        diffed = await self.commands.diff(FileArgs(uri=uri, context=edit.context))
        if diffed.get("state") != "done":
            self._say(
                lsp.MessageType.Error, f"{what} (context {edit.context}): {diffed.get('error')}"
            )
            return
        text = str(diffed.get("diff") or "")
        if not text:
            self._say(lsp.MessageType.Info, f"{what} (context {edit.context}): nothing changes")
            return
        lines = text.splitlines()
        shown = "\n".join(lines[:DIFF_LINES_SHOWN]) + (
            f"\n... {len(lines) - DIFF_LINES_SHOWN} more lines"
            if len(lines) > DIFF_LINES_SHOWN
            else ""
        )
        params = lsp.ShowMessageRequestParams(
            type=lsp.MessageType.Warning,
            message=f"Apply this change to {what} in context {edit.context}?\n{shown}",
            actions=[lsp.MessageActionItem(title=APPLY), lsp.MessageActionItem(title="Cancel")],
        )
        try:
            answer = await self.server.window_show_message_request_async(params)
        except Exception:
            return  # a client that cannot ask: nothing is applied
        if answer is None or answer.title != APPLY:
            return
        applied = await self.commands.apply(FileArgs(uri=uri, context=edit.context, force=True))
        if applied.get("state") == "done":
            self._say(lsp.MessageType.Info, f"{what} applied to context {edit.context}")
        else:
            self._say(
                lsp.MessageType.Error, f"{what} (context {edit.context}): {applied.get('error')}"
            )

    def _say(self, kind: lsp.MessageType, message: str) -> None:
        self.server.window_show_message(lsp.ShowMessageParams(type=kind, message=message))
