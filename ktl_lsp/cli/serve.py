"""``ktl-lsp serve``: the replay UI and the HTTP/SSE gateway for a store."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ktl_lsp.cli.mcp import add_agent_flags, agent_policies
from ktl_lsp.cli.output import err, store_notice
from ktl_lsp.gateway.options import GatewayOptions

#: The defaults the flags show, from the one place they are decided.
GATEWAY_DEFAULTS = GatewayOptions()

if TYPE_CHECKING:
    from ktl_lsp.cli.output import Subparsers


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="serve the replay UI and the HTTP/SSE gateway")
    p.add_argument(
        "--listen",
        default="127.0.0.1:8081",
        metavar="HOST:PORT",
        help="where to serve; other than loopback needs --tls-cert (default: %(default)s)",
    )
    p.add_argument("--token", help="require this token (default: the store's token file)")
    p.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="serve HTTPS with this PEM certificate (default: HTTP)",
    )
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's PEM private key")
    p.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="FILE",
        help="require client certificates signed by this PEM CA, besides the token "
        "(mutual TLS; needs --tls-cert)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="an origin allowed to call the API; repeat for more (default: none)",
    )
    p.add_argument(
        "--dev-query-token",
        action="store_true",
        help="also accept ?token= (development only: URLs end up in logs and histories)",
    )
    p.add_argument(
        "--header-timeout",
        type=_seconds,
        default=GATEWAY_DEFAULTS.header_timeout_s,
        metavar="SECONDS",
        help="a connection must send its request head within this (default: %(default)s)",
    )
    p.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=GATEWAY_DEFAULTS.idle_timeout_s,
        metavar="SECONDS",
        help="close a kept-alive connection idle this long; a live tail is never cut "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--event-cache",
        type=_megabytes,
        default=GATEWAY_DEFAULTS.event_cache_bytes >> 20,
        metavar="MB",
        help="encoded SSE events kept for other tails, in MB (default: %(default)s)",
    )
    p.add_argument(
        "--mcp",
        action="store_true",
        help="also serve the MCP server for agents (Streamable HTTP) under /mcp, with the "
        "same token",
    )
    add_agent_flags(p)
    p.add_argument("--open", action="store_true", help="open the UI in a browser")
    p.set_defaults(run=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 86400, got {text!r}")
    return value


def _megabytes(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise argparse.ArgumentTypeError(f"expected a whole number of MB, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    import webbrowser

    from ktl_lsp.gateway import Gateway, GatewayConfigError
    from ktl_lsp.sessions.manager import SessionManager

    store: Path = args.store
    host, _, port = args.listen.rpartition(":")
    try:
        options = GatewayOptions(
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            token=args.token,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            tls_client_ca=args.tls_client_ca,
            allow_query_token=args.dev_query_token,
            cors_origins=tuple(args.cors_origin or ()),
            header_timeout_s=args.header_timeout,
            idle_timeout_s=args.idle_timeout,
            event_cache_bytes=args.event_cache << 20,
        )
    except ValueError:
        err(f"--listen wants HOST:PORT, got {args.listen!r}")
        return 2

    policies = agent_policies(args)
    if policies is None:
        return 2
    writes, contexts = policies

    async def main() -> int:
        manager = SessionManager.open(store, on_notice=store_notice)
        mount = None
        if args.mcp:
            from ktl_lsp.agents.http import McpEndpoint
            from ktl_lsp.agents.server import build

            scheme = "https" if options.tls_cert else "http"
            ui = f"{scheme}://{options.host}:{options.port}/ui/" if options.port else None
            mcp = build(manager, "http", None, writes, contexts, ui)
            mount = McpEndpoint(mcp, options.host).mount
        gateway = Gateway(manager, store, options, mount)
        try:
            await gateway.start()
        except GatewayConfigError as exc:
            err(str(exc))
            manager.close()
            return 2
        print(
            f"ktl-lsp: serving {store} on {gateway.base_url}/ui/ (Ctrl-C to stop)", file=sys.stderr
        )
        link = gateway.base_url + "/ui/"
        code = gateway.auth.mint_code(ttl_s=600)
        if code:
            link = f"{gateway.base_url}/ui/login?code={code}&next=/ui/"
        print(f"ktl-lsp: sign in once with {link}", file=sys.stderr)
        if args.mcp:
            print(f"ktl-lsp: MCP for agents on {gateway.base_url}/mcp", file=sys.stderr)
        if args.open:
            webbrowser.open(link)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await gateway.stop()
        manager.close()
        return 0

    return asyncio.run(main())
