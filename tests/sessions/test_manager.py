"""Task sessions (work that is not a process) through the manager and a real store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, TaskOutcome
from ktl_lsp.sessions.model import FrameType, State


async def test_task_session_records_output_and_result(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "s.db")

    async def work(live: LiveSession) -> TaskOutcome:
        live.write("applying\r\n")
        await asyncio.sleep(0.01)
        return TaskOutcome(extra={"resources": [{"kind": "ConfigMap", "action": "created"}]})

    live = manager.start_task(
        RunSpec(argv=[], command="ktl apply", kind="k8s", title="apply"), work
    )
    session = await live.done
    assert session.state is State.DONE and session.exit_code == 0
    assert live.result_extra["resources"][0]["action"] == "created"
    frames, _ = await manager.frames(session.id)
    assert b"".join(f.data for f in frames if f.type is FrameType.OUTPUT) == b"applying\r\n"
    stored = await manager.get(session.id)
    assert stored.kind == "k8s"
    manager.close()


async def test_task_failure_and_cancel(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "s.db")

    async def boom(live: LiveSession) -> TaskOutcome:
        raise RuntimeError("the API server said no")

    failed = await manager.start_task(RunSpec(argv=[], command="x", kind="k8s"), boom).done
    assert failed.state is State.ERROR and failed.error == "the API server said no"

    async def forever(live: LiveSession) -> TaskOutcome:
        await asyncio.sleep(60)
        return TaskOutcome()

    live = manager.start_task(RunSpec(argv=[], command="y", kind="k8s"), forever)
    await asyncio.sleep(0.01)
    manager.cancel(live.id)
    cancelled = await asyncio.wait_for(live.done, 5)
    assert cancelled.state is State.CANCELLED

    slow = manager.start_task(RunSpec(argv=[], command="z", kind="k8s", timeout_s=0.05), forever)
    timed_out = await asyncio.wait_for(slow.done, 5)
    assert timed_out.state is State.ERROR and timed_out.error == "timed out after 0.05s"
    manager.close()


async def test_a_task_cancelled_before_it_ever_ran_still_ends(tmp_path: Path) -> None:
    """A cancel that lands before the task's first step never enters its body."""
    manager = SessionManager.open(tmp_path / "s.db")
    ran: list[str] = []

    async def work(live: LiveSession) -> TaskOutcome:
        ran.append(live.id)
        return TaskOutcome()

    live = manager.start_task(RunSpec(argv=[], command="x", kind="k8s"), work)
    manager.cancel(live.id)  # same loop turn: the task has not started
    ended = await asyncio.wait_for(live.done, 5)
    assert ended.state is State.CANCELLED and ended.exit_code == 130 and ran == []
    manager.close()
