"""A plan's bundle: the plan session, every node's session and the plan file, imported into
another store with the parent links kept."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ktl_lsp.orchestration import PlanOptions, PlanRun, load, local_runners
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import SessionFilter
from tests.orchestration.conftest import write_plan


async def test_plan_bundle_has_its_nodes_and_plan_file(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "a.db")
    other = SessionManager.open(tmp_path / "b.db")
    try:
        data = {
            "name": "ship",
            "nodes": [
                {"id": "build", "run": "echo built"},
                {"id": "test", "run": "echo tested", "deps": ["build"]},
            ],
        }
        plan = load(write_plan(tmp_path, data))
        live = PlanRun(manager, plan, local_runners(manager), PlanOptions()).start()
        session = await live.done
        children = [n["sessionId"] for n in session.meta["plan"]["nodes"]]
        info = await manager.bundle(session.id, tmp_path / "ship.ktlbundle")
        assert info.sessions[0] == session.id  # the root first, its nodes after
        assert set(info.sessions) == {session.id, *children}
        with zipfile.ZipFile(info.path) as z:
            assert z.read("plan.yaml") == Path(plan.source or "").read_bytes()
        imported = await other.import_bundle(info.path)
        assert imported == info.sessions
        kids = await other.list_sessions(SessionFilter(parent_id=session.id))
        assert {k.id for k in kids} == set(children)
        built = "\n".join(await other.output_lines(children[0]))
        assert "built" in built
    finally:
        manager.close()
        other.close()


def test_recorded_results_are_redacted_in_bundles_and_exports(tmp_path: Path) -> None:
    """A diff in a session's result (a Secret's kubeconfig-style token on its own line, an AWS
    key) is scanned as text, so line-anchored rules match inside it, as in the output."""
    from ktl_lsp.sessions.bundle import write_bundle
    from ktl_lsp.sessions.export import export_to_path
    from ktl_lsp.sessions.model import FrameType, event_data
    from ktl_lsp.sessions.redact import Redaction
    from tests.sessions.test_export import open_store, record

    token = "abcdefghijklmnop0123456789"
    aws = "AKIAIOSFODNN7EXAMPLE"
    diff = f"--- a\n+++ b\n token: {token}\n+key {aws}\n"
    store = open_store(tmp_path / "s.db")
    try:
        s = record(
            store,
            [
                (100, FrameType.OUTPUT, b"diffed\r\n"),
                (200, FrameType.EVENT, event_data(result={"diff": diff, "changed": 1})),
            ],
        )
        info = write_bundle(store, s.id, tmp_path / "d.ktlbundle")
        with zipfile.ZipFile(info.path) as z:
            result = json.loads(z.read(f"sessions/{s.id}/result.json"))
            everything = b"".join(z.read(n) for n in z.namelist())
        assert result["changed"] == 1
        assert result["diff"].splitlines()[2:] == [
            " token: [REDACTED kubeconfig-token]",
            "+key [REDACTED aws-access-key-id]",
        ]
        assert token.encode() not in everything and aws.encode() not in everything
        assert info.redacted == {"kubeconfig-token": 1, "aws-access-key-id": 1}
        out = export_to_path(
            store, s.id, "ndjson", tmp_path / "s.ndjson", redaction=Redaction.default()
        )
        exported = out.read_bytes()
        assert b"changed" in exported and token.encode() not in exported
    finally:
        store.close()
