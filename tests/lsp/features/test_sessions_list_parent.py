"""``ktl.sessions.list`` with ``parentId``: a plan's node sessions (what the editors' Sessions
views expand a plan into)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pygls.exceptions import JsonRpcInvalidParams

from tests.conftest import Ktl


async def test_list_children_of_a_plan(ktl: Ktl, tmp_path: Path) -> None:
    plan = tmp_path / "ci.plan.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "name": "ci",
                "nodes": [
                    {"id": "build", "run": "echo built"},
                    {"id": "test", "run": "echo tested", "deps": ["build"]},
                ],
            }
        )
    )
    other = await ktl.cmd("ktl.run", {"command": "echo unrelated"})
    result = await ktl.cmd("ktl.plan.run", {"uri": plan.as_uri()})
    assert result["state"] == "done"
    children = (await ktl.cmd("ktl.sessions.list", {"parentId": result["sessionId"]}))["sessions"]
    by_node = {s["meta"]["node"]: s for s in children}
    assert set(by_node) == {"build", "test"}
    assert all(s["parentId"] == result["sessionId"] for s in children)
    assert {s["sessionId"] for s in children} == {n["sessionId"] for n in result["nodes"]}
    # combines with the other filters; the plan and unrelated sessions are not children
    done = await ktl.cmd(
        "ktl.sessions.list", {"parentId": result["sessionId"], "state": "done", "limit": 1}
    )
    assert len(done["sessions"]) == 1 and done["sessions"][0]["parentId"] == result["sessionId"]
    none = await ktl.cmd("ktl.sessions.list", {"parentId": other["sessionId"]})
    assert none["sessions"] == []
    everything = (await ktl.cmd("ktl.sessions.list", {}))["sessions"]
    assert {result["sessionId"], other["sessionId"]} <= {s["sessionId"] for s in everything}


async def test_parent_id_must_be_a_string(ktl: Ktl) -> None:
    with pytest.raises(JsonRpcInvalidParams, match="parentId"):
        await ktl.cmd("ktl.sessions.list", {"parentId": 3})
