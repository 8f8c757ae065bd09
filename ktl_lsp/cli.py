"""Command line: ``ktl-lsp [--store PATH] [--log-file F] [SUBCOMMAND ...]``.

With no subcommand (or ``lsp``) it is the language server on stdio. Nothing but JSON-RPC may
reach stdout then, so logging goes to a file or stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ktl_lsp import __version__

if TYPE_CHECKING:
    from ktl_lsp.lsp.server import KtlServer

SUBCOMMANDS = ("lsp", "serve", "run", "sessions", "check", "gateway")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ktl-lsp", description="Language server for Kubernetes work.")
    p.add_argument("--version", action="version", version=f"ktl-lsp {__version__}")
    p.add_argument("--store", type=Path, help="session store (SQLite file)")
    p.add_argument("--log-file", type=Path, help="write the server's log here")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="cmd")

    lsp_p = sub.add_parser("lsp", help="run the language server (the default)")
    _lsp_options(lsp_p)

    serve_p = sub.add_parser("serve", help="serve the replay UI and the HTTP/SSE gateway")
    serve_p.add_argument("--listen", default="127.0.0.1:8081", metavar="HOST:PORT")
    serve_p.add_argument("--token", help="require this token (default: the store's token file)")
    serve_p.add_argument("--tls-cert", type=Path)
    serve_p.add_argument("--tls-key", type=Path)
    serve_p.add_argument(
        "--cors-origin", action="append", default=[], help="an origin allowed to call the API"
    )
    serve_p.add_argument(
        "--dev-query-token",
        action="store_true",
        help="also accept ?token= (development only: URLs end up in logs and histories)",
    )
    serve_p.add_argument("--open", action="store_true", help="open the UI in a browser")

    gw = sub.add_parser("gateway", help="the gateway's token")
    gw_sub = gw.add_subparsers(dest="gateway_cmd", required=True)
    gw_sub.add_parser(
        "rotate-token",
        help="replace the store's gateway token; running gateways switch on their next request",
    )

    run_p = sub.add_parser("run", help="run a command as a recorded session")
    run_p.add_argument("--title")
    run_p.add_argument("--cwd")
    run_p.add_argument("--quiet", action="store_true", help="do not copy output to this terminal")
    run_p.add_argument("argv", nargs=argparse.REMAINDER, help="-- CMD ARGS...")

    ses = sub.add_parser("sessions", help="look at the session store")
    ses_sub = ses.add_subparsers(dest="sessions_cmd", required=True)
    ls_p = ses_sub.add_parser("list", help="sessions, newest first")
    ls_p.add_argument("--state", choices=["running", "done", "error", "cancelled", "interrupted"])
    ls_p.add_argument("--kind")
    ls_p.add_argument("--since", help="ISO time, e.g. 2026-11-26 or 2026-11-26T10:00")
    ls_p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    ls_p.add_argument("--tag", action="append", default=[], metavar="KEY[=VALUE]")
    ls_p.add_argument("--limit", type=int, default=50)
    ls_p.add_argument("--json", action="store_true")
    show_p = ses_sub.add_parser("show", help="one session's details")
    show_p.add_argument("session_id")
    show_p.add_argument("--json", action="store_true")
    out_p = ses_sub.add_parser("output", help="print a session's terminal output")
    out_p.add_argument("session_id")
    out_p.add_argument("--plain", action="store_true", help="strip colours and escape sequences")
    exp_p = ses_sub.add_parser("export", help="write a session as NDJSON, asciicast or HTML")
    exp_p.add_argument("session_id")
    exp_p.add_argument("--format", "-f", choices=["ndjson", "asciicast", "html"], default="ndjson")
    exp_p.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    rep_p = ses_sub.add_parser("replay", help="open a session's replay in the browser")
    rep_p.add_argument("session_id")
    rep_p.add_argument(
        "--no-open", action="store_true", help="print the file instead of opening it"
    )
    pin_p = ses_sub.add_parser("pin", help="keep a session whatever the retention rules")
    pin_p.add_argument("session_id")
    pin_p.add_argument("--off", action="store_true", help="unpin")
    rm_p = ses_sub.add_parser("rm", help="delete sessions")
    rm_p.add_argument("session_ids", nargs="+")
    prune_p = ses_sub.add_parser("prune", help="apply retention rules now")
    prune_p.add_argument("--max-sessions", type=int)
    prune_p.add_argument("--max-age-days", type=float)
    prune_p.add_argument("--max-bytes", type=int)
    prune_p.add_argument("--max-frames", type=int)
    prune_p.add_argument("--json", action="store_true")
    diff_p = ses_sub.add_parser("diff", help="compare two runs")
    diff_p.add_argument("a")
    diff_p.add_argument("b")
    diff_p.add_argument("--json", action="store_true")

    sub.add_parser(
        "check", help="report the editor's diagnostics for files (for CI)", add_help=False
    )
    return p


def _lsp_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stdio", action="store_true", help="talk on stdin/stdout (the default)")
    g.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="listen for one editor on a loopback HOST:PORT (the same user only)",
    )


def _setup_logging(log_file: Path | None, level: str) -> None:
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # pygls logs every message it sends at INFO: far too much for a streaming server.
    logging.getLogger("pygls").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_not_invalid_params)


def _not_invalid_params(record: logging.LogRecord) -> bool:
    """Bad arguments are the caller's mistake, answered as InvalidParams naming the field;
    pygls would also log each one with a traceback, as if the server had failed."""
    from pygls.exceptions import JsonRpcInvalidParams

    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, JsonRpcInvalidParams)


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    # `ktl-lsp --tcp H:P` and `ktl-lsp --stdio` work without saying `lsp`.
    if not any(a in SUBCOMMANDS for a in args_in) and any(
        a in ("--tcp", "--stdio") or a.startswith("--tcp=") for a in args_in
    ):
        args_in = _insert_lsp(args_in)
    first = _first_positional(args_in)
    if args_in[first : first + 1] == ["check"]:
        from ktl_lsp.check_command import main as check_main

        return check_main(args_in[first + 1 :])
    args = parser.parse_args(args_in)
    _setup_logging(args.log_file, args.log_level)
    from ktl_lsp.sessions.store import default_store_path

    store = args.store or default_store_path()
    if args.cmd in (None, "lsp"):
        return _serve_lsp(store, getattr(args, "tcp", None))
    from ktl_lsp import terminal

    if args.cmd == "run":
        return terminal.run(store, args)
    if args.cmd == "serve":
        return terminal.serve(store, args)
    if args.cmd == "sessions":
        return terminal.sessions(store, args)
    if args.cmd == "gateway":
        return terminal.rotate_token(store)
    parser.error(f"unknown command {args.cmd}")
    return 2


def _first_positional(args: list[str]) -> int:
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a in ("--store", "--log-file", "--log-level"):
            skip = True
            continue
        if not a.startswith("-"):
            return i
    return len(args)


def _insert_lsp(args: list[str]) -> list[str]:
    i = _first_positional(args)
    for j, a in enumerate(args):
        if a in ("--tcp", "--stdio") or a.startswith("--tcp="):
            i = j
            break
    return [*args[:i], "lsp", *args[i:]]


def _loopback_address(tcp: str) -> tuple[str, int] | None:
    """``HOST:PORT`` for ``--tcp``, loopback only: the server has no authentication."""
    from ktl_lsp.lsp.peer import is_loopback

    host, _, port = tcp.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not is_loopback(host) or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def _serve_lsp(store: Path, tcp: str | None) -> int:
    address = _loopback_address(tcp) if tcp else None
    if tcp and address is None:
        print(
            f"ktl-lsp: --tcp {tcp}: give a loopback HOST:PORT (127.0.0.1, ::1 or localhost); "
            "the language server has no authentication and runs commands as you",
            file=sys.stderr,
        )
        return 2
    from ktl_lsp import codecache
    from ktl_lsp.aio import freeze_long_lived

    # Start-up makes only objects that live as long as the process (modules, classes): the
    # ~130 collections it would trigger (one full, ~35 ms) find nothing to free.
    gc.disable()
    try:
        code_cache = codecache.start()  # before lsprotocol loads: its classes are most of start-up
        from ktl_lsp.lsp.app import build

        server = build(store)
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
