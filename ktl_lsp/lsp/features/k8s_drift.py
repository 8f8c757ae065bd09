"""Drift between the workspace's manifests and the cluster, followed through the explorer's
watches (docs/protocol.md, ``k8s-drift``).

For each document whose object a watch of the picked context sees, the document as the editor
has it (saved or not) is dry-run applied and compared with the live object
(``ktl_lsp/k8s/drift.py``): a difference is an information diagnostic ``k8s-drift`` at the
document's ``kind`` line, with a quick action that opens ``ktl.diff``; every such document gets
a CodeLens "in cluster: 3/3 ready". A document is compared again when its object's
``resourceVersion`` or its text changes, never on a timer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from ktl_lsp.aio import background
from ktl_lsp.checks.findings import Finding
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.lsp.checker import Checker, to_lsp_range
from ktl_lsp.lsp.feature import Feature
from ktl_lsp.lsp.features.code_actions import CodeActions
from ktl_lsp.lsp.features.codelens import CodeLenses
from ktl_lsp.lsp.features.k8s_context import KubeContext
from ktl_lsp.lsp.features.k8s_explorer import ClusterExplorer, Watch
from ktl_lsp.lsp.server import KtlServer

if TYPE_CHECKING:
    from ktl_lsp.checks import OutlineItem
    from ktl_lsp.documents.positions import Range

log = logging.getLogger(__name__)

OWNER = "k8s-drift"
#: Edits are compared once typing pauses this long.
EDIT_PAUSE_S = 0.5

DocKey = tuple[str, int]
"""(uri, document index)"""


@dataclass
class _Doc:
    stamp: tuple[Any, int]  #: (the live object's resourceVersion, hash of the text)
    node: dict[str, Any]
    range: Range | None = None  #: the diagnostic's, when the document drifted
    message: str | None = None


class K8sDrift(Feature):
    def __init__(
        self,
        server: KtlServer,
        checker: Checker,
        context: KubeContext,
        explorer: ClusterExplorer,
        lenses: CodeLenses,
        actions: CodeActions,
    ) -> None:
        self.server = server
        self.checker = checker
        self.k8s = context.k8s
        self.explorer = explorer
        self.docs: dict[DocKey, _Doc] = {}
        #: uids of the live objects the workspace declares, and of all seen at the last compare
        self.declared: set[str] = set()
        self.known: set[str] = set()
        self._dirty = False
        self._running = False
        self._edit_timer: asyncio.TimerHandle | None = None
        explorer.on_batch.append(self._batch)
        checker.on_edit(self._edited)
        lenses.extra.append(self.lenses)
        actions.extra.append(self.actions)

    # -- triggers -----------------------------------------------------------------------------
    def _current(self) -> Watch | None:
        """The watch of the picked context (any watch when none is picked)."""
        picked = self.k8s.clusters.default_context
        for w in self.explorer.watches.values():
            if w.snapshot_sent and (picked is None or w.context == picked):
                return w
        return None

    def _batch(self, w: Watch, touched: set[str] | None) -> None:
        """A snapshot compares everything; a delta only when it touches an object the
        workspace declares, or one it may (an object added: a manifest may name it)."""
        if self._current() is not w:
            return
        if (
            touched is None
            or touched & self.declared
            or any(uid not in self.known for uid in touched)
        ):
            self._refresh_soon()

    def _edited(self, uri: str, event: str) -> None:
        if event in ("change", "save") and self._current() is not None:
            if self._edit_timer is not None:
                self._edit_timer.cancel()
            loop = asyncio.get_running_loop()
            self._edit_timer = loop.call_later(EDIT_PAUSE_S, self._refresh_soon)

    def _refresh_soon(self) -> None:
        self._dirty = True
        if not self._running:
            self._running = True
            background(self._refresh_loop(), name="k8s-drift")

    async def _refresh_loop(self) -> None:
        try:
            while self._dirty:
                self._dirty = False
                w = self._current()
                if w is not None:
                    try:
                        await self._refresh(w)
                    except K8sError as exc:
                        log.info("drift not compared: %s", exc)
        finally:
            self._running = False

    # -- comparing ----------------------------------------------------------------------------
    async def _refresh(self, w: Watch) -> None:
        from ktl_lsp.k8s.drift import drift_of
        from ktl_lsp.k8s.fieldpath import doc_anchor
        from ktl_lsp.k8s.manifests import load

        cluster = w.explorer.cluster
        namespace = self.k8s.namespace(cluster, None)
        placed = await asyncio.to_thread(self.checker.workspace.all_objects)
        paths: set[str] = set()
        for p in placed:
            s = p.summary
            ns = None if s.cluster_scoped else (s.namespace or namespace)
            if w.explorer.find(s.kind, s.name, ns) is not None:
                paths.add(p.path)
        seen: set[DocKey] = set()
        lenses_changed = False
        for path in sorted(paths):
            uri = self.checker.uri_for(path)
            doc = self.checker.document(uri)
            try:
                text = (
                    doc.source
                    if doc is not None
                    else await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
                )
            except OSError:
                continue
            _, manifests = await asyncio.to_thread(load, text)
            for m in manifests:
                if m.obj is None or not m.name:
                    continue
                node = w.explorer.find(m.kind, m.name, m.namespace or namespace)
                node = node or w.explorer.find(m.kind, m.name, None)
                if node is None:
                    continue
                key = (uri, m.index)
                seen.add(key)
                stamp = (node.get("resourceVersion"), hash(text))
                old = self.docs.get(key)
                if old is not None and old.stamp == stamp:
                    continue
                lenses_changed |= old is None or _lens_text(old.node) != _lens_text(node)
                async with cluster.using():
                    found = await drift_of(cluster, m, namespace)
                entry = _Doc(stamp, node)
                findings = []
                if found is not None:
                    entry.range, entry.message = doc_anchor(m.doc), found.message()
                    findings.append(Finding(entry.range, "information", OWNER, entry.message))
                self.docs[key] = entry
                if (old is None or old.message is None) and found is None:
                    continue  # nothing was said and nothing is to say
                self.checker.set_extra(uri, f"{OWNER}#{m.index}", findings, text)
        for key in [k for k in self.docs if k not in seen]:
            gone = self.docs.pop(key)
            lenses_changed = True
            if gone.message is not None:
                self.checker.set_extra(key[0], f"{OWNER}#{key[1]}", [], "")
        self.declared = {d.node["uid"] for d in self.docs.values()}
        self.known = set(w.explorer.nodes)
        if lenses_changed:
            self.server.refresh_code_lenses()

    # -- what the editor shows ----------------------------------------------------------------
    def lenses(self, uri: str, items: list[OutlineItem]) -> list[lsp.CodeLens]:
        out = []
        for item in items:
            entry = self.docs.get((uri, item.document))
            if item.kind != "k8s-object" or entry is None:
                continue
            line = item.range.start.line
            where = lsp.Range(start=lsp.Position(line, 0), end=lsp.Position(line, 0))
            node = entry.node
            args = {"kind": node["kind"], "name": node["name"], "namespace": node.get("namespace")}
            command = lsp.Command(
                title=_lens_text(node), command="ktl.k8s.describe", arguments=[args]
            )
            out.append(lsp.CodeLens(range=where, command=command))
        return out

    def actions(self, uri: str, asked: lsp.Range) -> list[lsp.Command]:
        """ "Show the live diff" on a drifted document (a plain command: Python LSP clients read
        a code action that carries a command as a command)."""
        out = []
        for (doc_uri, index), entry in self.docs.items():
            if doc_uri != uri or entry.range is None or entry.message is None:
                continue
            r = to_lsp_range(entry.range)
            if r.start.line > asked.end.line or r.end.line < asked.start.line:
                continue
            args = {"uri": uri, "documents": [index]}
            out.append(
                lsp.Command(title="Show the live diff", command="ktl.diff", arguments=[args])
            )
        return out


def _lens_text(node: dict[str, Any]) -> str:
    if node.get("ready") and node["kind"] != "Pod":
        return f"in cluster: {node['ready']} ready"
    if node.get("status"):
        return f"in cluster: {node['status']}"
    return "in cluster"
