"""The store from a terminal: ``ktl-lsp run`` and ``ktl-lsp sessions ...``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from ktl_lsp.pty.text import strip_ansi
from ktl_lsp.sessions.bus import StateChange
from ktl_lsp.sessions.manager import RunSpec, SessionManager, UnknownSession
from ktl_lsp.sessions.model import Frame, FrameType, Session, iso
from ktl_lsp.sessions.store import SessionFilter


def _err(message: str) -> None:
    print(f"ktl-lsp: {message}", file=sys.stderr)


def run(store: Path, args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        _err("nothing to run: ktl-lsp run [--title T] -- CMD ARGS...")
        return 2
    return asyncio.run(_run(store, argv, args))


async def _run(store: Path, argv: list[str], args: argparse.Namespace) -> int:
    manager = SessionManager.open(store, on_notice=_err)
    size = shutil.get_terminal_size((120, 30))
    out = sys.stdout.buffer

    def copy(item: object) -> None:
        if isinstance(item, Frame) and item.type is FrameType.OUTPUT and not args.quiet:
            out.write(item.data)
            out.flush()

    manager.bus.listen(copy)
    live = manager.start(
        RunSpec(argv=argv, cwd=args.cwd, title=args.title, cols=size.columns, rows=size.lines)
    )
    print(f"session {live.id}", file=sys.stderr)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, lambda: _forward(manager, live.id, "INT"))
        loop.add_signal_handler(signal.SIGTERM, lambda: manager.cancel(live.id))
    session = await live.done
    if manager.store is not None:
        await manager.store.flush()
    manager.close()
    detail = f"exit {session.exit_code}" if session.exit_code is not None else session.error
    print(f"session {session.id} {session.state} ({detail})", file=sys.stderr)
    if session.exit_code is not None:
        return session.exit_code
    return 0 if session.state == "done" else 1


def _forward(manager: SessionManager, session_id: str, name: str) -> None:
    with contextlib.suppress(Exception):
        manager.signal(session_id, name)


def sessions(store: Path, args: argparse.Namespace) -> int:
    if not store.exists():
        _err(f"no session store at {store}")
        return 1
    return asyncio.run(_sessions(store, args))


async def _sessions(store: Path, args: argparse.Namespace) -> int:
    manager = SessionManager.open(store, on_notice=_err)
    try:
        if args.sessions_cmd == "list":
            found = await manager.list_sessions(
                SessionFilter(state=args.state, kind=args.kind, limit=args.limit)
            )
            if args.json:
                print(json.dumps({"sessions": [s.to_lsp() for s in found]}, indent=2))
            else:
                for s in found:
                    print(_line(s))
            return 0
        try:
            session = await manager.get(args.session_id)
        except UnknownSession as exc:
            _err(str(exc))
            return 1
        if args.sessions_cmd == "show":
            print(json.dumps(session.to_lsp(), indent=2) if args.json else _line(session))
            return 0
        if args.sessions_cmd == "output":
            frames, _ = await manager.frames(session.id)
            out = sys.stdout.buffer
            for f in frames:
                if f.type is FrameType.OUTPUT:
                    out.write(strip_ansi(f.text()).encode() if args.plain else f.data)
            out.flush()
            return 0
    finally:
        manager.close()
    return 2


def _line(s: Session) -> str:
    code = "" if s.exit_code is None else f" exit={s.exit_code}"
    return (
        f"{s.id}  {iso(s.created_ns)}  {s.state:<11} {s.duration_ms / 1000:7.1f}s{code}  {s.title}"
    )


__all__ = ["StateChange", "os", "run", "sessions"]
