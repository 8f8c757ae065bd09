"""``ktl-lsp run -- CMD ARGS...``: run a command in this terminal as a recorded session."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ktl_lsp.cli.output import err, reader_gone, store_notice

if TYPE_CHECKING:
    from ktl_lsp.cli.output import Subparsers
    from ktl_lsp.sessions.manager import SessionManager


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("run", help="run a command as a recorded session")
    p.add_argument(
        "--title", metavar="TITLE", help="the session's title (default: the command line)"
    )
    p.add_argument("--cwd", metavar="DIR", help="run in this directory (default: the current one)")
    p.add_argument("--quiet", action="store_true", help="do not copy output to this terminal")
    p.add_argument(
        "--bundle",
        type=Path,
        metavar="FILE",
        help="when the command ends, write its session as a .ktlbundle (for CI artifacts)",
    )
    p.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the command to run"
    )
    p.set_defaults(run=run, default_log_level="WARNING")


def run(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        err("nothing to run: ktl-lsp run [--title T] -- CMD ARGS...")
        return 2
    return asyncio.run(_run(args.store, argv, args))


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[bool]:
    """Puts our terminal in raw mode so keys (Ctrl-C included) reach the child as typed."""
    import termios
    import tty

    if not os.isatty(fd):
        yield False
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _run(store: Path, argv: list[str], args: argparse.Namespace) -> int:
    import shutil

    from ktl_lsp.fullwrite import write_all
    from ktl_lsp.sessions.errors import SessionNotRunning, UnknownSession
    from ktl_lsp.sessions.manager import RunSpec, SessionManager
    from ktl_lsp.sessions.model import Frame, FrameType
    from ktl_lsp.sessions.shells import KNOWN, launch, shell_name

    manager = SessionManager.open(store, on_notice=store_notice)
    size = shutil.get_terminal_size((120, 30))
    out = sys.stdout.buffer

    copying = not args.quiet

    def copy(item: object) -> None:
        nonlocal copying
        if copying and isinstance(item, Frame) and item.type is FrameType.OUTPUT:
            try:
                write_all(out, item.data)
                out.flush()
            except BrokenPipeError:  # `| head`: the session goes on being recorded
                copying = False
                reader_gone()

    manager.bus.listen(copy)
    # A shell alone (`run -- bash`) gets the integration ktl.shell gives: command blocks.
    shell = launch(argv[0]) if len(argv) == 1 and shell_name(argv[0]) in KNOWN else None
    live = manager.start(
        RunSpec(
            argv=shell.argv if shell else argv,
            env=shell.env if shell else None,
            cwd=args.cwd,
            title=args.title or (argv[0] if shell else None),
            cols=size.columns,
            rows=size.lines,
            kind="shell" if shell else "pty",
            meta={"shell": shell.name, "integrated": shell.integrated} if shell else {},
            command=argv[0] if shell else None,
            blocks=shell is not None,
        )
    )
    print(f"ktl-lsp: session {live.id}", file=sys.stderr)
    loop = asyncio.get_running_loop()
    stdin = sys.stdin.fileno()
    with _raw_terminal(stdin) as raw:
        if raw:
            # Pass the terminal through: keys go to the child, size changes follow ours.
            def on_key() -> None:
                try:
                    data = os.read(stdin, 4096)
                except OSError:
                    data = b""
                if not data:
                    loop.remove_reader(stdin)
                    return
                with contextlib.suppress(UnknownSession, SessionNotRunning):
                    manager.input(live.id, data.decode("utf-8", "replace"))

            def on_winch() -> None:
                cols, rows = shutil.get_terminal_size((120, 30))
                with contextlib.suppress(UnknownSession, SessionNotRunning):
                    manager.resize(live.id, cols, rows)

            loop.add_reader(stdin, on_key)
            loop.add_signal_handler(signal.SIGWINCH, on_winch)
        else:
            loop.add_signal_handler(signal.SIGINT, lambda: _forward(manager, live.id, "INT"))
        loop.add_signal_handler(signal.SIGTERM, lambda: manager.cancel(live.id))
        session = await live.done
        if raw:
            loop.remove_reader(stdin)
    await manager.flush()
    if args.bundle is not None:
        from ktl_lsp.errors import UserError

        try:
            info = await manager.bundle(session.id, args.bundle, exit_code=session.exit_code)
            print(f"ktl-lsp: bundle {info.path}", file=sys.stderr)
        except (UserError, OSError) as exc:
            err(f"ktl-lsp: no bundle: {exc}")
    manager.close()
    detail = f"exit {session.exit_code}" if session.exit_code is not None else session.error
    print(f"ktl-lsp: session {session.id} {session.state} ({detail})", file=sys.stderr)
    if session.exit_code is not None:
        return session.exit_code
    if session.state == "done":
        return 0
    return _not_started_status(session.error or "")


#: A shell's statuses for a command it could not start, by the start of the session's error
#: (the messages of ktl_lsp.pty's SpawnError).
_NOT_STARTED = (("executable not found:", 127), ("permission denied:", 126))


def _not_started_status(error: str) -> int:
    return next((status for start, status in _NOT_STARTED if error.startswith(start)), 1)


def _forward(manager: SessionManager, session_id: str, name: str) -> None:
    from ktl_lsp.sessions.errors import SessionNotRunning, UnknownSession

    with contextlib.suppress(UnknownSession, SessionNotRunning):
        manager.signal(session_id, name)
