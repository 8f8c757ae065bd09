"""initialize / shutdown: read settings, and make sure no child outlives the server."""

from __future__ import annotations

import asyncio

from lsprotocol import types as lsp

from ktl_lsp import codecache
from ktl_lsp.aio import background, freeze_long_lived
from ktl_lsp.features.diagnostics import checker_of, watch_files
from ktl_lsp.server import KtlServer
from ktl_lsp.settings import Settings


def setup(server: KtlServer) -> None:
    @server.feature(lsp.INITIALIZE)
    def initialize(ls: KtlServer, params: lsp.InitializeParams) -> None:
        ls.settings = Settings.from_options(params.initialization_options)

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: KtlServer, params: lsp.InitializedParams) -> None:
        for problem in ls.settings.problems:
            ls.notice(f"ktl: {problem}")
        # Learn the workspace (CRDs, stacks, duplicates) in the background, off the loop.
        checker_of(ls).start_folders()
        background(watch_files(ls), "ktl-register-watchers")
        freeze_long_lived()
        cache = codecache.active()
        if cache is not None:
            background(asyncio.to_thread(cache.save), "ktl-save-code-cache")

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: KtlServer, params: None) -> None:
        ls.shutdown_sessions()
