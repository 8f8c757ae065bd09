"""The language server with every feature, as the command line starts it."""

from __future__ import annotations

import os
from pathlib import Path

from ktl_lsp.lsp.features import FEATURES
from ktl_lsp.lsp.features.stats import FaultInjection
from ktl_lsp.lsp.server import KtlServer


def build(store_path: Path) -> KtlServer:
    server = KtlServer(store_path)
    for feature in FEATURES:
        server.add_feature(feature)
    if os.environ.get("KTL_LSP_DEBUG_COMMANDS") == "1":
        server.add_feature(FaultInjection)
    return server
