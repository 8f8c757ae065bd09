"""The audit trail: the sessions that changed something, with who, where, against what and why.

Which sessions change something is decided here and nowhere else (:func:`operation`), from
what each kind of work records: Kubernetes work by its ``meta.command``, exec and port-forward
sessions by their kind, plans and stacks (and a stack's Helm releases) by their meta, and
commands run in a terminal by their first words (``kubectl apply``, ``helm upgrade``). Dry runs
are left out. ``ktl-lsp audit`` and ``GET /api/v1/audit`` both list :func:`audit_rows`.

Nothing in a row holds a secret: every string goes through the well-known redaction rules
(``sessions/redact.py``), values given to secret-looking names on a command line
(``--password=...``) and values under secret-looking keys are replaced, and URLs keep no
credentials (``sessions/provenance.py``).
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ktl_lsp.sessions.model import Session, SessionFilter, command_line, iso
from ktl_lsp.sessions.provenance import safe_url
from ktl_lsp.sessions.redact import Redaction, redact_assignments, redact_value

if TYPE_CHECKING:
    from ktl_lsp.sessions.manager import SessionManager

#: Kubernetes work (kind ``k8s``) that changes a cluster, by its ``meta.command``.
K8S_CHANGES = {
    "ktl apply": "apply",
    "ktl delete": "delete",
    "ktl scale": "scale",
    "ktl rollout-restart": "restart",
}
#: Kinds of session that are a change (or a way into one) whatever they run.
CHANGING_KINDS = {"exec": "exec", "port-forward": "port-forward"}
#: Commands run in a terminal that change a cluster: the tool and its changing subcommands.
CLI_CHANGES = {
    "kubectl": {
        "apply",
        "create",
        "delete",
        "edit",
        "patch",
        "replace",
        "scale",
        "rollout",
        "exec",
        "port-forward",
        "label",
        "annotate",
        "set",
        "drain",
        "cordon",
        "uncordon",
        "taint",
    },
    "helm": {"install", "upgrade", "uninstall", "delete", "rollback"},
    "ktl": {"apply", "delete", "deploy", "destroy"},
}
#: Global options of those tools that take the next word as their value (``-n shop``).
VALUED_FLAGS = {
    "-n",
    "--namespace",
    "--context",
    "--kube-context",
    "--kubeconfig",
    "--cluster",
    "--user",
    "-s",
    "--server",
    "--kube-apiserver",
    "--as",
    "--as-group",
    "--token",
    "--kube-token",
    "--request-timeout",
}
#: Where ``ktl.k8s.edit`` keeps the objects being edited (their saves are applies).
EDIT_DIR_PREFIX = "ktl-live-"
#: Sessions read per page while looking for changes, newest first.
PAGE = 500
MAX_LIMIT = 10_000


def _file_path(uri: Any) -> PurePosixPath | None:
    if isinstance(uri, str) and uri.startswith("file://"):
        return PurePosixPath(unquote(urlsplit(uri).path))
    return None


def _cli_change(line: str) -> str | None:
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]  # VAR=value before the command
    if words and words[0] in ("env", "sudo"):
        return _cli_change(shlex.join(words[1:]))
    if not words:
        return None
    tool = PurePosixPath(words[0]).name
    verbs = CLI_CHANGES.get(tool)
    if verbs is None:
        return None
    skip = False
    for word in words[1:]:
        if skip or word.startswith("-"):
            skip = word in VALUED_FLAGS
            continue
        return f"{tool} {word}" if word in verbs else None
    return None


def operation(s: Session) -> str | None:
    """What change a session is (``apply``, ``exec``, ``stack run``, ``helm upgrade``...), or
    None when it changes nothing (a read, a dry run, an agent's recorded call)."""
    meta = s.meta
    plan = meta.get("plan")
    if meta.get("dryRun") or (isinstance(plan, dict) and plan.get("dryRun")):
        return None
    if s.kind == "k8s":
        if meta.get("runner") == "kubernetes":
            return "job"  # a plan node run as a Kubernetes Job
        found = K8S_CHANGES.get(str(meta.get("command") or ""))
        path = _file_path(meta.get("uri"))
        if found == "apply" and path and any(p.startswith(EDIT_DIR_PREFIX) for p in path.parts):
            return "edit"
        return found
    if s.kind in CHANGING_KINDS:
        return CHANGING_KINDS[s.kind]
    if s.kind == "plan":
        return "stack run" if isinstance(plan, dict) and plan.get("kind") == "stack" else "plan run"
    if s.kind in ("pty", "shell"):
        if meta.get("release") and meta.get("chart") and s.tags.get("plan"):
            return "helm release"  # a stack's release, run as a plan node
        return _cli_change(command_line(meta))
    return None


def _text(redaction: Redaction) -> Callable[[str], str]:
    def clean(text: str) -> str:
        scanned = redaction.redactor().scan(redact_assignments(text).encode())
        return scanned.data.decode("utf-8", "replace")

    return clean


def _some(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "", [], {})}


