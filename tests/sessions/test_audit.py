"""Which recorded sessions are changes (sessions/audit.py), for sessions made through the real
manager and store the way each kind of work records itself; the trail pages through a store
larger than one page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ktl_lsp.sessions import audit
from ktl_lsp.sessions.audit import AuditQuery, audit_rows, operation
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.model import State

EDITED = Path("/tmp/ktl-live-abc123/prod/shop/Deployment/web.yaml")

#: (kind, command, meta, tags) -> the operation the trail shows (None: not a change).
CASES: list[tuple[str, str, dict[str, Any], dict[str, str], str | None]] = [
    ("k8s", "ktl apply", {"uri": "file:///w/app.yaml"}, {}, "apply"),
    ("k8s", "ktl apply", {"uri": EDITED.as_uri()}, {}, "edit"),
    ("k8s", "ktl apply", {"dryRun": True}, {}, None),
    ("k8s", "ktl delete", {}, {}, "delete"),
    ("k8s", "ktl scale", {}, {}, "scale"),
    ("k8s", "ktl rollout-restart", {}, {}, "restart"),
    ("k8s", "ktl diff", {}, {}, None),
    ("k8s", "ktl logs", {}, {}, None),
    ("k8s", "ktl watch", {}, {}, None),
    ("k8s", "sh -c migrate", {"runner": "kubernetes"}, {"plan": "ci"}, "job"),
    ("exec", "ktl exec", {}, {}, "exec"),
    ("port-forward", "ktl port-forward", {}, {}, "port-forward"),
    ("plan", "ktl.plan.run ci.yaml", {"plan": {"name": "ci", "kind": "plan"}}, {}, "plan run"),
    ("plan", "ktl.plan.run s.yaml", {"plan": {"name": "s", "kind": "stack"}}, {}, "stack run"),
    ("plan", "ktl.plan.run ci.yaml", {"plan": {"name": "ci", "dryRun": True}}, {}, None),
    ("pty", "ktl apply web", {"release": "web", "chart": "./c"}, {"plan": "s"}, "helm release"),
    ("pty", "kubectl -n shop rollout restart deploy/web", {}, {}, "kubectl rollout"),
    ("pty", "KUBECONFIG=x /usr/bin/helm upgrade --install web ./c", {}, {}, "helm upgrade"),
    ("pty", "kubectl get pods", {}, {}, None),
    ("pty", "helm template web ./c", {}, {}, None),
    ("shell", "bash", {}, {}, None),
    ("agent", "mcp tool list_sessions", {}, {}, None),
]


async def test_what_counts_as_a_change(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "s.db")
    try:
        made = []
        for kind, command, meta, tags, _ in CASES:
            live = manager.create(
                RunSpec(argv=[], command=command, kind=kind, meta=meta, tags=tags)
            )
            manager.finish(live, State.DONE, exit_code=0)
            made.append(live.id)
        await manager.flush()
        got = [operation(await manager.get(sid)) for sid in made]
        assert got == [case[-1] for case in CASES]
        rows = await audit_rows(manager, AuditQuery())
    finally:
        manager.close()
    expected = [(sid, case[-1]) for sid, case in zip(made, CASES, strict=True) if case[-1]]
    assert [(r["sessionId"], r["operation"]) for r in rows] == expected[::-1]


async def test_the_trail_pages_through_the_store(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(audit, "PAGE", 7)
    manager = SessionManager.open(tmp_path / "s.db")
    try:
        changes = []
        for i in range(40):
            command = "ktl delete" if i % 3 == 0 else "ktl logs"
            live = manager.create(RunSpec(argv=[], command=command, kind="k8s"))
            manager.finish(live, State.DONE, exit_code=0)
            if i % 3 == 0:
                changes.append(live.id)
        await manager.flush()
        every = await audit_rows(manager, AuditQuery())
        five = await audit_rows(manager, AuditQuery(limit=5))
    finally:
        manager.close()
    assert [r["sessionId"] for r in every] == changes[::-1]
    assert [r["sessionId"] for r in five] == changes[::-1][:5]
