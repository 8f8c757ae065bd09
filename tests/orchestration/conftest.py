"""Plans run on a real SessionManager with real processes (small shell scripts)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml

from ktl_lsp.orchestration import PlanOptions, PlanRun, load, local_runners
from ktl_lsp.orchestration.model import Plan
from ktl_lsp.sessions.manager import LiveSession, SessionManager
from ktl_lsp.sessions.model import Session

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"


@pytest_asyncio.fixture
async def manager(tmp_path: Path) -> AsyncIterator[SessionManager]:
    m = SessionManager.open(tmp_path / "sessions.db")
    yield m
    m.close()


def write_plan(tmp_path: Path, data: dict[str, Any], name: str = "t.plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def run_plan(
    manager: SessionManager, plan: Plan | Path, **options: Any
) -> tuple[Session, dict[str, Any], LiveSession]:
    """Runs a plan to its end: (the plan session, its record ``meta.plan``, the live session)."""
    if isinstance(plan, Path):
        plan = load(plan)
    live = PlanRun(manager, plan, local_runners(manager), PlanOptions(**options)).start()
    session = await live.done
    return session, session.meta["plan"], live


class Gates:
    """Nodes that hold until the test lets them go: each one says it started (a file in
    ``started/``) and waits for its file in ``go/``. What ran together is then decided by the test,
    not by how long a ``sleep`` took on a busy machine."""

    def __init__(self, root: Path) -> None:
        self.started_dir, self.go_dir = root / "started", root / "go"
        self.started_dir.mkdir(parents=True)
        self.go_dir.mkdir()

    def run(self, node_id: str) -> str:
        """The shell command of a gated node."""
        return (
            f"touch {self.started_dir}/{node_id}; "
            f"until [ -e {self.go_dir}/{node_id} ]; do sleep 0.01; done"
        )

    def started(self) -> set[str]:
        return {p.name for p in self.started_dir.iterdir()}

    async def until_started(self, count: int, timeout: float = 10) -> set[str]:
        """The started nodes, once there are ``count`` of them."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(found := self.started()) < count:
            assert loop.time() < end, f"{count} nodes never ran at once: started {found}"
            await asyncio.sleep(0.01)
        return found

    def release(self, ids: set[str]) -> None:
        for node_id in ids:
            (self.go_dir / node_id).touch()


def nodes(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in record["nodes"]}


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def intervals(
    manager: SessionManager, record: dict[str, Any]
) -> dict[str, tuple[float, float]]:
    """(start, end) of each node's last session, from the sessions' own records."""
    out = {}
    for node in record["nodes"]:
        if "sessionId" in node:
            s = (await manager.get(node["sessionId"])).to_lsp()
            out[node["id"]] = (ts(s["createdAt"]), ts(s["endedAt"]))
    return out


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def max_parallel(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1)


Writer = Callable[[dict[str, Any]], Path]
