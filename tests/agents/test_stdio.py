"""``ktl-lsp mcp`` on stdio, through the ``mcp`` SDK's client, over sessions ``ktl-lsp run``
recorded."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import anyio

from tests.agents.conftest import answer, error_text, run_session, silent_cluster, stdio_agent
from tests.cli.conftest import ktl_lsp, record_in_background

TOKEN = "ghp_" + "a1b2c3d4e5" * 3 + "a1b2c3"
READ_TOOLS = {
    "list_sessions",
    "get_session",
    "read_output",
    "search_output",
    "compare_sessions",
    "get_plan",
    "check",
    "k8s_list",
    "k8s_describe",
    "k8s_logs",
    "k8s_events",
    "k8s_diff",
}


#: Coloured numbered lines, a secret, a progress bar redrawn with \\r, then a status line and
#: an exit code from files, so two runs are the same command with different outcomes.
SCRIPT = [
    "sh",
    "-c",
    "for i in $(seq 1 40); do printf '\\033[32mstep %d\\033[0m ok\\n' $i; done; "
    f"echo 'token {TOKEN}'; printf 'pull 10%%\\rpull 50%%\\rpull 100%%\\n'; "
    'echo "status: $(cat status)"; exit $(cat code)',
]


def _run(store: Path, status: str, code: int) -> str:
    (store.parent / "status").write_text(status)
    (store.parent / "code").write_text(str(code))
    return run_session(store, *SCRIPT, cwd=store.parent)


async def test_read_tools_answer_about_recorded_sessions(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    good = _run(store, "healthy", 0)
    bad = _run(store, "crashloop", 3)
    async with stdio_agent(store) as agent:
        tools = {t.name: t for t in (await agent.list_tools()).tools}
        assert set(tools) == READ_TOOLS  # nothing that changes things without approvals
        assert all(t.annotations and t.annotations.read_only_hint for t in tools.values())

        listed = answer(await agent.call_tool("list_sessions", {}))["sessions"]
        assert [s["sessionId"] for s in listed] == [bad, good]
        failed = answer(await agent.call_tool("list_sessions", {"state": "error"}))["sessions"]
        assert [s["sessionId"] for s in failed] == [bad]
        one = answer(await agent.call_tool("get_session", {"sessionId": bad[:8]}))
        assert one["sessionId"] == bad and one["exitCode"] == 3
        assert TOKEN not in json.dumps(one)  # the command line holds none, but meta is redacted

        tail = answer(await agent.call_tool("read_output", {"sessionId": bad, "tailLines": 3}))
        assert tail["text"] == ("token [REDACTED github-token]\npull 100%\nstatus: crashloop\n"), (
            tail
        )
        assert tail["redacted"] == ["github-token"] and not tail["truncated"]

        # Paged forward in small pages, the pages put together are the whole plain output.
        pages, seq, offset = [], 1, 0
        while True:
            page = answer(
                await agent.call_tool(
                    "read_output",
                    {"sessionId": good, "fromSeq": seq, "offset": offset, "maxBytes": 64},
                )
            )
            assert page["bytes"] <= 64
            pages.append(page["text"])
            if "nextSeq" not in page:
                break
            seq, offset = page["nextSeq"], page.get("nextOffset", 0)
        whole = answer(await agent.call_tool("read_output", {"sessionId": good}))["text"]
        assert "\x1b" not in whole and "step 40 ok\n" in whole and TOKEN not in whole
        assert len(pages) > 1 and "".join(pages) == whole

        found = answer(await agent.call_tool("search_output", {"query": "STATUS: crash*"}))
        assert [(m["sessionId"], m["text"]) for m in found["matches"]] == [
            (bad, "status: crashloop")
        ]
        tokens = answer(await agent.call_tool("search_output", {"query": "token"}))
        assert [m["text"] for m in tokens["matches"]] == ["token [REDACTED github-token]"] * 2
        assert [m["sessionId"] for m in tokens["matches"]] == [bad, good]  # newest first
        for secret in (TOKEN, TOKEN[4:]):  # nothing is found through what redaction hides
            assert not answer(await agent.call_tool("search_output", {"query": secret}))["matches"]
        step = answer(
            await agent.call_tool("search_output", {"query": "ok step 40", "sessionId": good})
        )
        assert [(m["sessionId"], m["text"]) for m in step["matches"]] == [(good, "step 40 ok")]

        diff = answer(await agent.call_tool("compare_sessions", {"a": good, "b": bad}))
        assert diff["exitCodes"] == [0, 3]
        assert "-status: healthy" in diff["outputDiff"]
        assert "+status: crashloop" in diff["outputDiff"]

        bad_yaml = tmp_path / "web.yaml"
        bad_yaml.write_text(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
            "  replicas: many\n"
        )
        checked = answer(await agent.call_tool("check", {"paths": [str(tmp_path)]}))
        expected = json.loads(ktl_lsp("check", "--format", "json", str(bad_yaml)).stdout)
        assert [(f["code"], f["range"]) for f in checked["findings"]] == [
            (f["code"], f["range"]) for f in expected
        ]
        assert checked["errors"] >= 1

        prompts = {p.name for p in (await agent.list_prompts()).prompts}
        assert prompts == {"why-did-this-session-fail", "compare-with-last-good-run"}
        why = await agent.get_prompt("why-did-this-session-fail", {"sessionId": bad})
        text = why.messages[0].content.text  # type: ignore[union-attr]
        assert "status: crashloop" in text and TOKEN not in text
        against = await agent.get_prompt("compare-with-last-good-run", {"sessionId": bad})
        assert "+status: crashloop" in against.messages[0].content.text  # type: ignore[union-attr]

        listed_resources = [str(r.uri) for r in (await agent.list_resources()).resources]
        assert listed_resources == [f"ktl://sessions/{bad}", f"ktl://sessions/{good}"]
        res = await agent.read_resource(f"ktl://sessions/{bad}/output")
        assert "status: crashloop" in res.contents[0].text  # type: ignore[union-attr]

        # The agent's own calls, newer than the work, never push the work out of a listing.
        newest = answer(await agent.call_tool("list_sessions", {"limit": 2}))["sessions"]
        assert [s["sessionId"] for s in newest] == [bad, good]

        # What the agent did is recorded, one session per call, with who asked.
        calls = answer(await agent.call_tool("list_sessions", {"kind": "agent", "limit": 100}))
    recorded = calls["sessions"]
    assert len(recorded) >= 15
    assert {s["meta"]["requester"] for s in recorded} == {"agent:test-agent"}
    assert not any("principal" in s["meta"] for s in recorded)  # no gateway token on stdio
    reads = [s for s in recorded if s["meta"]["target"] == "read_output"]
    assert reads and all(s["meta"]["arguments"]["sessionId"] in (good, bad) for s in reads)
    assert all(s["state"] == "done" for s in recorded if s["meta"]["target"] != "list_sessions")


async def test_bad_input_gets_a_clear_error_and_is_recorded(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    sid = run_session(store, "sh", "-c", "echo hello")
    async with stdio_agent(store) as agent:
        unknown = await agent.call_tool("read_output", {"sessionId": "zzzzzzzzzzzzzzzz"})
        assert "unknown session zzzzzzzzzzzzzzzz" in error_text(unknown)
        secret = await agent.call_tool("get_session", {"sessionId": TOKEN})
        assert TOKEN not in error_text(secret)
        for args in (
            {"sessionId": sid, "maxBytes": "lots"},
            {"sessionId": sid, "maxBytes": -1},
            {"sessionId": sid, "maxBytes": 10**12},
            {"sessionId": sid, "tailLines": -5},
            {"sessionId": 42},
        ):
            assert error_text(await agent.call_tool("read_output", args))
        both = await agent.call_tool(
            "read_output", {"sessionId": sid, "fromSeq": 1, "tailLines": 1}
        )
        assert "not both" in error_text(both)
        # A regex that would backtrack for ever is only words to the index: answered at once.
        started = time.monotonic()
        evil = answer(await agent.call_tool("search_output", {"query": "(a+)+$" + "a" * 5000}))
        assert evil["matches"] == [] and time.monotonic() - started < 5
        wordless = await agent.call_tool("search_output", {"query": "+++ (((  $"})
        assert "has no words to search for" in error_text(wordless)
        plan = await agent.call_tool("get_plan", {"sessionId": sid})
        assert "not a plan run" in error_text(plan)
        missing = await agent.call_tool("check", {"paths": [str(tmp_path / "nope")]})
        assert "no such file" in error_text(missing)
        calls = answer(await agent.call_tool("list_sessions", {"kind": "agent", "limit": 100}))
    by_target = {}
    for s in calls["sessions"]:
        by_target.setdefault(s["meta"]["target"], []).append(s)
    assert TOKEN not in json.dumps(calls)
    assert any(
        s["meta"]["arguments"]["sessionId"] == "[REDACTED github-token]"
        for s in by_target["get_session"]
    )
    assert all(s["state"] == "error" for s in by_target["get_plan"] + by_target["check"])


async def test_a_client_that_leaves_mid_call_ends_its_call_as_cancelled(tmp_path: Path) -> None:
    """A cluster that accepts and never answers holds the call; the agent goes away."""
    store = tmp_path / "s.db"

    def running_calls() -> list[object]:
        listed = ktl_lsp(
            "--store", str(store), "sessions", "list", "--json", "--kind", "agent",
            "--state", "running",
        )  # fmt: skip
        return list(json.loads(listed.stdout)["sessions"])

    async with silent_cluster(tmp_path) as kubeconfig:
        with anyio.CancelScope() as scope:
            async with (
                stdio_agent(store, {"KUBECONFIG": str(kubeconfig)}) as agent,
                anyio.create_task_group() as calls,
            ):
                calls.start_soon(agent.call_tool, "k8s_list", {})
                # Leave once the call is under way (its session is running), not after a
                # fixed time that a loaded machine may not reach the call in.
                with anyio.fail_after(60):
                    while not await anyio.to_thread.run_sync(running_calls):
                        await anyio.sleep(0.1)
                scope.cancel()
        listed = ktl_lsp("--store", str(store), "sessions", "list", "--json", "--kind", "agent")
    calls = json.loads(listed.stdout)["sessions"]
    assert [(s["meta"]["target"], s["state"]) for s in calls] == [("k8s_list", "cancelled")]


async def test_a_session_running_in_another_process_is_read_as_it_runs(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    runner, _ = await record_in_background(store, "echo started; sleep 30")
    try:
        async with stdio_agent(store) as agent:
            for _ in range(100):
                running = answer(await agent.call_tool("list_sessions", {"state": "running"}))
                if running["sessions"]:
                    out = answer(
                        await agent.call_tool(
                            "read_output",
                            {"sessionId": running["sessions"][0]["sessionId"], "tailLines": 5},
                        )
                    )
                    if out["text"]:
                        break
                await asyncio.sleep(0.1)
            assert out["state"] == "running" and out["text"] == "started\n"
    finally:
        runner.terminate()
        await runner.wait()
