"""``ktl-lsp host``: the session host of a store, its status, and stopping it."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from ktl_lsp.cli.output import err, print_json
from ktl_lsp.host import DEFAULT_IDLE_TIMEOUT_S

if TYPE_CHECKING:
    from ktl_lsp.cli.output import Subparsers


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "host",
        help="keep sessions running when the editor goes (started by the language server when "
        "sessions.persist is on)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT_S,
        metavar="SECONDS",
        help="end after this long with no client and no running session (default: %(default)s)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--stop", action="store_true", help="stop the running host (its sessions are cancelled)"
    )
    what.add_argument("--status", action="store_true", help="say whether a host runs, and what")
    p.add_argument("--json", action="store_true", help="--status as JSON")
    p.set_defaults(run=run, default_log_level="INFO")


def run(args: argparse.Namespace) -> int:
    from ktl_lsp.host.protocol import HostError, HostPaths
    from ktl_lsp.host.server import AlreadyRunning, HostServer

    paths = HostPaths.of(args.store)
    try:
        if args.stop or args.status:
            return asyncio.run(_ask(paths, "stop" if args.stop else "status", args.json))
        asyncio.run(HostServer(args.store, args.idle_timeout, paths).run())
    except AlreadyRunning:
        err(f"ktl-lsp host: a host already serves this store on {paths.socket}")
        return 0
    except HostError as exc:
        err(f"ktl-lsp host: {exc}")
        return 1
    return 0


async def _ask(paths: Any, op: str, as_json: bool) -> int:
    from ktl_lsp.host.client import open_connection
    from ktl_lsp.host.protocol import pack, read_message

    conn = await open_connection(paths)
    if conn is None:
        if as_json:
            print_json({"running": False, "socket": str(paths.socket)})
        else:
            print(f"no session host runs for this store ({paths.socket})")
        return 3 if op == "status" else 0
    reader, writer = conn
    writer.write(pack({"op": op, "id": 1}))
    answer = await read_message(reader)
    if op == "stop":
        while await read_message(reader) is not None:  # the host closes it as it ends
            pass
        print("session host stopped")
        return 0
    writer.close()
    status = answer[0].get("ok", {}) if answer else {}
    if as_json:
        print_json({"running": True, **status})
        return 0
    print(f"session host pid {status.get('pid')} on {status.get('socket')}")
    print(
        f"store {status.get('store')}, {status.get('clients')} client(s), idle timeout "
        f"{status.get('idleTimeoutS')}s"
    )
    for s in status.get("sessions", []):
        print(f"  running {s['sessionId']}  {s['kind']}  {s['title']}")
    return 0
