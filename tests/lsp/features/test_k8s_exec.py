"""``ktl.exec`` end to end: a real ktl-lsp process, the kubernetes client's websocket inside it,
and the loopback API server's exec subresource, whose "container" is a real local terminal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import Ktl, StartKtl
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.k8s_api.tls import make_certificates
from tests.lsp.features.helpers import frames, output_text, running_session, wait_for_text


def pod(api: FakeApi, name: str = "web-1", **labels: str) -> None:
    api.add_pod(name, labels=labels or {"app": "web"})


async def test_command_exit_code_from_the_status_channel(k8s: Ktl, api: FakeApi) -> None:
    pod(api)
    result = await k8s.cmd(
        "ktl.exec", {"pod": "web-1", "command": ["sh", "-c", "echo in-$HOSTNAME; exit 3"]}
    )
    assert (result["state"], result["exitCode"]) == ("error", 3)
    text = await output_text(k8s, result["sessionId"], plain=True)
    assert "exec into pod web-1, container app" in text and "in-web-1" in text
    listed = await k8s.cmd("ktl.sessions.list", {"kind": "exec", "limit": 1})
    meta = listed["sessions"][0]["meta"]
    assert (meta["pod"], meta["container"], meta["kubeContext"]) == ("web-1", "app", "fake")


async def test_interactive_shell_of_a_workload_like_a_local_terminal(
    k8s: Ktl, api: FakeApi
) -> None:
    pod(api, "web-1")
    task = k8s.start("ktl.exec", {"workload": "deployment/web", "cols": 80, "rows": 24})
    # No Deployment named web exists yet: the error says so instead of hanging.
    result = await asyncio.wait_for(task, 10)
    assert result["state"] == "error" and "not found" in result["error"]

    api.add_pod("shell-1", labels={"run": "shell"})
    task = k8s.start("ktl.exec", {"pod": "shell-1", "cols": 80, "rows": 24})
    sid = await running_session(k8s)
    await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": "echo sum-$((6*7))\r"})
    await wait_for_text(k8s, sid, "sum-42")
    await k8s.cmd("ktl.session.resize", {"sessionId": sid, "cols": 100, "rows": 40})
    await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": "stty size\r"})
    await wait_for_text(k8s, sid, "40 100")
    await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": "exit 5\r"})
    result = await asyncio.wait_for(task, 10)
    assert (result["state"], result["exitCode"]) == ("error", 5)
    recorded = await frames(k8s, sid)
    inputs = "".join(f["data"] for f in recorded if f["type"] == "input")
    assert "echo sum-$((6*7))" in inputs and "stty size" in inputs
    listed = await k8s.cmd("ktl.sessions.list", {"kind": "exec", "limit": 1})
    assert listed["sessions"][0]["meta"]["execCommand"] == ["bash"]


async def test_password_typed_into_a_remote_prompt_is_never_recorded(
    k8s: Ktl, api: FakeApi
) -> None:
    pod(api)
    script = "stty -echo; printf 'Password: '; read pw; stty echo; echo; echo \"got ${#pw}\""
    task = k8s.start("ktl.exec", {"pod": "web-1", "command": ["sh", "-c", script]})
    sid = await running_session(k8s)
    await wait_for_text(k8s, sid, "Password: ")
    for ch in "hunter2-secret":  # typed key by key, as an editor terminal sends it
        await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": ch})
    await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": "\r"})
    result = await asyncio.wait_for(task, 10)
    assert result["state"] == "done"
    assert "got 14" in await output_text(k8s, sid)
    recorded = await frames(k8s, sid)
    assert not any("hunter" in f["data"] or "secret" in f["data"] for f in recorded)
    hidden = [
        json.loads(f["data"])
        for f in recorded
        if f["type"] == "event" and '"input":"hidden"' in f["data"]
    ]
    assert sum(h["bytes"] for h in hidden) == 14


async def test_shell_falls_back_to_sh_when_the_image_has_no_bash(k8s: Ktl, api: FakeApi) -> None:
    pod(api)
    api.missing_programs[("default", "web-1")] = {"bash"}
    task = k8s.start("ktl.exec", {"pod": "web-1"})
    sid = await running_session(k8s)
    await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": "echo shell-$0\r"})
    await wait_for_text(k8s, sid, "shell-sh")
    await k8s.cmd("ktl.session.signal", {"sessionId": sid, "signal": "EOF"})
    result = await asyncio.wait_for(task, 10)
    assert (result["state"], result["exitCode"]) == ("done", 0)
    listed = await k8s.cmd("ktl.sessions.list", {"kind": "exec", "limit": 1})
    assert listed["sessions"][0]["meta"]["execCommand"] == ["sh"]


async def test_ctrl_c_and_cancel(k8s: Ktl, api: FakeApi) -> None:
    pod(api)
    task = k8s.start("ktl.exec", {"pod": "web-1", "command": ["sleep", "30"]})
    sid = await running_session(k8s)
    await asyncio.sleep(0.3)
    await k8s.cmd("ktl.session.signal", {"sessionId": sid, "signal": "INT"})
    result = await asyncio.wait_for(task, 10)
    assert result["exitCode"] == 130 and result["state"] == "cancelled"

    task = k8s.start("ktl.exec", {"pod": "web-1"})
    sid = await running_session(k8s)
    await k8s.cmd("ktl.session.input", {"sessionId": sid, "data": "echo ready\r"})
    await wait_for_text(k8s, sid, "ready")
    # A shell ignores Ctrl-C: cancel goes on to hang up the stream.
    await k8s.cmd("ktl.session.cancel", {"sessionId": sid})
    result = await asyncio.wait_for(task, 15)
    assert result["state"] == "cancelled"


async def test_missing_program_and_pod_are_clear_errors(k8s: Ktl, api: FakeApi) -> None:
    pod(api)
    result = await k8s.cmd("ktl.exec", {"pod": "web-1", "command": ["no-such-tool", "x"]})
    assert result["state"] == "error" and result["exitCode"] == 127
    assert "no-such-tool" in result["error"]
    result = await k8s.cmd("ktl.exec", {"pod": "nope", "command": ["true"]})
    assert result["state"] == "error" and 'pod "nope" not found' in result["error"]
    pod(api, "stopping")
    api.pod_grace = 30.0  # still Terminating (and Running) when the exec is asked for
    api.delete("v1", "Pod", "stopping", "default")
    result = await k8s.cmd("ktl.exec", {"pod": "stopping", "command": ["true"]})
    assert result["state"] == "error"
    assert "pod stopping is being deleted (phase Running)" in result["error"]
    result = await k8s.cmd("ktl.exec", {"pod": "web-1", "container": "db", "command": ["true"]})
    assert result["state"] == "error" and "container db is not in pod web-1" in result["error"]
    api.forbid("create", "pods/exec")
    result = await k8s.cmd("ktl.exec", {"pod": "web-1", "command": ["true"]})
    assert result["state"] == "error"
    assert "forbidden" in result["error"] and "exec stream of pod web-1" in result["error"]


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"pod": "a", "workload": "deployment/b"},
        {"workload": "web"},
        {"pod": "a", "command": []},
    ],
)
async def test_arguments_are_checked(k8s: Ktl, args: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(JsonRpcException):
        await k8s.cmd("ktl.exec", args)


async def test_cancel_racing_the_connect_still_hangs_up(k8s: Ktl, api: FakeApi) -> None:
    pod(api)
    for _ in range(3):
        started = await k8s.cmd(
            "ktl.exec", {"pod": "web-1", "command": ["sleep", "30"], "detach": True}
        )
        cancelled = await k8s.cmd("ktl.session.cancel", {"sessionId": started["sessionId"]})
        assert cancelled["state"] == "cancelled"
    for _ in range(200):  # the container side sees the stream close and ends the process
        if not any(api.streams.execs.values()):
            break
        await asyncio.sleep(0.05)
    assert not any(api.streams.execs.values())


async def test_without_a_terminal_stdout_and_stderr_both_arrive(k8s: Ktl, api: FakeApi) -> None:
    pod(api)
    script = "echo to-out; echo to-err >&2; test -t 1 && echo tty || echo no-tty; exit 4"
    result = await k8s.cmd(
        "ktl.exec", {"pod": "web-1", "command": ["sh", "-c", script], "tty": False}
    )
    assert (result["state"], result["exitCode"]) == ("error", 4)
    text = await output_text(k8s, result["sessionId"], plain=True)
    assert "to-out" in text and "to-err" in text and "no-tty" in text


async def test_exec_and_port_forward_over_https_with_a_client_certificate(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    """The websockets go to ``wss://`` with the cluster's CA and the client certificate of
    the kubeconfig, as the API requests do."""
    async with FakeApi(make_certificates(tmp_path / "pki")) as api:
        pod(api, "web-1")
        api.serve("web-1", 8080)
        config = write_kubeconfig(tmp_path / "kubeconfig", api)
        ktl = await start_ktl(env={"KUBECONFIG": str(config)})
        result = await ktl.cmd("ktl.exec", {"pod": "web-1", "command": ["sh", "-c", "echo tls"]})
        assert (result["state"], result["exitCode"]) == ("done", 0), result
        assert "tls" in await output_text(ktl, result["sessionId"], plain=True)
        forward = await ktl.cmd("ktl.portForward", {"pod": "web-1", "ports": [":8080"]})
        [port] = forward["forwards"]
        async with httpx.AsyncClient(timeout=20) as http:
            answer = await http.get(port["url"] + "/")
        assert answer.status_code == 200 and answer.headers["x-pod"] == "web-1"
        await ktl.cmd("ktl.session.cancel", {"sessionId": forward["sessionId"]})
        assert api.requests["client-certificate"] >= 3
