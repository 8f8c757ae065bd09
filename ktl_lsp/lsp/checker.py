"""The checked workspace: the checkers' findings, published as the user types.

The checking layer (`ktl_lsp.checks.Workspace`) is synchronous and thread-safe; the
:class:`Checker` keeps it off the event loop, fed with editor buffers and the workspace folders
(diagnostics, CodeLens and the Kubernetes commands share it):

- didOpen, didSave and didChange check at once; changes that arrive while a document's check is
  under way give one more check of the latest text when it ends (coalesced, never a queue);
- one check runs at a time (the workspace re-parses only the documents an edit touched), and its
  results are dropped when a newer version of the document arrived meanwhile;
- every open document whose findings may have changed with the edit (another file of a stack,
  a duplicate across files, a CRD and its custom resources) is re-published too;
- only open documents get diagnostics, like yaml-language-server; closing one clears them;
- workspace folders are read in the background so cross-file checks see the whole workspace;
- findings from elsewhere (the API server's answer to an apply, a verify) are merged in per
  document with `Checker.set_extra` until their producer replaces or clears them.

A failing check is reported to the client (with its traceback) and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument

from ktl_lsp.aio import Coalescer, background, import_off_loop
from ktl_lsp.checks.findings import Finding, in_encoding
from ktl_lsp.documents.file_kinds import is_checkable_name
from ktl_lsp.documents.positions import LineIndex, PositionEncoding, Range
from ktl_lsp.lsp.feature import Feature
from ktl_lsp.lsp.server import KtlServer

if TYPE_CHECKING:
    from ktl_lsp.checks import OutlineItem, Workspace
    from ktl_lsp.checks.crds import CrdVersion
    from ktl_lsp.sessions.manager import SessionManager

#: Pause after the last keystroke before a document is checked again.

SEVERITIES: dict[str, lsp.DiagnosticSeverity] = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "information": lsp.DiagnosticSeverity.Information,
    "hint": lsp.DiagnosticSeverity.Hint,
}
TAGS: dict[str, lsp.DiagnosticTag] = {
    "unnecessary": lsp.DiagnosticTag.Unnecessary,
    "deprecated": lsp.DiagnosticTag.Deprecated,
}


def path_of(uri: str) -> Path | None:
    """The file behind a uri, when it is one the checkers know (YAML, plan and ktl files)."""
    try:
        fs_path = to_fs_path(uri)
    except Exception:
        return None
    if not fs_path:
        return None
    path = Path(fs_path)
    if not path.is_absolute() or not is_checkable_name(path):
        return None
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_LIBC: Any = None


def _load_libc() -> ctypes.CDLL:
    """glibc by its soname first: ``find_library`` runs ``ldconfig`` (and its module imports
    tempfile, shutil...), a few ms of every start."""
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        from ctypes import util

        return ctypes.CDLL(util.find_library("c") or "libc.so.6")


def _libc() -> Any:
    """glibc, or False where there is none (macOS, Windows, musl: nothing to tune)."""
    global _LIBC
    if _LIBC is None:
        try:
            libc = _load_libc()
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            _LIBC = libc
        except (OSError, AttributeError):
            _LIBC = False
    return _LIBC


def keep_big_allocations_apart() -> None:
    """Allocations of 1 MiB and more (an editor's text, as JSON, bytes and str; libyaml's
    buffers) get pages of their own, returned to the system when freed. glibc would otherwise
    raise that threshold to the largest block freed so far and serve the next large texts from
    its heaps, which keep their size after the texts are gone (a worker thread's heap is never
    trimmed below its high-water mark)."""
    libc = _libc()
    if libc:
        libc.mallopt(M_MMAP_THRESHOLD, 1024 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024)


def release_free_memory() -> None:
    """Returns the C allocator's free pages to the system (glibc's `malloc_trim`)."""
    libc = _libc()
    if libc:
        libc.malloc_trim(0)


def to_lsp_range(rng: Range) -> lsp.Range:
    return lsp.Range(
        start=lsp.Position(line=rng.start.line, character=rng.start.character),
        end=lsp.Position(line=rng.end.line, character=rng.end.character),
    )


def to_diagnostic(finding: Finding, uri: str, uri_for: dict[str, str]) -> lsp.Diagnostic:
    """One finding as a diagnostic; `uri_for` maps other files' paths to the editor's uris."""
    related = [
        lsp.DiagnosticRelatedInformation(
            location=lsp.Location(
                uri=uri if r.path is None else uri_for.get(r.path) or _file_uri(r.path),
                range=to_lsp_range(r.range),
            ),
            message=r.message,
        )
        for r in finding.related
    ]
    return lsp.Diagnostic(
        range=to_lsp_range(finding.range),
        message=finding.message,
        severity=SEVERITIES.get(finding.severity, lsp.DiagnosticSeverity.Error),
        code=finding.code,
        source=finding.source,
        related_information=related or None,
        tags=[TAGS[t] for t in finding.tags if t in TAGS] or None,
    )


def _file_uri(path: str) -> str:
    return from_fs_path(path) or Path(path).as_uri()


class Checker(Feature):
    """The server's checked workspace: editor buffers and folders, and what was published."""

    def __init__(self, server: KtlServer) -> None:
        self.server = server
        self._workspace: Workspace | None = None
        self._lock = asyncio.Lock()  # one check at a time, in the order they were asked for
        self._open: dict[Path, str] = {}  # open documents: path -> the editor's uri
        self._synced: dict[str, int] = {}  # uri -> document version the workspace holds
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._checks: Coalescer[str] = Coalescer(
            lambda uri: self._guard(self.check(uri)), "ktl-check"
        )
        self._folders_task: asyncio.Task[Any] | None = None
        self._extra: dict[str, dict[str, list[Finding]]] = {}  # uri -> owner -> findings
        self._edit_hooks: list[Callable[[str, str], None]] = []
        keep_big_allocations_apart()
        server.when_sessions_open(self._sessions_opened)

    # -- the workspace ---------------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        """Created on first use, after initialize, for the configured Kubernetes version."""
        if self._workspace is None:
            # The checkers load here, not at start-up (see warm_up).
            from ktl_lsp.checks import UnsupportedVersionError, Workspace

            version = self.server.settings.k8s_version
            try:
                self._workspace = Workspace(version)
            except UnsupportedVersionError as exc:
                self.server.notice(f"ktl: setting 'k8sVersion': {exc}; using the newest")
                self._workspace = Workspace()
        return self._workspace

    def parse_stats(self) -> dict[str, int] | None:
        """What the parses hold (estimated bytes; see `Workspace.parse_stats`), once checking."""
        return None if self._workspace is None else self._workspace.parse_stats()

    def encoding(self) -> PositionEncoding:
        try:
            value = self.server.workspace.position_encoding
        except Exception:
            return "utf-16"
        name = str(getattr(value, "value", value) or "utf-16")
        if name in ("utf-8", "utf-32"):
            return "utf-8" if name == "utf-8" else "utf-32"
        return "utf-16"

    def document(self, uri: str) -> TextDocument | None:
        """The editor's open document (None once closed)."""
        doc: TextDocument | None = self.server.workspace.text_documents.get(unquote(uri))
        return doc

    def source(self, uri: str) -> tuple[Path, str] | None:
        """The file and the editor's current text of an open, checkable document."""
        path = self._uri_path(uri)
        doc = self.document(uri) if path is not None else None
        if path is None or doc is None:
            return None
        return path, doc.source

    def open_uris(self) -> dict[Path, str]:
        """Open documents: path -> the editor's uri."""
        return dict(self._open)

    def uri_for(self, path: str) -> str:
        """The uri of a file the checkers name: the editor's when it is open."""
        return self._open.get(Path(path)) or _file_uri(path)

    def start_folders(self) -> None:
        """Reads the workspace folders in the background, once."""
        if self._folders_task is None:
            self._folders_task = background(self._guard(self._load_folders()), "ktl-folders")

    def _sessions_opened(self, manager: SessionManager) -> None:
        """Sessions record which workspace folder their work is in (sessions/provenance.py)."""
        manager.provenance.roots = self.folder_roots

    def folder_roots(self) -> list[Path]:
        ws = self.server.workspace
        uris = [f.uri for f in ws.folders.values()]
        if not uris and ws.root_uri:
            uris = [ws.root_uri]
        roots: list[Path] = []
        for uri in uris:
            fs_path = to_fs_path(uri)
            if fs_path and Path(fs_path).is_dir():
                roots.append(Path(fs_path))
        return roots

    # -- editor events -----------------------------------------------------------------------
    def on_edit(self, hook: Callable[[str, str], None]) -> None:
        """Calls `hook(uri, event)` ("open", "change", "save", "close") for every document of
        the editor, checkable or not (Helm's `_helpers.tpl` is not YAML, yet renders)."""
        self._edit_hooks.append(hook)

    def _edited(self, uri: str, event: str) -> None:
        for hook in self._edit_hooks:
            hook(uri, event)

    def opened(self, uri: str) -> None:
        self._edited(uri, "open")
        path = path_of(uri)
        if path is None:
            return
        self._open[path] = uri
        self._synced.pop(uri, None)
        self.start_folders()
        self.schedule(uri, 0)

    def changed(self, uri: str) -> None:
        """Checked at once when no check of it is under way, else once more when that one ends
        (with the latest text): a burst of changes gives two checks, never a queue."""
        self._edited(uri, "change")
        if self._uri_path(uri) is not None:
            self.schedule(uri, 0)

    def saved(self, uri: str) -> None:
        self._edited(uri, "save")
        if self._uri_path(uri) is not None:
            self.schedule(uri, 0)

    def closed(self, uri: str) -> None:
        self._edited(uri, "close")
        path = self._uri_path(uri)
        if path is None:
            return
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        del self._open[path]
        self._synced.pop(uri, None)
        self.server.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )
        background(self._guard(self._close(path)), "ktl-close")

    def folders_changed(self, added: Iterable[Path], removed: Iterable[Path]) -> None:
        background(self._guard(self._folders_changed(list(added), list(removed))), "ktl-folders")

    def _uri_path(self, uri: str) -> Path | None:
        path = path_of(uri)
        return path if path is not None and self._open.get(path) == uri else None

    def schedule(self, uri: str, delay: float) -> None:
        """Checks `uri` after `delay` seconds, replacing a check still waiting to start."""
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        if delay <= 0:
            self._start(uri)
        else:
            self._timers[uri] = asyncio.get_running_loop().call_later(delay, self._start, uri)

    def _start(self, uri: str) -> None:
        self._timers.pop(uri, None)
        self._checks.request(uri)

    async def flush(self, uri: str) -> None:
        """Brings the workspace up to the editor's text now (for requests such as CodeLens)."""
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        await self.check(uri)

    async def outline(self, uri: str) -> list[OutlineItem]:
        """The structure of an open document, as of its current text."""
        path = self._uri_path(uri)
        if path is None:
            return []
        await self.flush(uri)
        return await asyncio.to_thread(self.workspace.outline, path)

    async def current_findings(self, uri: str) -> list[Finding]:
        """The checkers' findings for an open document's current text (client encoding, fixes
        included); empty for a document that is not open or changed while they were computed."""
        path = self._uri_path(uri)
        doc = self.document(uri)
        if path is None or doc is None:
            return []
        version = doc.version
        await self.flush(uri)
        findings = await asyncio.to_thread(self.workspace.findings_for, path, self.encoding())
        doc = self.document(uri)
        if doc is None or doc.version != version or not self._current(uri):
            return []
        return findings

    # -- findings from elsewhere -------------------------------------------------------------
    def set_extra(self, uri: str, owner: str, findings: list[Finding], text: str) -> None:
        """Publishes `findings` with the checkers' for `uri` until `owner` replaces them.

        For producers outside the checkers (an API server's answer to an apply: owner
        ``"k8s-api#<document>"``); an empty list clears the owner's findings. Ranges are code
        points of `text`, the document's text when they were made. A document that is not open
        gets them on their own.
        """
        owners = self._extra.setdefault(uri, {})
        if findings:
            owners[owner] = list(findings)
        else:
            owners.pop(owner, None)
        if not owners:
            del self._extra[uri]
        path = self._uri_path(uri)
        if path is not None:
            background(self._guard(self._republish(path)), f"ktl-extra {uri}")
            return
        extra = self.extra_for(uri, LineIndex(text)) if self.publishing() else []
        self.server.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(
                uri=uri, diagnostics=[to_diagnostic(f, uri, {}) for f in extra]
            )
        )

    def extra_for(self, uri: str, lines: LineIndex) -> list[Finding]:
        found = [f for fs in self._extra.get(uri, {}).values() for f in fs]
        return in_encoding(found, lines, self.encoding()) if found else []

    async def set_cluster_crds(self, versions: list[CrdVersion]) -> int:
        """Custom resources validate against the connected cluster's CRDs too; returns how many
        open documents were re-checked."""
        async with self._lock:
            affected = await asyncio.to_thread(self.workspace.set_cluster_crds, versions)
            opened = [p for p in affected if p in self._open]
            await self._publish(opened)
            return len(opened)

    async def _republish(self, *paths: Path) -> None:
        async with self._lock:
            await self._publish(paths)

    def publishing(self) -> bool:
        """Whether diagnostics are published (setting ``diagnostics.enabled``); when not, each
        open document gets an empty list."""
        return self.server.settings.diagnostics.enabled

    def republish(self) -> None:
        """Publishes every open document again (after the diagnostics setting changed)."""
        background(self._guard(self._republish(*self._open)), "ktl-republish")

    # -- checking ---------------------------------------------------------------------------
    async def check(self, uri: str) -> None:
        async with self._lock:
            path = self._uri_path(uri)
            doc = self.document(uri)
            if path is None or doc is None:
                return
            version = doc.version
            if version is not None and self._synced.get(uri) == version:
                return  # already checked and published (a flush got there first)
            text = doc.source
            affected = await asyncio.to_thread(self.workspace.update, path, text)
            if version is not None:
                self._synced[uri] = version
            await self._publish(affected | {path})

    async def _publish(self, paths: Iterable[Path]) -> None:
        """Publishes fresh findings for the open documents among `paths` (lock held)."""
        encoding, publishing = self.encoding(), self.publishing()
        for path in sorted(paths):
            uri = self._open.get(path)
            if uri is None or not self._current(uri):
                continue  # not open, or a newer version is on its way: that check publishes
            findings: list[Finding] = []
            if publishing:
                findings = await asyncio.to_thread(self.workspace.findings_for, path, encoding)
            if not self._current(uri):
                continue  # edited while we computed: these ranges are stale, drop them
            uri_for = {str(p): u for p, u in self._open.items()}
            doc = self.document(uri)
            if publishing and uri in self._extra and doc is not None:
                findings = findings + self.extra_for(uri, LineIndex(doc.source))
            self.server.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(
                    uri=uri,
                    diagnostics=[to_diagnostic(f, uri, uri_for) for f in findings],
                    version=self._synced.get(uri),
                )
            )

    def _current(self, uri: str) -> bool:
        """The workspace holds the text the editor shows for `uri`."""
        doc = self.document(uri)
        return doc is not None and uri in self._synced and self._synced[uri] == doc.version

    async def _close(self, path: Path) -> None:
        async with self._lock:
            if path in self._open:
                return  # opened again meanwhile
            affected = await asyncio.to_thread(self.workspace.close, path)
            await self._publish(affected)
        # The parse's nodes went back to the allocator; hand its free pages back to the system.
        await asyncio.to_thread(release_free_memory)

    async def _load_folders(self) -> None:
        await import_off_loop("ktl_lsp.checks.workspace")
        roots = self.folder_roots()
        started = time.monotonic()
        await self._add_folders(roots)
        where = ", ".join(str(r) for r in roots) or "no folder"
        # The workspace's lock may be held by a long check: never wait for it on the loop.
        paths = await asyncio.to_thread(self.workspace.paths)
        self.server.log(
            f"ktl: workspace checked: {len(paths)} files "
            f"({where}) in {time.monotonic() - started:.1f} s"
        )

    async def _add_folders(self, roots: list[Path]) -> None:
        if not roots:
            return
        workspace = self.workspace
        for root in roots:
            # Outside the lock: a big folder must not hold up checks of what the user types.
            await asyncio.to_thread(workspace.add_directory, root)
        async with self._lock:
            # A buffer opened while its folder was read may have been replaced by the disk's
            # text: put the editor's text back, then re-publish everything open.
            for path, uri in list(self._open.items()):
                doc = self.document(uri)
                if doc is None:
                    continue
                version = doc.version
                await asyncio.to_thread(workspace.update, path, doc.source)
                if version is not None:
                    self._synced[uri] = version
            await self._publish(list(self._open))

    async def _folders_changed(self, added: list[Path], removed: list[Path]) -> None:
        if removed:
            async with self._lock:
                affected: set[Path] = set()
                known = await asyncio.to_thread(self.workspace.paths)
                for root in removed:
                    for path in known:
                        if path.is_relative_to(root.resolve()) and path not in self._open:
                            affected |= await asyncio.to_thread(self.workspace.remove, path)
                await self._publish(affected)
        await self._add_folders(added)

    def files_changed(self, changes: list[tuple[Path, bool]]) -> None:
        """Files changed on disk (a checkout, a generator): ``(path, deleted)`` each."""
        background(self._guard(self._files_changed(changes)), "ktl-watched-files")

    async def _files_changed(self, changes: list[tuple[Path, bool]]) -> None:
        async with self._lock:
            affected: set[Path] = set()
            for path, deleted in changes:
                if path in self._open or not (deleted or is_checkable_name(path)):
                    continue  # the editor's buffer wins over the disk
                if deleted:
                    affected |= await asyncio.to_thread(self.workspace.remove, path)
                else:
                    affected |= await asyncio.to_thread(self.workspace.load, path)
            # A new file can satisfy what open files lacked (a need, a CRD): check those too.
            await self._publish(affected | set(self._open))

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.server.report_server_error(exc, self)
