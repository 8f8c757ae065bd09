"""``ktl-lsp audit``: the changes recorded in the session store, with who, where, against
what and why (``sessions/audit.py`` decides what a change is)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktl_lsp.cli.output import err, print_json, print_table, store_notice
from ktl_lsp.cli.sessions import since_arg

if TYPE_CHECKING:
    from ktl_lsp.cli.output import Subparsers

#: The CSV columns, each a path into an audit row.
COLUMNS: dict[str, tuple[str, ...]] = {
    "startedAt": ("startedAt",),
    "sessionId": ("sessionId",),
    "operation": ("operation",),
    "state": ("state",),
    "exitCode": ("exitCode",),
    "error": ("error",),
    "user": ("who", "user"),
    "requester": ("who", "requester"),
    "principal": ("who", "principal"),
    "host": ("where", "host"),
    "workspace": ("where", "workspace"),
    "gitRemote": ("where", "git", "remote"),
    "gitBranch": ("where", "git", "branch"),
    "gitCommit": ("where", "git", "commit"),
    "gitDirty": ("where", "git", "dirty"),
    "context": ("target", "context"),
    "cluster": ("target", "cluster"),
    "server": ("target", "server"),
    "namespace": ("target", "namespace"),
    "release": ("target", "release"),
    "chart": ("target", "chart"),
    "plan": ("target", "plan"),
    "node": ("target", "node"),
    "approvals": ("why", "approvals"),
    "command": ("command",),
}


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "audit",
        help="list the changes recorded (apply, delete, exec, plans...) with who and where",
        description="The sessions that changed something (applies, deletes, scales, restarts, "
        "edits, exec, port-forwards, Job runs, plan and stack runs, Helm releases), newest "
        "first, with their outcome, who started them, from where (host, workspace, git), "
        "against what (context, server, namespace, release) and who approved them. Secrets "
        "are redacted.",
    )
    since_arg(p, "only changes started since then")
    p.add_argument(
        "--context", metavar="GLOB", help="only changes to contexts matching GLOB (prod-*)"
    )
    p.add_argument(
        "--format",
        "-f",
        choices=["text", "json", "csv"],
        default="text",
        help="how to print them (default: %(default)s)",
    )
    p.add_argument(
        "--limit", type=int, default=500, help="list at most this many (default: %(default)s)"
    )
    p.set_defaults(run=run, default_log_level="WARNING")


def run(args: argparse.Namespace) -> int:
    store: Path = args.store
    if not store.exists():
        err(f"no session store at {store} (run something first, or pass --store)")
        return 1
    return asyncio.run(_audit(store, args))


async def _audit(store: Path, args: argparse.Namespace) -> int:
    from ktl_lsp.errors import UserError
    from ktl_lsp.sessions.audit import AuditQuery, audit_rows
    from ktl_lsp.sessions.manager import SessionManager

    manager = SessionManager.open(store, on_notice=store_notice)
    try:
        if manager.store_error is not None:
            err(manager.store_error)
            return 1
        rows = await audit_rows(manager, AuditQuery(args.since, args.context, args.limit))
    except (UserError, OSError) as exc:
        err(str(exc))
        return 1
    finally:
        manager.close()
    if args.format == "json":
        print_json({"changes": rows})
    elif args.format == "csv":
        _print_csv(rows)
    elif rows:
        _print_text(rows)
    return 0


def _get(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = row
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def approvals_text(approvals: Any) -> str:
    """``Apply by alice (editor)``; several joined by ``; ``."""
    out = []
    for a in approvals or []:
        answer = a.get("answer") or ("no answer" if a.get("state") == "withdrawn" else "none")
        who = f" by {a['who']}" if a.get("who") else ""
        out.append(f"{answer}{who}")
    return "; ".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _print_csv(rows: list[dict[str, Any]]) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(COLUMNS)
    for row in rows:
        cells = []
        for name, path in COLUMNS.items():
            value = _get(row, path)
            cells.append(approvals_text(value) if name == "approvals" else _cell(value))
        out.writerow(cells)


def _outcome(row: dict[str, Any]) -> str:
    code = row.get("exitCode")
    return f"{row['state']} ({code})" if code is not None else str(row["state"])


def _against(row: dict[str, Any]) -> str:
    t = row.get("target") or {}
    where = "/".join(
        str(x) for x in (t.get("context") or t.get("cluster"), t.get("namespace")) if x
    )
    release = f" {t['release']}" if t.get("release") else ""
    return f"{where}{release}" or (f"plan {t['plan']}" if t.get("plan") else "")


def _where(row: dict[str, Any]) -> str:
    w = row.get("where") or {}
    git = w.get("git") or {}
    place = f"{w.get('host', '')}:{w.get('workspace', '')}"
    if git:
        commit = str(git.get("commit") or "")[:8]
        state = " dirty" if git.get("dirty") else ""
        place += f" {git.get('branch') or 'detached'}@{commit}{state}"
    return place


def _print_text(rows: list[dict[str, Any]]) -> None:
    table = [["WHEN", "OPERATION", "OUTCOME", "WHO", "AGAINST", "WHERE", "WHY", "SESSION"]]
    for row in rows:
        who = row.get("who") or {}
        by = str(who.get("user") or who.get("requester") or "")
        if who.get("principal"):
            by += f" (token {who['principal']})"
        table.append(
            [
                str(row.get("startedAt") or "")[:19].replace("T", " "),
                str(row["operation"]),
                _outcome(row),
                by,
                _against(row),
                _where(row),
                approvals_text((row.get("why") or {}).get("approvals")),
                str(row["sessionId"]),
            ]
        )
    print_table(table)
