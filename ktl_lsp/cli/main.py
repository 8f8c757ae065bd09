"""``ktl-lsp [--store PATH] [--log-file F] [--log-level L] [COMMAND ...]``: parser and dispatch.

Each command's module adds its parser with ``add_parser(sub)`` and sets ``run(args) -> int`` as
its default; the modules import what their command needs only when it runs. With no command it
is the language server on stdio (``lsp``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ktl_lsp import __version__
from ktl_lsp.cli import lsp
from ktl_lsp.cli.output import reader_gone

#: In the order ``ktl-lsp --help`` lists them; each is ``ktl_lsp.cli.<name>``.
COMMANDS = ("lsp", "serve", "gateway", "run", "sessions", "audit", "check", "mcp", "host")


def build_parser(commands: Iterable[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser with ``commands``' subparsers (modules imported here); with none, only the
    global options, which is all an editor's plain ``ktl-lsp`` needs (~10 ms less to start)."""
    from ktl_lsp.sessions.store import default_store_path

    p = argparse.ArgumentParser(prog="ktl-lsp", description="Language server for Kubernetes work.")
    p.add_argument("--version", action="version", version=f"ktl-lsp {__version__}")
    p.add_argument(
        "--store",
        type=Path,
        default=default_store_path(),
        metavar="PATH",
        help="the session store, a SQLite file (default: $KTL_LSP_STORE, else "
        "$XDG_STATE_HOME/ktl-lsp/sessions.db, else ~/.local/state/ktl-lsp/sessions.db; "
        "here %(default)s)",
    )
    p.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="write the log to this file (default: to stderr)",
    )
    p.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log (default: INFO for the language server and serve, WARNING for "
        "the other commands)",
    )
    # Servers log what they do; the other commands print what matters and log only problems.
    p.set_defaults(run=lsp.run, default_log_level="INFO")
    commands = list(commands)
    if commands:
        sub = p.add_subparsers(dest="cmd")
        for name in commands:
            importlib.import_module(f"ktl_lsp.cli.{name}").add_parser(sub)
    return p


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
    # `ktl-lsp --tcp H:P` and `ktl-lsp --stdio` work without saying `lsp`.
    if not any(a in COMMANDS for a in args_in) and any(
        a in ("--tcp", "--stdio") or a.startswith("--tcp=") for a in args_in
    ):
        args_in = _insert_lsp(args_in)
    plain = not any(a in COMMANDS or a in ("-h", "--help") for a in args_in)
    plain = plain and _first_positional(args_in) == len(args_in)
    args, rest = build_parser(() if plain else COMMANDS).parse_known_args(args_in)
    if rest:  # said with every command in the usage
        build_parser().parse_args(args_in)
    _setup_logging(args.log_file, args.log_level or args.default_log_level)
    command: Callable[[argparse.Namespace], int] = args.run
    try:
        code = command(args)
        if not sys.stdout.closed:  # the language server closes it when the editor leaves
            sys.stdout.flush()  # here, where a reader that left is still ours to handle
    except BrokenPipeError:
        return reader_gone()
    return code


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
