"""``ktl-lsp mcp``: the MCP server for agents on stdio, over the same store as the editor's.

Only JSON-RPC may reach stdout, so notices and logs go to stderr.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ktl_lsp.cli.output import store_notice

if TYPE_CHECKING:
    from ktl_lsp.cli.output import Subparsers


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "mcp",
        help="serve the Model Context Protocol on stdio (read-only tools for agents)",
        description="An MCP server for coding assistants: sessions, their output, plans, "
        "checks and cluster reads, every call recorded as an agent session. See docs/agents.md.",
    )
    p.set_defaults(run=run, default_log_level="WARNING")


def run(args: argparse.Namespace) -> int:
    import anyio

    from ktl_lsp.agents.server import build
    from ktl_lsp.sessions.manager import SessionManager

    async def main() -> None:
        manager = SessionManager.open(args.store, on_notice=store_notice)
        try:
            await build(manager, "stdio").run_stdio_async()
        finally:
            await manager.flush()
            manager.close()

    anyio.run(main)
    return 0
