"""Diagnostics: editor events feed the checked workspace (``ktl_lsp/lsp/checker.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types as lsp
from pygls.uris import to_fs_path

from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import Feature, handles
from ktl_lsp.lsp.server import KtlServer


class Diagnostics(Feature):
    def __init__(self, server: KtlServer, checker: Checker) -> None:
        self.server = server
        self.checker = checker

    @handles(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(self, params: lsp.DidOpenTextDocumentParams) -> None:
        self.checker.opened(params.text_document.uri)

    @handles(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(self, params: lsp.DidChangeTextDocumentParams) -> None:
        self.checker.changed(params.text_document.uri)

    @handles(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(self, params: lsp.DidSaveTextDocumentParams) -> None:
        self.checker.saved(params.text_document.uri)

    @handles(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(self, params: lsp.DidCloseTextDocumentParams) -> None:
        self.checker.closed(params.text_document.uri)

    @handles(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched(self, params: lsp.DidChangeWatchedFilesParams) -> None:
        changes = [
            (Path(p), c.type == lsp.FileChangeType.Deleted)
            for c in params.changes
            if (p := to_fs_path(c.uri))
        ]
        if changes:
            self.checker.files_changed(changes)

    @handles(lsp.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_folders(self, params: lsp.DidChangeWorkspaceFoldersParams) -> None:
        def paths(folders: Sequence[lsp.WorkspaceFolder]) -> list[Path]:
            return [Path(p) for f in folders if (p := to_fs_path(f.uri))]

        self.checker.folders_changed(paths(params.event.added), paths(params.event.removed))

    async def watch_files(self) -> None:
        """Asks the client to report YAML/JSON changes on disk, when it can (dynamic
        registration)."""
        caps = self.server.client_capabilities
        watched = caps.workspace.did_change_watched_files if caps and caps.workspace else None
        if not (watched and watched.dynamic_registration):
            return
        options = lsp.DidChangeWatchedFilesRegistrationOptions(
            watchers=[
                lsp.FileSystemWatcher(glob_pattern=g) for g in ("**/*.{yaml,yml}", "**/*.json")
            ]
        )
        await self.server.client_register_capability_async(
            lsp.RegistrationParams(
                registrations=[
                    lsp.Registration(
                        id="ktl-watched-files",
                        method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                        register_options=options,
                    )
                ]
            )
        )
