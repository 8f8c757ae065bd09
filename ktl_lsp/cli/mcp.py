"""``ktl-lsp mcp``: the MCP server for agents on stdio, over the same store as the editor's.

Only JSON-RPC may reach stdout, so notices and logs go to stderr.

The language server's settings arrive as ``initializationOptions``; this command has no editor
to send them, so it reads the same object from ``--settings FILE`` (JSON or YAML): its
``agents`` section (``allowWrite``, ``allow``, ``approvalTimeout``) and ``k8s`` section
(``readOnlyContexts``, ``protectedContexts``). ``--allow-write`` turns ``agents.allowWrite`` on.
``serve --mcp`` takes the same two flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktl_lsp.cli.output import err, store_notice

if TYPE_CHECKING:
    from ktl_lsp.agents.writes import WritePolicy
    from ktl_lsp.cli.output import Subparsers
    from ktl_lsp.k8s.guard import ContextPolicy


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "mcp",
        help="serve the Model Context Protocol on stdio (tools for agents)",
        description="An MCP server for coding assistants: sessions, their output, plans, "
        "checks and cluster reads, every call recorded as an agent session; with "
        "--allow-write, tools that run commands and change clusters, each approved by a "
        "person. See docs/agents.md.",
    )
    add_agent_flags(p)
    p.set_defaults(run=run, default_log_level="WARNING")


def add_agent_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="settings as the editor sends them (JSON or YAML): agents.allowWrite, "
        "agents.allow, agents.approvalTimeout, k8s.readOnlyContexts, k8s.protectedContexts",
    )
    p.add_argument(
        "--allow-write",
        action="store_true",
        help="offer the tools that change things (agents.allowWrite); each asks a person "
        "unless allow-listed",
    )


def agent_policies(args: argparse.Namespace) -> tuple[WritePolicy, ContextPolicy] | None:
    """The write policy and the guarded contexts from ``--settings`` and ``--allow-write``;
    None (said on stderr) when the file cannot be read. A bad value is named and defaulted."""
    from ktl_lsp.agents.writes import WritePolicy
    from ktl_lsp.lsp.settings import Settings

    options: Any = {}
    if args.settings is not None:
        import yaml

        try:
            options = yaml.safe_load(args.settings.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            err(f"--settings {args.settings}: {exc}")
            return None
        if not isinstance(options, dict):
            err(f"--settings {args.settings}: expected an object of settings")
            return None
    settings = Settings.from_options(options)
    for problem in settings.problems:
        print(f"ktl-lsp: {args.settings}: {problem}", file=sys.stderr)
    agents = settings.agents
    policy = WritePolicy(
        allow_write=agents.allow_write or args.allow_write,
        allow=agents.allow,
        timeout_s=agents.approval_timeout,
    )
    return policy, settings.k8s.policy()


def run(args: argparse.Namespace) -> int:
    import anyio

    from ktl_lsp.agents.server import build
    from ktl_lsp.sessions.manager import SessionManager

    policies = agent_policies(args)
    if policies is None:
        return 2
    writes, contexts = policies

    async def main() -> None:
        manager = SessionManager.open(args.store, on_notice=store_notice)
        gateway = None
        try:
            if writes.allow_write:
                gateway = await _approvals_gateway(manager, args.store)
            approve_at = f"{gateway.base_url}/ui/" if gateway is not None else None
            server = build(manager, "stdio", None, writes, contexts, approve_at)
            await server.run_stdio_async()
        finally:
            if gateway is not None:
                await gateway.stop()
            await manager.flush()
            manager.close()

    anyio.run(main)
    return 0


async def _approvals_gateway(manager: Any, store: Path) -> Any:
    """The questions of this process's calls are answered here: a loopback gateway (the
    store's token) with the replay UI's banner and ``/api/v1/approvals``."""
    from ktl_lsp.gateway import Gateway, GatewayConfigError
    from ktl_lsp.gateway.options import GatewayOptions

    gateway = Gateway(manager, store, GatewayOptions())
    try:
        await gateway.start()
    except (GatewayConfigError, OSError) as exc:
        err(f"approvals cannot be answered: the gateway did not start: {exc}")
        return None
    print(f"ktl-lsp: approve agents' calls at {gateway.base_url}/ui/", file=sys.stderr)
    return gateway
