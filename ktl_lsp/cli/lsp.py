"""``ktl-lsp [lsp] [--stdio | --tcp HOST:PORT]``: the language server, the default command.

On stdio nothing but JSON-RPC may reach stdout, so logging goes to a file or stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ktl_lsp.cli.output import Subparsers
    from ktl_lsp.lsp.server import KtlServer


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("lsp", help="run the language server (the default)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stdio", action="store_true", help="talk on stdin/stdout (the default)")
    g.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="listen for one editor on a loopback HOST:PORT (the same user only)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return serve_lsp(args.store, getattr(args, "tcp", None))


def _loopback_address(tcp: str) -> tuple[str, int] | None:
    """``HOST:PORT`` for ``--tcp``, loopback only: the server has no authentication."""
    from ktl_lsp.lsp.peer import is_loopback

    host, _, port = tcp.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not is_loopback(host) or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def serve_lsp(store: Path, tcp: str | None) -> int:
    address = _loopback_address(tcp) if tcp else None
    if tcp and address is None:
        print(
            f"ktl-lsp: --tcp {tcp}: give a loopback HOST:PORT (127.0.0.1, ::1 or localhost); "
            "the language server has no authentication and runs commands as you",
            file=sys.stderr,
        )
        return 2
    if address is None and sys.stdin.isatty():
        print(IN_A_TERMINAL, file=sys.stderr)
        ended_by_ctrl_c: list[KtlServer] = []
        _end_on_ctrl_c(ended_by_ctrl_c)
    from ktl_lsp import codecache
    from ktl_lsp.aio import freeze_long_lived

    # Start-up makes only objects that live as long as the process (modules, classes): the
    # ~130 collections it would trigger (one full, ~35 ms) find nothing to free.
    gc.disable()
    try:
        code_cache = codecache.start()  # before lsprotocol loads: its classes are most of start-up
        from ktl_lsp.lsp.app import build

        server = build(store)
        if address is None and sys.stdin.isatty():
            ended_by_ctrl_c.append(server)
    finally:
        freeze_long_lived()
        gc.enable()
    try:
        if address is None:
            server.start_io()
            return 0
        return _serve_tcp(server, *address)
    finally:
        code_cache.save()  # what cattrs generated for later messages


IN_A_TERMINAL = """\
ktl-lsp is a language server: it is waiting for an editor to talk to it on stdin (Ctrl-C to
leave). From a terminal, `ktl-lsp run -- CMD` runs a command as a recorded session,
`ktl-lsp serve` serves the replay UI for the sessions, `ktl-lsp check PATH...` checks manifests
and stacks as the editor does, and `ktl-lsp --help` lists the rest."""


def _end_on_ctrl_c(servers: list[KtlServer]) -> None:
    """Ctrl-C ends a stdio server started in a terminal with 130, quietly.

    Its stdin read blocks in a worker thread that Python would wait for at exit (until Enter),
    so it leaves through ``os._exit`` once the sessions' children are ended (the server, once
    built, is in ``servers``)."""
    import os

    def leave() -> NoReturn:
        for server in servers:
            server.shutdown_sessions()
        os._exit(130)

    def on_interrupt(signum: int, frame: object) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # still starting: nothing runs yet
            leave()
        # From the loop, not from inside whatever the handler interrupted.
        loop.call_soon_threadsafe(leave)

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, on_interrupt)


def _serve_tcp(server: KtlServer, host: str, port: int) -> int:
    from ktl_lsp.lsp.server import ListenError

    interrupted = False

    def stop() -> None:
        writer = server.protocol.writer
        if isinstance(writer, asyncio.StreamWriter):
            # Hang up on the editor: its connection ends normally and takes the server (which
            # serves one client) down with it. Cancelling it instead logs a traceback (3.11).
            writer.close()
        else:
            server.shutdown()

    def on_interrupt(signum: int, frame: object) -> None:
        # Ctrl-C in the terminal that runs `ktl-lsp --tcp`: stop listening, end the sessions'
        # children, and leave quietly (a KeyboardInterrupt inside asyncio logs tracebacks).
        nonlocal interrupted
        interrupted = True
        # Thread-safe: it also wakes the selector, which a plain call_soon from a handler would not.
        asyncio.get_running_loop().call_soon_threadsafe(stop)

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # nohup'd / `&`: keep ignoring
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        server.start_tcp(host, port)
    except ListenError as exc:
        print(f"ktl-lsp: {exc}", file=sys.stderr)
        server.shutdown()
        return 1
    return 130 if interrupted else (server.ktl_protocol.exit_code or 0)
