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
import tempfile
import termios
import tty
import webbrowser
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ktl_lsp.fullwrite import write_all
from ktl_lsp.pty.text import strip_ansi
from ktl_lsp.sessions.compare import compare
from ktl_lsp.sessions.errors import SessionNotRunning, UnknownSession
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.model import Frame, FrameType, Session, SessionFilter, iso
from ktl_lsp.sessions.retention import RetentionPolicy


def _err(message: str) -> None:
    print(f"ktl-lsp: {message}", file=sys.stderr)


# run ------------------------------------------------------------------------------------
def run(store: Path, args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        _err("nothing to run: ktl-lsp run [--title T] -- CMD ARGS...")
        return 2
    return asyncio.run(_run(store, argv, args))


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[bool]:
    """Puts our terminal in raw mode so keys (Ctrl-C included) reach the child as typed."""
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
    manager = SessionManager.open(store, on_notice=_err)
    size = shutil.get_terminal_size((120, 30))
    out = sys.stdout.buffer

    def copy(item: object) -> None:
        if isinstance(item, Frame) and item.type is FrameType.OUTPUT and not args.quiet:
            write_all(out, item.data)
            out.flush()

    manager.bus.listen(copy)
    live = manager.start(
        RunSpec(argv=argv, cwd=args.cwd, title=args.title, cols=size.columns, rows=size.lines)
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
    if manager.store is not None:
        await manager.store.flush()
    manager.close()
    detail = f"exit {session.exit_code}" if session.exit_code is not None else session.error
    print(f"ktl-lsp: session {session.id} {session.state} ({detail})", file=sys.stderr)
    if session.exit_code is not None:
        return session.exit_code
    return 0 if session.state == "done" else 1


def _forward(manager: SessionManager, session_id: str, name: str) -> None:
    with contextlib.suppress(UnknownSession, SessionNotRunning):
        manager.signal(session_id, name)


# serve ----------------------------------------------------------------------------------
def serve(store: Path, args: argparse.Namespace) -> int:
    from ktl_lsp.gateway import Gateway, GatewayConfigError
    from ktl_lsp.gateway.server import GatewayOptions

    host, _, port = args.listen.rpartition(":")
    try:
        options = GatewayOptions(
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            token=args.token,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            allow_query_token=args.dev_query_token,
            cors_origins=tuple(args.cors_origin),
        )
    except ValueError:
        _err(f"--listen wants HOST:PORT, got {args.listen!r}")
        return 2

    async def main() -> int:
        manager = SessionManager.open(store, on_notice=_err)
        gateway = Gateway(manager, store, options)
        try:
            await gateway.start()
        except GatewayConfigError as exc:
            _err(str(exc))
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


# sessions -------------------------------------------------------------------------------
def sessions(store: Path, args: argparse.Namespace) -> int:
    if not store.exists():
        _err(f"no session store at {store} (run something first, or pass --store)")
        return 1
    return asyncio.run(_sessions(store, args))


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise ValueError(f"bad {what} filter {item!r}: expected KEY=VALUE")
        out[key] = value if sep else ""
    return out


async def _sessions(store: Path, args: argparse.Namespace) -> int:
    manager = SessionManager.open(store, on_notice=_err)
    try:
        return await _dispatch(manager, args)
    except UnknownSession as exc:
        _err(str(exc))
        return 1
    except (SessionNotRunning, ValueError, OSError) as exc:
        _err(str(exc))
        return 1
    finally:
        manager.close()


async def _resolve_ids(manager: SessionManager, args: argparse.Namespace) -> None:
    """Session ids on the command line may be unique prefixes: full ids from here on."""
    names = ("a", "b") if args.sessions_cmd == "diff" else ("session_id",)
    for name in names:
        if isinstance(getattr(args, name, None), str):
            setattr(args, name, await manager.resolve_id(getattr(args, name)))
    if getattr(args, "session_ids", None):
        args.session_ids = [await manager.resolve_id(sid) for sid in args.session_ids]


async def _dispatch(manager: SessionManager, args: argparse.Namespace) -> int:
    cmd = args.sessions_cmd
    await _resolve_ids(manager, args)
    if cmd == "list":
        since_ns = None
        if args.since:
            since_ns = int(datetime.fromisoformat(args.since).timestamp() * 1e9)
        found = await manager.list_sessions(
            SessionFilter(
                state=args.state,
                kind=args.kind,
                meta=_pairs(args.meta, "meta") or None,
                tags=_pairs(args.tag, "tag") or None,
                since_ns=since_ns,
                limit=args.limit,
            )
        )
        if args.json:
            _print_json({"sessions": [s.to_lsp() for s in found]})
        else:
            _print_table(found)
        return 0
    if cmd == "show":
        session = await manager.get(args.session_id)
        if args.json:
            _print_json(session.to_lsp())
        else:
            _print_details(session)
        return 0
    if cmd == "output":
        await manager.get(args.session_id)
        frames, _ = await manager.frames(args.session_id)
        out = sys.stdout.buffer
        for f in frames:
            if f.type is FrameType.OUTPUT:
                write_all(out, strip_ansi(f.text()).encode() if args.plain else f.data)
        out.flush()
        return 0
    if cmd == "export":
        return await _export(manager, args)
    if cmd == "replay":
        return await _replay(manager, args)
    if cmd == "pin":
        session = await manager.set_pinned(args.session_id, not args.off)
        print(f"{session.id} {'pinned' if session.pinned else 'unpinned'}")
        return 0
    if cmd == "rm":
        for sid in args.session_ids:
            await manager.delete(sid)
            print(f"deleted {sid}")
        return 0
    if cmd == "prune":
        policy = RetentionPolicy(
            max_sessions=args.max_sessions if args.max_sessions is not None else 5000,
            max_age_days=args.max_age_days if args.max_age_days is not None else 90.0,
            max_store_bytes=args.max_bytes if args.max_bytes is not None else 2 * 1024**3,
            max_frames_per_session=args.max_frames if args.max_frames is not None else 1_000_000,
        )
        result = await manager.prune(policy)
        summary = {
            "deleted": result.deleted_sessions,
            "trimmedFrames": result.trimmed_frames,
            "bytesBefore": result.bytes_before,
            "bytesAfter": result.bytes_after,
        }
        if args.json:
            _print_json(summary)
        else:
            print(
                f"deleted {result.deleted_sessions} sessions, trimmed {result.trimmed_frames} frames, "
                f"{_mb(result.bytes_before)} -> {_mb(result.bytes_after)}"
            )
        return 0
    if cmd == "diff":
        a, b = await manager.get(args.a), await manager.get(args.b)
        la, lb = await manager.output_lines(a.id), await manager.output_lines(b.id)
        comparison = compare(a, la, b, lb)
        if args.json:
            _print_json(comparison.to_lsp())
        else:
            delta = b.duration_ms - a.duration_ms
            print(f"exit codes: {a.exit_code} -> {b.exit_code}; duration {delta:+d} ms")
            print(comparison.output_diff or "(no difference in output)")
        return 0
    raise ValueError(f"unknown sessions command {cmd}")


async def _export(manager: SessionManager, args: argparse.Namespace) -> int:
    from ktl_lsp.sessions.export import ExportError, export_session, export_to_path

    if manager.store is None:
        _err("the session store could not be opened")
        return 1
    await manager.get(args.session_id)
    try:
        if args.output is None:
            await asyncio.to_thread(
                export_session, manager.store, args.session_id, args.format, sys.stdout.buffer
            )
            sys.stdout.buffer.flush()
        else:
            path = await asyncio.to_thread(
                export_to_path, manager.store, args.session_id, args.format, args.output
            )
            print(path, file=sys.stderr)
    except ExportError as exc:
        _err(str(exc))
        return 1
    return 0


async def _replay(manager: SessionManager, args: argparse.Namespace) -> int:
    from ktl_lsp.sessions.export import export_to_path

    if manager.store is None:
        _err("the session store could not be opened")
        return 1
    session = await manager.get(args.session_id)
    url = _running_gateway_url(manager.store.path, session.id)
    if url is not None:
        if args.no_open or not webbrowser.open(url):
            print(url)
        return 0
    target = Path(tempfile.gettempdir()) / f"ktl-replay-{session.id}.html"
    path = await asyncio.to_thread(export_to_path, manager.store, session.id, "html", target)
    if args.no_open or not webbrowser.open(path.as_uri()):
        print(path)
    return 0


def _running_gateway_url(store: Path, session_id: str) -> str | None:
    """A replay link on a gateway already serving this store, if one answers."""
    import urllib.request
    from urllib.parse import quote

    from ktl_lsp.gateway.auth import Auth, load_or_create_token

    try:
        info = json.loads(store.with_name(store.name + ".gateway.json").read_text())
        base = str(info["url"])
        with urllib.request.urlopen(base + "/healthz", timeout=1) as resp:
            if resp.status != 200:
                return None
    except (OSError, ValueError, KeyError):
        return None
    code = Auth(load_or_create_token(store)).mint_code()
    return f"{base}/ui/login?code={quote(code)}&next={quote('/ui/s/' + quote(session_id, safe=''))}"


# output ---------------------------------------------------------------------------------
def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _duration(s: Session) -> str:
    secs = s.duration_ms / 1000
    if secs < 60:
        return f"{secs:.1f}s"
    if secs < 3600:
        return f"{int(secs // 60)}m{int(secs % 60):02d}s"
    return f"{int(secs // 3600)}h{int(secs % 3600 // 60):02d}m"


def _print_table(found: list[Session]) -> None:
    if not found:
        print("no sessions")
        return
    rows = [("ID", "STARTED", "STATE", "EXIT", "DURATION", "", "TITLE")]
    for s in found:
        started = (iso(s.created_ns) or "")[:19].replace("T", " ")
        rows.append(
            (
                s.id,
                started,
                str(s.state),
                "" if s.exit_code is None else str(s.exit_code),
                _duration(s),
                "📌" if s.pinned else "",
                s.title[:60],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())


def _print_details(s: Session) -> None:
    fields = [
        ("session", s.id),
        ("title", s.title),
        ("kind", s.kind),
        ("state", str(s.state)),
        ("exit code", "" if s.exit_code is None else str(s.exit_code)),
        ("signal", s.signal or ""),
        ("error", s.error or ""),
        ("started", iso(s.created_ns) or ""),
        ("ended", iso(s.ended_ns) or ""),
        ("duration", _duration(s)),
        ("frames", str(s.last_seq)),
        ("pinned", "yes" if s.pinned else "no"),
        ("parent", s.parent_id or ""),
    ]
    fields += [
        (f"meta.{k}", json.dumps(v) if not isinstance(v, str) else v)
        for k, v in s.meta.items()
        if v
    ]
    fields += [(f"tag.{k}", v) for k, v in s.tags.items()]
    width = max(len(k) for k, v in fields if v)
    for k, v in fields:
        if v:
            print(f"{k.ljust(width)}  {v}")


def rotate_token(store: Path) -> int:
    from ktl_lsp.gateway.auth import rotate_token as rotate
    from ktl_lsp.gateway.auth import token_path

    try:
        rotate(store)
    except OSError as exc:
        print(f"ktl-lsp: cannot write {token_path(store)}: {exc}", file=sys.stderr)
        return 1
    # Never print the token itself: terminals are logged and shared.
    print(
        f"rotated the gateway token in {token_path(store)}; running gateways use it from their "
        "next request, so open replay tabs need a fresh link (ktl-lsp sessions replay ID)"
    )
    return 0
