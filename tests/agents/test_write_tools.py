"""The tools that change things, through the ``mcp`` SDK's client against a real ``ktl-lsp mcp``
(stdio) and ``ktl-lsp serve --mcp`` (HTTP): off without ``allowWrite``; allow-listed calls go
ahead; others wait for a person, who answers through the gateway; read-only contexts refuse
and protected ones ask even when allow-listed; two answers run nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client
from mcp_types import CallToolResult

from ktl_lsp.agents.writes import APPROVE, DENY, WRITE_TOOLS
from ktl_lsp.gateway.auth import token_path
from tests.agents.conftest import answer, error_text, stdio_agent
from tests.agents.test_http import _agent, serving
from tests.cli.conftest import ktl_lsp
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.orchestration.conftest import write_plan


def _settings(tmp_path: Path, **agents: Any) -> str:
    k8s = agents.pop("k8s", {})
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"agents": agents, "k8s": k8s}))
    return str(path)


async def _waiting_call(agent: Client) -> dict[str, Any]:
    """The agent's call that waits for a person (its session says where to answer)."""
    with anyio.fail_after(30):
        while True:
            calls = answer(
                await agent.call_tool("list_sessions", {"kind": "agent", "state": "running"})
            )
            waiting = [s for s in calls["sessions"] if s["meta"].get("approveAt")]
            if waiting:
                return waiting[0]  # type: ignore[no-any-return]
            await anyio.sleep(0.05)


@asynccontextmanager
async def _person(base: str, store: Path) -> AsyncIterator[httpx.AsyncClient]:
    token = token_path(store).read_text().strip()
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        yield http


async def _question(http: httpx.AsyncClient) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            pending = (await http.get("/api/v1/approvals")).json()["pending"]
            if pending:
                return pending[0]  # type: ignore[no-any-return]
            await anyio.sleep(0.05)


async def _reply(http: httpx.AsyncClient, q: dict[str, Any], choice: str, who: str) -> int:
    got = await http.post(
        f"/api/v1/sessions/{q['sessionId']}/approvals/{q['n']}", json={"choice": choice, "who": who}
    )
    return got.status_code


async def test_without_allow_write_nothing_is_offered_or_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    async with stdio_agent(tmp_path / "s.db") as agent:
        names = {t.name for t in (await agent.list_tools()).tools}
        assert names.isdisjoint(WRITE_TOOLS)
        refused = await agent.call_tool("run", {"argv": ["touch", str(marker)]})
        assert "run" in error_text(refused)
    assert not marker.exists()


