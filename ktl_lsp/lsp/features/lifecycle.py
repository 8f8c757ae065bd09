"""initialize / shutdown: read settings (and the switches that change while running), start
learning the workspace, and make sure no child outlives the server."""

from __future__ import annotations

import asyncio

from lsprotocol import types as lsp

from ktl_lsp import codecache
from ktl_lsp.aio import background, freeze_long_lived, import_off_loop
from ktl_lsp.lsp.checker import Checker
from ktl_lsp.lsp.feature import Feature, handles
from ktl_lsp.lsp.features.diagnostics import Diagnostics
from ktl_lsp.lsp.features.replay import Replay
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.lsp.settings import Settings
from ktl_lsp.lsp.warmup import warm_messages
from ktl_lsp.pty import runner


class Lifecycle(Feature):
    def __init__(
        self, server: KtlServer, checker: Checker, diagnostics: Diagnostics, replay: Replay
    ) -> None:
        self.server = server
        self.checker = checker
        self.diagnostics = diagnostics
        self.replay = replay

    @handles(lsp.INITIALIZE)
    def initialize(self, params: lsp.InitializeParams) -> None:
        self.server.settings = Settings.from_options(params.initialization_options)

    @handles(lsp.INITIALIZED)
    def initialized(self, params: lsp.InitializedParams) -> None:
        for problem in self.server.settings.problems:
            self.server.notice(f"ktl: {problem}")
        # Learn the workspace (CRDs, stacks, duplicates) in the background, off the loop.
        self.checker.start_folders()
        background(self.diagnostics.watch_files(), "ktl-register-watchers")
        # The first command should be as fast as the next: the store, the gateway's code and
        # app, the PTY runner and the plan scheduler are made ready off the loop now, not on
        # a request's path.
        background(self.server.open_sessions(), "ktl-open-sessions")
        background(self.replay.prepare(), "ktl-prepare-gateway")
        background(runner.prepare(), "ktl-prepare-pty")
        background(import_off_loop("ktl_lsp.orchestration"), "ktl-prepare-plans")
        asyncio.get_running_loop().call_soon(warm_messages, self.server.protocol)
        freeze_long_lived()
        cache = codecache.active()
        if cache is not None:
            background(asyncio.to_thread(cache.save), "ktl-save-code-cache")

    @handles(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def configuration_changed(self, params: lsp.DidChangeConfigurationParams) -> None:
        """Turns language features on or off; other settings are read at initialize only."""
        before = self.server.settings
        after = self.server.settings = before.changed(params.settings)
        for problem in after.problems:
            self.server.notice(f"ktl: {problem}")
        if after.diagnostics != before.diagnostics:
            self.checker.republish()
        if after.code_lens != before.code_lens:
            self.server.refresh_code_lenses()

    @handles(lsp.SHUTDOWN)
    def shutdown(self, params: None) -> None:
        self.server.shutdown_sessions()
