"""``ktl-lsp sessions ...``: look at the session store from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ktl_lsp.cli.output import (
    duration,
    err,
    plural,
    print_json,
    print_table,
    size,
    store_notice,
)
from ktl_lsp.sessions.retention import RetentionPolicy  # its defaults are prune's, in the help

if TYPE_CHECKING:
    from ktl_lsp.cli.output import Subparsers
    from ktl_lsp.sessions.manager import SessionManager
    from ktl_lsp.sessions.model import Session

Action = Callable[["SessionManager", argparse.Namespace], Awaitable[int]]


def add_parser(sub: Subparsers) -> None:
    ses = sub.add_parser("sessions", help="look at the session store")
    ses.set_defaults(run=run, default_log_level="WARNING", error_status=1)
    ses_sub = ses.add_subparsers(dest="sessions_cmd", required=True)

    def command(name: str, action: Action, help: str) -> argparse.ArgumentParser:
        p = ses_sub.add_parser(name, help=help)
        p.set_defaults(sessions_action=action)
        return p

    def session_id(p: argparse.ArgumentParser) -> None:
        p.add_argument("session_id", metavar="ID", help="the session's id")

    def as_json(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON instead of text")

    def which_sessions(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--state",
            choices=["running", "done", "error", "cancelled", "interrupted"],
            help="only sessions in this state",
        )
        p.add_argument("--kind", help="only sessions of this kind: pty, shell, exec, k8s...")
        since_arg(p, "only sessions started since then")

    ls_p = command("list", _list, "sessions, newest first")
    which_sessions(ls_p)
    ls_p.add_argument(
        "--meta",
        action="append",
        metavar="KEY=VALUE",
        help="only sessions whose metadata KEY is VALUE; repeat to require more",
    )
    ls_p.add_argument(
        "--tag",
        action="append",
        metavar="KEY[=VALUE]",
        help="only sessions with tag KEY (and that VALUE); repeat to require more",
    )
    ls_p.add_argument(
        "--limit", type=int, default=50, help="list at most this many (default: %(default)s)"
    )
    as_json(ls_p)
    show_p = command("show", _show, "one session's details")
    session_id(show_p)
    as_json(show_p)
    out_p = command("output", _output, "print a session's terminal output")
    session_id(out_p)
    out_p.add_argument("--plain", action="store_true", help="strip colours and escape sequences")
    exp_p = command("export", _export, "write a session as NDJSON, asciicast or HTML")
    session_id(exp_p)
    exp_p.add_argument(
        "--format",
        "-f",
        choices=["ndjson", "asciicast", "html"],
        default="ndjson",
        help="the file format (default: %(default)s)",
    )
    exp_p.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    exp_p.add_argument(
        "--reveal", action="store_true", help="keep secrets (redacted unless you ask)"
    )
    bun_p = command(
        "bundle", _bundle, "write a session and its children as one .ktlbundle (secrets redacted)"
    )
    session_id(bun_p)
    bun_p.add_argument(
        "--output", "-o", type=Path, help="file or folder (default: exports/ beside the store)"
    )
    as_json(bun_p)
    imp_p = command("import", _import, "load a .ktlbundle's sessions (marked imported)")
    imp_p.add_argument("bundle", type=Path, metavar="FILE", help="the .ktlbundle")
    as_json(imp_p)
    rep_p = command("replay", _replay, "open a session's replay in the browser")
    session_id(rep_p)
    rep_p.add_argument(
        "--no-open", action="store_true", help="print the link or file instead of opening it"
    )
    pin_p = command("pin", _pin, "keep a session whatever the retention rules")
    session_id(pin_p)
    pin_p.add_argument("--off", action="store_true", help="unpin")
    rm_p = command("rm", _rm, "delete sessions")
    rm_p.add_argument("session_ids", nargs="+", metavar="ID", help="the sessions' ids")
    prune_p = command(
        "prune", _prune, "apply retention rules now (pinned and running sessions stay)"
    )
    policy = RetentionPolicy()
    limits: list[tuple[str, type, float, str, str]] = [
        ("--max-sessions", int, policy.max_sessions, "N", "keep the newest N sessions"),
        (
            "--max-age-days",
            float,
            policy.max_age_days,
            "DAYS",
            "delete sessions that ended over DAYS ago",
        ),
        (
            "--max-bytes",
            int,
            policy.max_store_bytes,
            "BYTES",
            "delete the oldest sessions until the store is this small",
        ),
        (
            "--max-frames",
            int,
            policy.max_frames_per_session,
            "N",
            "keep the newest N frames of each session",
        ),
    ]
    for option, kind, default, metavar, what in limits:
        prune_p.add_argument(
            option,
            type=kind,
            default=default,
            metavar=metavar,
            help=f"{what}, 0 for no limit (default: %(default)s)",
        )
    as_json(prune_p)
    diff_p = command("diff", _diff, "compare two runs (exit 0: same, 1: different, 2: error)")
    diff_p.set_defaults(error_status=2)  # as diff(1) says trouble
    diff_p.add_argument(
        "a", metavar="ID_A", help="the first run's session id (ID#blockN: one command block)"
    )
    diff_p.add_argument("b", metavar="ID_B", help="the second run's session id (or ID#blockN)")
    as_json(diff_p)
    search_p = command("search", _search, "find text in every session's output, newest first")
    search_p.add_argument(
        "query", metavar="Q", help='words that must all appear; "a phrase"; prefix*'
    )
    which_sessions(search_p)
    search_p.add_argument(
        "--limit", type=int, default=50, help="at most this many lines (default: %(default)s)"
    )
    as_json(search_p)
    blocks_p = command("blocks", _blocks, "a shell session's command blocks")
    session_id(blocks_p)
    as_json(blocks_p)


def since_arg(p: argparse.ArgumentParser, what: str) -> None:
    """``--since WHEN``, read as it is parsed (into nanoseconds since the epoch)."""
    p.add_argument(
        "--since",
        type=_since,
        metavar="WHEN",
        help=f"{what}: 30m, 2h, 3d, 1w (ago), today, yesterday, or an ISO date or time such "
        "as 2026-11-26 or 2026-11-26T10:00 (local unless it has a zone)",
    )


def _since(text: str) -> int:
    """``--since``, checked as it is parsed so a bad value is a usage error (exit 2)."""
    from datetime import datetime

    from ktl_lsp.sessions.timespec import parse_since

    try:
        return parse_since(text, datetime.now())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    store: Path = args.store
    if not store.exists() and args.sessions_action is not _import:
        err(f"no session store at {store} (run something first, or pass --store)")
        return int(args.error_status)
    return asyncio.run(_sessions(store, args))


async def _sessions(store: Path, args: argparse.Namespace) -> int:
    from ktl_lsp.errors import UserError
    from ktl_lsp.sessions.manager import SessionManager

    opening = True

    def notice(message: str) -> None:
        if not opening:  # while opening, the one notice is the failure: an error below
            store_notice(message)

    manager = SessionManager.open(store, on_notice=notice)
    opening = False
    if manager.store_error is not None:
        err(manager.store_error)
        manager.close()
        return int(args.error_status)
    action: Action = args.sessions_action
    try:
        await _resolve_ids(manager, args)
        return await action(manager, args)
    except BrokenPipeError:
        raise  # not a store problem: the reader of our output left
    except (UserError, ValueError, OSError) as exc:
        err(str(exc))
        return int(args.error_status)
    finally:
        manager.close()


async def _resolve_ids(manager: SessionManager, args: argparse.Namespace) -> None:
    """Session ids on the command line may be unique prefixes: full ids from here on."""
    for name in ("a", "b", "session_id"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            sid, sep, block = value.partition("#")  # ID#blockN names a command block
            setattr(args, name, await manager.resolve_id(sid) + sep + block)
    if getattr(args, "session_ids", None):
        args.session_ids = [await manager.resolve_id(sid) for sid in args.session_ids]


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise ValueError(f"bad {what} filter {item!r}: expected KEY=VALUE")
        out[key] = value if sep else ""
    return out


async def _list(manager: SessionManager, args: argparse.Namespace) -> int:
    from ktl_lsp.sessions.model import SessionFilter

    found = await manager.list_sessions(
        SessionFilter(
            state=args.state,
            kind=args.kind,
            meta=_pairs(args.meta or [], "meta") or None,
            tags=_pairs(args.tag or [], "tag") or None,
            since_ns=args.since,
            limit=args.limit,
        )
    )
    if args.json:
        print_json({"sessions": [s.to_lsp() for s in found]})
    else:
        _print_sessions(found)
    return 0


async def _show(manager: SessionManager, args: argparse.Namespace) -> int:
    session = await manager.get(args.session_id)
    if args.json:
        print_json(session.to_lsp())
    else:
        _print_details(session)
    return 0


async def _output(manager: SessionManager, args: argparse.Namespace) -> int:
    from ktl_lsp.fullwrite import write_all
    from ktl_lsp.pty.text import strip_ansi
    from ktl_lsp.sessions.model import FrameType

    await manager.get(args.session_id)
    frames, _ = await manager.frames(args.session_id)
    out = sys.stdout.buffer
    for f in frames:
        if f.type is FrameType.OUTPUT:
            write_all(out, strip_ansi(f.text()).encode() if args.plain else f.data)
    out.flush()
    return 0


async def _pin(manager: SessionManager, args: argparse.Namespace) -> int:
    session = await manager.set_pinned(args.session_id, not args.off)
    print(f"{session.id} {'pinned' if session.pinned else 'unpinned'}")
    return 0


async def _rm(manager: SessionManager, args: argparse.Namespace) -> int:
    for sid in args.session_ids:
        await manager.delete(sid)
        print(f"deleted {sid}")
    return 0


async def _prune(manager: SessionManager, args: argparse.Namespace) -> int:
    policy = RetentionPolicy(
        max_sessions=args.max_sessions,
        max_age_days=args.max_age_days,
        max_store_bytes=args.max_bytes,
        max_frames_per_session=args.max_frames,
    )
    result = await manager.prune(policy)
    if args.json:
        print_json(result.to_json())
    else:
        print(
            f"deleted {plural(result.deleted_sessions, 'session')}, trimmed "
            f"{plural(result.trimmed_frames, 'frame')}; store size {size(result.bytes_before)} "
            f"-> {size(result.bytes_after)}"
        )
    return 0


async def _diff(manager: SessionManager, args: argparse.Namespace) -> int:
    comparison = await manager.compare(args.a, args.b)
    a, b = comparison.a, comparison.b
    if args.json:
        print_json(comparison.to_lsp())
    else:
        delta = b.duration_ms - a.duration_ms
        print(f"exit codes: {a.exit_code} -> {b.exit_code}; duration {delta:+d} ms")
        print(comparison.output_diff or "(no difference in output)")
    return 1 if comparison.output_diff or a.exit_code != b.exit_code else 0


async def _search(manager: SessionManager, args: argparse.Namespace) -> int:
    hits = await manager.search(args.query, args.limit, args.state, args.kind, args.since)
    if args.json:
        print_json({"matches": [h.to_json() for h in hits]})
        return 0
    for h in hits:
        where = f"{h.session_id}#block{h.block}" if h.block is not None else h.session_id
        print(f"{where}@{h.seq}: {h.line}")
    return 0 if hits else 1


async def _blocks(manager: SessionManager, args: argparse.Namespace) -> int:
    from ktl_lsp.sessions.model import now_ns

    now = now_ns()
    found = [b.to_lsp(now) for b in await manager.blocks(args.session_id)]
    if args.json:
        print_json({"blocks": found})
        return 0
    for b in found:
        code = b.get("exitCode", "-" if "endedAt" in b else "running")
        print(f"#{b['index']:<3} exit {code!s:<7} {b['durationMs']:>7} ms  {b['command']}")
    return 0


async def _export(manager: SessionManager, args: argparse.Namespace) -> int:
    if args.output is None:
        _, pieces = await manager.export_pieces(args.session_id, args.format, reveal=args.reveal)
        await asyncio.to_thread(_write_pieces, pieces)
        sys.stdout.buffer.flush()
    else:
        path = await manager.export(
            args.session_id, args.format, Path(args.output), reveal=args.reveal
        )
        print(path, file=sys.stderr)
    return 0


async def _bundle(manager: SessionManager, args: argparse.Namespace) -> int:
    info = await manager.bundle(args.session_id, args.output)
    if args.json:
        print_json(info.to_lsp())
    else:
        hidden = sum(info.redacted.values())
        print(
            f"{info.path}: {len(info.sessions)} session(s), {info.bytes} bytes"
            + (f", {hidden} secret(s) redacted" if hidden else "")
        )
    return 0


async def _import(manager: SessionManager, args: argparse.Namespace) -> int:
    imported = await manager.import_bundle(args.bundle)
    if args.json:
        print_json({"sessions": imported})
    else:
        for sid in imported:
            print(sid)
    return 0


def _write_pieces(pieces: Iterator[bytes]) -> None:
    from ktl_lsp.fullwrite import write_all

    for piece in pieces:
        write_all(sys.stdout.buffer, piece)


async def _replay(manager: SessionManager, args: argparse.Namespace) -> int:
    import tempfile
    import webbrowser

    session = await manager.get(args.session_id)
    url = _running_gateway_url(manager.path, session.id) if manager.path else None
    if url is not None:
        if args.no_open or not webbrowser.open(url):
            print(url)
        return 0
    target = Path(tempfile.gettempdir()) / f"ktl-replay-{session.id}.html"
    path = await manager.export(session.id, "html", target)
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


def _print_sessions(found: list[Session]) -> None:
    from ktl_lsp.sessions.model import iso

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
                duration(s.duration_ms),
                "📌" if s.pinned else "",
                s.title[:60],
            )
        )
    print_table(rows)


def _print_details(s: Session) -> None:
    from ktl_lsp.sessions.model import iso

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
        ("duration", duration(s.duration_ms)),
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