async def test_allow_listed_runs_others_ask_a_person_over_stdio(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    marker = tmp_path / "approved"
    settings = _settings(
        tmp_path, allowWrite=True, allow=[{"tool": "run", "argv": ["echo", "allowed"]}]
    )
    async with stdio_agent(store, None, "--settings", settings) as agent:
        tools = {t.name: t for t in (await agent.list_tools()).tools}
        assert set(WRITE_TOOLS) <= set(tools)
        assert tools["run"].annotations and tools["run"].annotations.destructive_hint

        done = answer(await agent.call_tool("run", {"argv": ["echo", "allowed", "here"]}))
        assert (done["state"], done["exitCode"], done["approval"]) == ("done", 0, "allow-list")
        out = answer(await agent.call_tool("read_output", {"sessionId": done["sessionId"]}))
        assert out["text"] == "allowed here\n"

        # Not allow-listed: the call waits; two people answer at once, one of them counts.
        script = f"echo approved >> {marker}"
        results: list[CallToolResult] = []
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                results.append(
                    await agent.call_tool("run", {"argv": ["sh", "-c", script], "cwd": "/"})
                )

            tg.start_soon(call)
            waiting = await _waiting_call(agent)
            base = waiting["meta"]["approveAt"].removesuffix("/ui/")
            async with _person(base, store) as http:
                q = await _question(http)
                assert q["sessionId"] == waiting["sessionId"]
                assert q["question"].startswith("Agent test-agent: run `sh -c")
                statuses = await asyncio.gather(
                    _reply(http, q, APPROVE, "alice"), _reply(http, q, APPROVE, "bob")
                )
        assert sorted(statuses) == [200, 409]
        ran = answer(results[0])
        assert ran["exitCode"] == 0 and ran["approval"].startswith("approved by ")
        assert marker.read_text() == "approved\n"

        # A no: nothing runs, and the refusal says who.
        async with anyio.create_task_group() as tg:
            results.clear()

            async def denied() -> None:
                results.append(await agent.call_tool("run", {"command": f"touch {marker}.no"}))

            tg.start_soon(denied)
            async with _person(base, store) as http:
                q = await _question(http)
                assert await _reply(http, q, DENY, "carol") == 200
        assert "carol" in error_text(results[0]) and "Deny" in error_text(results[0])
        assert not Path(f"{marker}.no").exists()

        calls = answer(await agent.call_tool("list_sessions", {"kind": "agent", "limit": 100}))
        started = answer(await agent.call_tool("list_sessions", {"kind": "pty"}))["sessions"]
    runs = [s for s in calls["sessions"] if s["meta"]["target"] == "run"]
    approvals = sorted(s["meta"]["approval"].split(" (")[0] for s in runs)
    assert approvals == ["allow-list", "approved by alice", "refused: run refused: carol"]
    assert {s["meta"]["requester"] for s in started} == {"agent:test-agent"}
    assert {s["meta"]["agentCall"] for s in started} <= {s["sessionId"] for s in runs}
    assert len(started) == 2  # the allow-listed run and the approved one, once


async def test_no_answer_in_time_refuses(tmp_path: Path) -> None:
    marker = tmp_path / "never"
    settings = _settings(tmp_path, allowWrite=True, approvalTimeout=0.5)
    async with stdio_agent(tmp_path / "s.db", None, "--settings", settings) as agent:
        refused = await agent.call_tool("run", {"argv": ["touch", str(marker)]})
        assert "no answer within 0.5s" in error_text(refused)
    assert not marker.exists()


async def test_read_only_refuses_protected_asks_even_when_allow_listed(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n"
    )
    async with FakeApi() as api:
        kubeconfig = str(write_kubeconfig(tmp_path / "kubeconfig", api))
        env = {"KUBECONFIG": kubeconfig}
        every_apply = [{"tool": "k8s_apply"}, {"tool": "k8s_delete"}]
        read_only = _settings(
            tmp_path, allowWrite=True, allow=every_apply, k8s={"readOnlyContexts": ["fa*"]}
        )
        async with stdio_agent(store, env, "--settings", read_only) as agent:
            refused = await agent.call_tool("k8s_apply", {"path": str(manifest)})
            assert "context fake is read-only (k8s.readOnlyContexts: fa*)" in error_text(refused)
            gone = await agent.call_tool(
                "k8s_delete",
                {"objects": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "settings"}]},
            )
            assert "read-only" in error_text(gone)
        assert api.requests["PATCH"] == api.requests["DELETE"] == api.requests["POST"] == 0

        protected = _settings(
            tmp_path, allowWrite=True, allow=every_apply, k8s={"protectedContexts": ["fake"]}
        )
        async with stdio_agent(store, env, "--settings", protected) as agent:
            results: list[CallToolResult] = []
            async with anyio.create_task_group() as tg:

                async def apply() -> None:
                    results.append(await agent.call_tool("k8s_apply", {"path": str(manifest)}))

                tg.start_soon(apply)
                waiting = await _waiting_call(agent)
                base = waiting["meta"]["approveAt"].removesuffix("/ui/")
                async with _person(base, store) as http:
                    q = await _question(http)
                    assert q["question"] == "Apply 1 object to fake / default?"
                    assert api.get("v1", "ConfigMap", "settings", "default") is None
                    assert await _reply(http, q, "Apply", "dave") == 200
            applied = answer(results[0])
            assert applied["state"] == "done"
            assert [(r["kind"], r["action"]) for r in applied["resources"]] == [
                ("ConfigMap", "created")
            ]
            session = answer(
                await agent.call_tool("get_session", {"sessionId": applied["sessionId"]})
            )
        assert api.get("v1", "ConfigMap", "settings", "default") is not None
        assert session["meta"]["requester"] == "agent:test-agent"
        assert [a["who"] for a in session["meta"]["approvals"]][-1].startswith("dave")


