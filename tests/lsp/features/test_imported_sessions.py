"""Sessions imported from a bundle are read-only: every command that would drive, repeat or
resume one is refused with a message that says so, through a real server on the importing store.
Replaying, listing, pinning and deleting them work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.orchestration import PlanOptions, PlanRun, load, local_runners
from ktl_lsp.sessions.manager import RunSpec, SessionManager
from tests.conftest import StartKtl
from tests.orchestration.conftest import write_plan


async def make_bundles(tmp_path: Path) -> tuple[Path, Path, str, str]:
    """A plan run's bundle and the bundle of a session taken while it still ran."""
    manager = SessionManager.open(tmp_path / "teammate.db")
    try:
        data = {"name": "ship", "nodes": [{"id": "build", "run": "echo built"}]}
        plan = load(write_plan(tmp_path, data))
        run = PlanRun(manager, plan, local_runners(manager), PlanOptions()).start()
        plan_id = (await run.done).id
        plan_bundle = (await manager.bundle(plan_id, tmp_path / "plan.ktlbundle")).path
        live = manager.start(RunSpec(argv=["sh", "-c", "echo up; sleep 30"]))
        while "up" not in "".join(await manager.output_lines(live.id)):
            await asyncio.sleep(0.02)
        running_bundle = (await manager.bundle(live.id, tmp_path / "live.ktlbundle")).path
        manager.cancel(live.id)
        await live.done
        return plan_bundle, running_bundle, plan_id, live.id
    finally:
        manager.close()


async def test_imported_sessions_refuse_control(start_ktl: StartKtl, tmp_path: Path) -> None:
    plan_bundle, running_bundle, plan_id, running_id = await make_bundles(tmp_path)
    store = tmp_path / "mine.db"
    mine = SessionManager.open(store)
    try:
        assert (await mine.import_bundle(plan_bundle))[0] == plan_id
        assert await mine.import_bundle(running_bundle) == [running_id]
    finally:
        mine.close()
    ktl = await start_ktl(store=store)

    listed = (await ktl.cmd("ktl.sessions.list", {"limit": 10}))["sessions"]
    by_id = {s["sessionId"]: s for s in listed}
    assert by_id[plan_id]["meta"]["imported"]["from"] == "plan.ktlbundle"
    # Bundled while it ran: imported as interrupted, never as running.
    assert by_id[running_id]["state"] == "interrupted"

    def refused(action: str, source: str = "live.ktlbundle") -> str:
        return f"was imported from {source} and is read-only: it cannot {action}"

    calls = [
        ("ktl.session.input", {"sessionId": running_id, "data": "x"}, "take input"),
        ("ktl.session.resize", {"sessionId": running_id, "cols": 80, "rows": 24}, "be resized"),
        ("ktl.session.signal", {"sessionId": running_id, "signal": "INT"}, "be sent a signal"),
        ("ktl.session.cancel", {"sessionId": running_id[:8]}, "be cancelled"),
        ("ktl.block.rerun", {"sessionId": running_id, "block": 0, "target": "run"}, "be rerun"),
    ]
    for command, args, action in calls:
        with pytest.raises(JsonRpcInvalidParams, match=refused(action)):
            await ktl.cmd(command, args)
    with pytest.raises(JsonRpcInvalidParams, match=refused("be resumed", "plan.ktlbundle")):
        await ktl.cmd("ktl.plan.run", {"resume": plan_id})

    # What reading and keeping needs still works.
    out = await ktl.cmd("ktl.session.output", {"sessionId": running_id, "plain": True})
    assert "up" in "".join(f["data"] for f in out["frames"] if f["type"] == "output")
    pinned = await ktl.cmd("ktl.session.pin", {"sessionId": plan_id, "pinned": True})
    assert pinned["pinned"] is True
    await ktl.cmd("ktl.session.delete", {"sessionId": running_id})
    left = (await ktl.cmd("ktl.sessions.list", {"limit": 10}))["sessions"]
    assert running_id not in {s["sessionId"] for s in left}
