"""``pauseOn: [warning]`` with a ``verify:`` node: ``ktl.plan.run`` in a real server, verify
against the loopback API server; a Warning-severity finding holds the node's dependents until a
person answers, and the finding is the reason given."""

from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path

from tests.conftest import Ktl
from tests.k8s.test_verify_events import WEB as WEB_TEMPLATE
from tests.k8s_api import FakeApi
from tests.lsp.features.test_plan_approvals import editor_waits, paused_plan
from tests.lsp.features.test_plans import _plan

WEB = WEB_TEMPLATE.replace("IMAGE", "nginx:1.27")

PLAN = {
    "name": "ship",
    "pauseOn": ["warning"],
    "nodes": [
        {"id": "deploy", "run": "echo deployed"},
        {
            "id": "check",
            "deps": ["deploy"],
            "verify": {
                "resources": ["Deployment/web"],
                "namespace": "default",
                "timeoutS": 10,
                "denyReasons": ["BackOff"],  # other reasons are warnings
            },
        },
        {"id": "announce", "deps": ["check"], "run": "echo announced"},
    ],
}


async def test_verify_warning_pauses_before_dependents(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    (tmp_path / "web.yaml").write_text(WEB)
    applied = await k8s.cmd("ktl.apply", {"uri": (tmp_path / "web.yaml").as_uri()})
    assert applied["state"] == "done"
    web = api.get("apps/v1", "Deployment", "web", "default")
    assert web is not None
    api.add_event(web, "Unhealthy", "Readiness probe failed: 503")
    asked, closed = editor_waits(k8s)
    try:
        uri = _plan(tmp_path, PLAN)
        task = k8s.start("ktl.plan.run", {"uri": uri})
        sid = await paused_plan(k8s, asked)
        assert asked == [
            "ktl: plan ship: check of plan ship paused: warning Deployment/web Unhealthy: "
            "Readiness probe failed: 503. Continue?"
        ]
        await asyncio.sleep(0.3)  # a dependent that wrongly started would show by now
        children = await k8s.cmd("ktl.sessions.list", {"parentId": sid})
        started = {s["meta"]["node"]: s for s in children["sessions"]}
        assert set(started) == {"deploy", "check"}  # announce waits
        # The verify node is a k8s session on the cluster, its findings recorded with it.
        check = started["check"]
        assert check["kind"] == "k8s" and check["meta"]["kubeContext"] == "fake"
        events = await k8s.cmd("ktl.session.output", {"sessionId": check["sessionId"]})
        results = [f["data"] for f in events["frames"] if f["data"].startswith('{"result":')]
        assert len(results) == 1 and '"severity":"warning"' in results[0]
        await k8s.cmd("ktl.plan.approve", {"sessionId": sid})
        result = await asyncio.wait_for(task, 30)
        assert [n["state"] for n in result["nodes"]] == ["done", "done", "done"]

        asked.clear()
        task = k8s.start("ktl.plan.run", {"uri": uri})
        sid = await paused_plan(k8s, asked)
        await k8s.cmd("ktl.plan.deny", {"sessionId": sid})
        result = await asyncio.wait_for(task, 30)
        announce = result["nodes"][2]
        assert announce["state"] == "skipped" and "sessionId" not in announce
        assert announce["reason"].startswith("not started: plan stopped after check")
    finally:
        closed.set()


async def test_verify_without_warnings_does_not_pause(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    (tmp_path / "web.yaml").write_text(WEB)
    await k8s.cmd("ktl.apply", {"uri": (tmp_path / "web.yaml").as_uri()})
    asked, closed = editor_waits(k8s)
    try:
        result = await asyncio.wait_for(k8s.cmd("ktl.plan.run", {"uri": _plan(tmp_path, PLAN)}), 30)
    finally:
        closed.set()
    assert [n["state"] for n in result["nodes"]] == ["done", "done", "done"]
    assert asked == []

    # Its bundle: the plan file as the run read it (edited since), every node's session, and
    # the verify node's findings; a diff's bundle carries the diff.
    plan_file = tmp_path / "ci.plan.yaml"
    as_run = plan_file.read_bytes()
    plan_file.write_text("name: edited-later\nnodes: []\n")
    bundle = await k8s.cmd(
        "ktl.session.bundle", {"sessionId": result["sessionId"], "path": str(tmp_path)}
    )
    check_id = result["nodes"][1]["sessionId"]
    with zipfile.ZipFile(bundle["path"]) as z:
        assert z.read("plan.yaml") == as_run
        names = set(z.namelist())
        for node in result["nodes"]:
            assert f"sessions/{node['sessionId']}/session.json" in names
        verdict = json.loads(z.read(f"sessions/{check_id}/result.json"))
    assert verdict == {"findings": [], "passed": True}
    (tmp_path / "web.yaml").write_text(WEB.replace("nginx:1.27", "nginx:1.28"))
    diff = await k8s.cmd("ktl.diff", {"uri": (tmp_path / "web.yaml").as_uri()})
    bundle = await k8s.cmd("ktl.session.bundle", {"sessionId": diff["sessionId"]})
    with zipfile.ZipFile(bundle["path"]) as z:
        recorded = json.loads(z.read(f"sessions/{diff['sessionId']}/result.json"))
    assert recorded["changed"] == 1 and "+      - image: nginx:1.28" in recorded["diff"]
    assert recorded["resources"][0]["kind"] == "Deployment"