async def test_over_http_an_answer_after_the_agent_left_runs_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    marker = tmp_path / "ran"
    async with serving(store, "--mcp", "--allow-write", env=dict(os.environ)) as base:
        token = token_path(store).read_text().strip()
        async with _person(base, store) as http:
            with anyio.move_on_after(30) as left:
                async with _agent(f"{base}/mcp", token) as agent, anyio.create_task_group() as tg:
                    tg.start_soon(agent.call_tool, "run", {"argv": ["touch", str(marker)]})
                    q = await _question(http)
                    assert q["question"].startswith("Agent test-agent: run `touch")
                    tg.cancel_scope.cancel()  # the agent leaves while its call waits
            assert not left.cancelled_caught
            with anyio.fail_after(30):
                while (await http.get("/api/v1/approvals")).json()["pending"]:
                    await anyio.sleep(0.05)
            assert await _reply(http, q, APPROVE, "too late") == 409

            async with _agent(f"{base}/mcp", token) as agent, anyio.create_task_group() as tg:
                results: list[CallToolResult] = []

                async def call() -> None:
                    results.append(
                        await agent.call_tool("run", {"argv": ["sh", "-c", "echo over http"]})
                    )

                tg.start_soon(call)
                q = await _question(http)
                assert await _reply(http, q, APPROVE, "erin") == 200
            ran = answer(results[0])
            assert ran["exitCode"] == 0 and "erin" in ran["approval"]
    assert not marker.exists()


async def test_plan_run_session_cancel_and_delete_by_name(tmp_path: Path) -> None:
    """The other changing tools, allow-listed: a plan runs, a running session is cancelled,
    objects named by kind and name are deleted; each records who asked."""
    store = tmp_path / "s.db"
    plan = write_plan(
        tmp_path,
        {
            "name": "ship",
            "nodes": [
                {"id": "build", "run": "echo built"},
                {"id": "test", "run": "echo tested", "deps": ["build"]},
            ],
        },
    )
    async with FakeApi() as api:
        api.add(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "old", "namespace": "default"},
            }
        )
        env = {"KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", api))}
        settings = _settings(
            tmp_path,
            allowWrite=True,
            allow=[
                {"tool": "plan_run", "path": str(plan)},
                {"tool": "run", "argv": ["sleep"]},
                {"tool": "session_cancel"},
                {"tool": "k8s_delete", "context": "fake"},
            ],
        )
        async with stdio_agent(store, env, "--settings", settings) as agent:
            ran = answer(await agent.call_tool("plan_run", {"path": str(plan), "waitSeconds": 30}))
            assert (ran["state"], ran["approval"]) == ("done", "allow-list")
            got = answer(await agent.call_tool("get_plan", {"sessionId": ran["sessionId"]}))
            assert got["states"] == {"done": 2}
            assert got["session"]["meta"]["requester"] == "agent:test-agent"

            sleeping = answer(
                await agent.call_tool("run", {"argv": ["sleep", "60"], "waitSeconds": 0})
            )
            assert sleeping["state"] == "running"
            cancelled = answer(
                await agent.call_tool("session_cancel", {"sessionId": sleeping["sessionId"]})
            )
            assert cancelled["state"] == "cancelled"
            again = await agent.call_tool("session_cancel", {"sessionId": sleeping["sessionId"]})
            assert "is not running in this server" in error_text(again)

            gone = answer(
                await agent.call_tool(
                    "k8s_delete",
                    {
                        "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "old"}],
                        "context": "fake",
                    },
                )
            )
            assert [(r["kind"], r["action"]) for r in gone["resources"]] == [
                ("ConfigMap", "deleted")
            ]
            wrong = await agent.call_tool(
                "k8s_delete", {"objects": [{"kind": "ConfigMap", "name": "x"}]}
            )
            assert "objects[0] needs apiVersion" in error_text(wrong)
        assert api.get("v1", "ConfigMap", "old", "default") is None


def test_settings_that_cannot_be_read_stop_the_server_bad_entries_are_named(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    missing = ktl_lsp("--store", store, "mcp", "--settings", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json" in missing.stderr
    (tmp_path / "list.yaml").write_text("- not an object\n")
    listed = ktl_lsp("--store", store, "mcp", "--settings", str(tmp_path / "list.yaml"))
    assert listed.returncode == 2 and "expected an object of settings" in listed.stderr
    bad = _settings(tmp_path, allowWrite=True, allow=[{"tool": "rm", "argv": ["-rf"]}])
    served = ktl_lsp("--store", store, "mcp", "--settings", bad, stdin=subprocess.DEVNULL)
    assert "agents.allow[0]': tool should be one of run" in served.stderr, served.stderr
