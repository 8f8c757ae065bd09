"""``get_plan`` on a real plan run, the byte budget on a 50 MB session, and the cluster reads
against the loopback API server, all through ``ktl-lsp mcp``."""

from __future__ import annotations

import time
from pathlib import Path

from ktl_lsp.orchestration import PlanOptions, PlanRun, load, local_runners
from ktl_lsp.sessions.manager import SessionManager
from tests.agents.conftest import answer, error_text, record_big_session, stdio_agent
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.orchestration.conftest import write_plan


async def test_get_plan_says_which_node_failed_and_why(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    plan = write_plan(
        tmp_path,
        {
            "name": "release",
            "nodes": [
                {"id": "build", "run": "echo built"},
                {
                    "id": "migrate",
                    "run": "echo 'migration 42 failed: lock held'; exit 5",
                    "deps": ["build"],
                },
                {"id": "deploy", "run": "echo deployed", "deps": ["migrate"]},
            ],
        },
    )
    manager = SessionManager.open(store)
    live = PlanRun(manager, load(plan), local_runners(manager), PlanOptions()).start()
    session = await live.done
    await manager.flush()
    manager.close()
    async with stdio_agent(store) as agent:
        got = answer(await agent.call_tool("get_plan", {"sessionId": session.id}))
        assert got["plan"] == "release"
        assert got["states"] == {"done": 1, "failed": 1, "skipped": 1}
        (failed,) = got["failed"]
        assert failed["id"] == "migrate" and failed["exitCode"] == 5
        assert failed["outputTail"] == "migration 42 failed: lock held\n"
        assert got["skipped"] == [{"id": "deploy", "reason": 'dependency "migrate" failed'}]
        assert {n["id"]: n["state"] for n in got["nodes"]} == {
            "build": "done",
            "migrate": "failed",
            "deploy": "skipped",
        }
        # A node's session leads to its plan too.
        node = answer(await agent.call_tool("get_plan", {"sessionId": failed["sessionId"]}))
        assert node["session"]["sessionId"] == session.id
        why = await agent.get_prompt("why-did-this-session-fail", {"sessionId": session.id})
        assert "migration 42 failed" in why.messages[0].content.text  # type: ignore[union-attr]


async def test_a_50_mb_session_is_read_within_the_byte_budget(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    sid = await record_big_session(store, 50)
    async with stdio_agent(store) as agent:
        start = time.perf_counter()
        tail = answer(await agent.call_tool("read_output", {"sessionId": sid, "tailLines": 200}))
        took = time.perf_counter() - start
        lines = tail["text"].split("\n")
        assert len(lines) == 201 and lines[-2] == "the last line" and lines[0] == "x" * 90
        assert took < 1.0, took  # the call, JSON-RPC and process hops included
        capped = answer(
            await agent.call_tool(
                "read_output", {"sessionId": sid, "tailLines": 100000, "maxBytes": 4096}
            )
        )
        assert capped["bytes"] <= 4096 and capped["truncated"]
        first = answer(await agent.call_tool("read_output", {"sessionId": sid, "fromSeq": 1}))
        assert first["bytes"] <= 65536 and first["nextSeq"] > first["fromSeq"]
        assert first["text"].startswith("x" * 90 + "\n")
        hits = answer(await agent.call_tool("search_output", {"query": "the last line"}))
        assert [m["text"] for m in hits["matches"]] == ["the last line"]


async def test_cluster_reads(tmp_path: Path) -> None:
    async with FakeApi() as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api)
        pod = api.add_pod("web-1", labels={"app": "web"})
        api.log("web-1", "app", *(f"request {i}" for i in range(500)))
        api.add_event(pod, "BackOff", "Back-off restarting failed container")
        api.add(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db", "namespace": "default"},
                "data": {"password": "aHVudGVyMg=="},
            }
        )
        manifest = tmp_path / "cm.yaml"
        manifest.write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n"
        )
        before = dict(api.requests)
        async with stdio_agent(tmp_path / "s.db", {"KUBECONFIG": str(kubeconfig)}) as agent:
            listed = answer(await agent.call_tool("k8s_list", {"kinds": ["pods"]}))
            assert listed["context"] == "fake"
            assert [i["name"] for i in listed["items"]] == ["web-1"]
            logs = answer(await agent.call_tool("k8s_logs", {"pod": "web-1", "tailLines": 3}))
            assert logs["text"].splitlines() == ["request 497", "request 498", "request 499"]
            events = answer(await agent.call_tool("k8s_events", {}))
            assert "BackOff" in events["text"] and "\x1b" not in events["text"]
            secret = answer(await agent.call_tool("k8s_describe", {"kind": "secret", "name": "db"}))
            assert (
                "aHVudGVyMg==" not in secret["yaml"] and "password: '[REDACTED]'" in secret["yaml"]
            )
            described = answer(
                await agent.call_tool("k8s_describe", {"kind": "pod", "name": "web-1"})
            )
            assert any("BackOff" in e for e in described["events"])
            diff = answer(await agent.call_tool("k8s_diff", {"path": str(manifest)}))
            assert [(o["kind"], o["action"]) for o in diff["objects"]] == [("ConfigMap", "created")]
            missing = await agent.call_tool("k8s_describe", {"kind": "pod", "name": "nope"})
            assert "not found" in error_text(missing).lower()
            bogus = await agent.call_tool("k8s_list", {"kinds": ["gizmos"]})
            assert "unknown kind 'gizmos'" in error_text(bogus)
        # The dry run changed nothing: no ConfigMap exists, and no write reached the server.
        assert api.get("v1", "ConfigMap", "settings", "default") is None
        used = {k for k in api.requests if api.requests[k] > before.get(k, 0)}
        assert "GET" in used and used <= {"GET", "PATCH"}, used
