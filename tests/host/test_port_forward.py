"""A port-forward that outlives the editor: the real language server with ``sessions.persist``
on hands ``ktl.portForward`` to the real ``ktl-lsp host``, which forwards to the loopback API
server's pod; the language server is killed, the local port still answers, and a new one lists,
attaches and cancels the forward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types as lsp

from ktl_lsp.host.protocol import HostPaths
from tests.conftest import Ktl
from tests.host.conftest import PERSIST, StartPersisting, host_pid
from tests.host.test_host import kill
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.lsp.features.helpers import output_text, server_pid, wait_for_text
from tests.lsp.features.test_port_forward import cancel_closes


async def forwarding_to_a_pod(
    persisting: StartPersisting,
    api: FakeApi,
    store: Path,
    options: dict[str, Any] = PERSIST,
) -> tuple[Ktl, dict[str, str]]:
    """A language server (and its environment) whose kubeconfig has pod web-1 serving 8080."""
    env = {"KUBECONFIG": str(write_kubeconfig(store.with_suffix(".kubeconfig"), api))}
    api.add_pod("web-1", labels={"app": "web"})
    api.serve("web-1", 8080)
    return await persisting(store, env, options), env


async def answered_by(url: str) -> str:
    async with httpx.AsyncClient(timeout=20) as http:
        answer = await http.get(url + "/")
        assert answer.status_code == 200
        return answer.headers["x-pod"]


async def test_a_port_forward_outlives_its_language_server(
    persisting: StartPersisting, api: FakeApi, tmp_path: Path
) -> None:
    store = tmp_path / "forward.db"
    first, env = await forwarding_to_a_pod(persisting, api, store)
    result = await first.cmd("ktl.portForward", {"pod": "web-1", "ports": [":8080"]})
    assert result["state"] == "running", result
    [forward] = result["forwards"]
    assert forward["remote"] == 8080 and forward["url"] == f"http://127.0.0.1:{forward['local']}"
    sid = result["sessionId"]
    listed = await first.cmd("ktl.sessions.list", {"kind": "port-forward", "state": "running"})
    assert [s["meta"]["forwards"] for s in listed["sessions"]] == [[forward]]
    assert await answered_by(forward["url"]) == "web-1"
    pid = host_pid(store)
    assert pid is not None and pid != server_pid(first)

    await kill(first)
    # No language server at all: the host still serves the port.
    assert await answered_by(forward["url"]) == "web-1"

    second = await persisting(store, env)
    listed = await second.cmd("ktl.sessions.list", {"kind": "port-forward", "state": "running"})
    assert [(s["sessionId"], s["meta"]["forwards"]) for s in listed["sessions"]] == [
        (sid, [forward])
    ]
    attached = await second.cmd("ktl.session.attach", {"sessionId": sid[:8], "detach": True})
    assert attached["sessionId"] == sid and attached["state"] == "running"
    assert await answered_by(forward["url"]) == "web-1"
    await wait_for_text(second, sid, f"Handling connection for {forward['local']}")
    text = await output_text(second, sid, plain=True)
    assert f"Forwarding from 127.0.0.1:{forward['local']} -> pod/web-1:8080" in text
    assert text.count("Handling connection for") == 3, "each connection logged, none lost"
    await cancel_closes(second, sid, forward["local"])


async def test_a_protected_context_asks_in_the_editor_before_the_host_forwards(
    persisting: StartPersisting, api: FakeApi, tmp_path: Path
) -> None:
    store = tmp_path / "protected.db"
    options = {**PERSIST, "k8s": {"protectedContexts": ["fake"]}}
    ktl, _ = await forwarding_to_a_pod(persisting, api, store, options)
    asked: list[tuple[str, bool]] = []
    choices = ["Forward ports", "Cancel"]

    @ktl.client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    def answer(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem:
        # Whether a session host listens yet: nothing is handed over before the answer.
        asked.append((params.message, HostPaths.of(store).socket.exists()))
        return lsp.MessageActionItem(title=choices.pop(0))

    question = "ktl: Forward ports :8080 to pod/web-1 on fake / default?"
    result = await ktl.cmd("ktl.portForward", {"pod": "web-1", "ports": [":8080"]})
    assert asked == [(question, False)]
    assert result["state"] == "running", result
    assert await answered_by(result["forwards"][0]["url"]) == "web-1"
    got = await ktl.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    [approval] = got["meta"]["approvals"]
    assert approval["state"] == "answered" and approval["answer"] == "Forward ports"
    assert approval["who"].endswith("(editor)")
    await wait_for_text(ktl, result["sessionId"], "approved by .+\\(editor\\)")

    refused = await ktl.cmd("ktl.portForward", {"pod": "web-1", "ports": [":8080"]})
    assert asked[1] == (question, True)
    assert refused["state"] == "cancelled" and "forwards" not in refused
    assert refused["error"].startswith("not approved: ") and "chose Cancel" in refused["error"]
    stored: Any = await ktl.cmd("ktl.session.get", {"sessionId": refused["sessionId"]})
    assert stored["meta"]["approvals"][0]["answer"] == "Cancel"
    await ktl.cmd("ktl.session.cancel", {"sessionId": result["sessionId"]})