def audit_row(s: Session, op: str, redaction: Redaction | None = None) -> dict[str, Any]:
    """One change as JSON: when, what, outcome, who, where, against what, why; redacted."""
    meta = s.meta
    git = meta.get("git") if isinstance(meta.get("git"), dict) else None
    if git is not None and isinstance(git.get("remote"), str):
        git = {**git, "remote": safe_url(git["remote"])}
    plan = meta.get("plan") if isinstance(meta.get("plan"), dict) else {}
    approvals = [a for a in meta.get("approvals") or [] if isinstance(a, dict)]
    row: dict[str, Any] = {
        "sessionId": s.id,
        "operation": op,
        "kind": s.kind,
        "title": s.title,
        "command": command_line(meta),
        "startedAt": iso(s.created_ns),
        "endedAt": iso(s.ended_ns),
        "durationMs": s.duration_ms,
        "state": str(s.state),
        "exitCode": s.exit_code,
        "error": s.error,
        "parentId": s.parent_id,
        "who": _some(
            user=meta.get("user"),
            requester=meta.get("requester"),
            principal=meta.get("principal"),
            agent=s.tags.get("agent"),
        ),
        "where": _some(
            host=meta.get("host"),
            workspace=meta.get("workspace"),
            cwd=meta.get("cwd"),
            file=str(p) if (p := _file_path(meta.get("uri"))) else None,
            git=git,
        ),
        "target": _some(
            context=meta.get("kubeContext"),
            cluster=meta.get("cluster"),
            server=safe_url(str(meta["server"])) if meta.get("server") else None,
            namespace=meta.get("namespace"),
            release=meta.get("release"),
            chart=meta.get("chart"),
            plan=plan.get("name") if plan else meta.get("plan"),
            node=meta.get("node"),
            target=meta.get("target"),
        ),
        "why": _some(approvals=approvals),
    }
    row = {k: v for k, v in row.items() if v is not None}
    return redact_value(row, _text(redaction or Redaction.default()))  # type: ignore[no-any-return]


def context_of(s: Session) -> str | None:
    """The context a change was made against (a stack's release names its cluster)."""
    found = s.meta.get("kubeContext") or s.meta.get("cluster")
    return str(found) if found else None


@dataclass
class AuditQuery:
    since_ns: int | None = None
    #: A shell-style glob of context names (``prod-*``).
    context: str | None = None
    limit: int = 500

    def wants(self, s: Session) -> bool:
        if self.context is None:
            return True
        found = context_of(s)
        return found is not None and fnmatch.fnmatchcase(found, self.context)


async def audit_rows(manager: SessionManager, query: AuditQuery) -> list[dict[str, Any]]:
    """The changes recorded in the store, newest first, at most ``query.limit``."""
    await manager.flush()
    limit = max(0, min(query.limit, MAX_LIMIT))
    redaction = manager.outgoing_redaction()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    until: int | None = None
    while len(rows) < limit:
        page = await manager.list_sessions(
            SessionFilter(since_ns=query.since_ns, until_ns=until, limit=PAGE, not_kind="agent")
        )
        fresh = [s for s in page if s.id not in seen]
        for s in fresh:
            seen.add(s.id)
            op = operation(s)
            if op is not None and query.wants(s):
                rows.append(audit_row(s, op, redaction))
                if len(rows) == limit:
                    break
        if len(page) < PAGE or not fresh:
            break
        until = page[-1].created_ns
    return rows
