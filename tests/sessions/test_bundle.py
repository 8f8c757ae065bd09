"""A plan's bundle: the plan session, every node's session and the plan file, imported into
another store with the parent links kept."""

from __future__ import annotations

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
