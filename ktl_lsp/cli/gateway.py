"""``ktl-lsp gateway rotate-token``: replace the store's gateway token."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ktl_lsp.cli.output import err

if TYPE_CHECKING:
    from ktl_lsp.cli.output import Subparsers


def add_parser(sub: Subparsers) -> None:
    gw = sub.add_parser("gateway", help="the gateway's token")
    gw_sub = gw.add_subparsers(dest="gateway_cmd", required=True)
    rotate = gw_sub.add_parser(
        "rotate-token",
        help="replace the store's gateway token; running gateways switch on their next request",
    )
    rotate.set_defaults(run=run, default_log_level="WARNING")


def run(args: argparse.Namespace) -> int:
    from ktl_lsp.gateway.auth import rotate_token, token_path

    try:
        rotate_token(args.store)
    except OSError as exc:
        err(f"cannot write {token_path(args.store)}: {exc}")
        return 1
    # Never print the token itself: terminals are logged and shared.
    print(
        f"rotated the gateway token in {token_path(args.store)}; running gateways use it from "
        "their next request, so open replay tabs need a fresh link (ktl-lsp sessions replay ID)"
    )
    return 0
