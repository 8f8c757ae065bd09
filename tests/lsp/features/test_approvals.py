"""Protected and read-only contexts end to end: a real ktl-lsp, its kubernetes client and the
loopback API server, with the test as the person answering ``window/showMessageRequest``."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from tests.conftest import Ktl, StartKtl
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.lsp.features.helpers import output_text, running_session
from tests.lsp.features.test_k8s import APP, open_doc

GOOD = APP.replace("IMAGE", "nginx:1.27")


async def guarded(start_ktl: StartKtl, api: FakeApi, tmp_path: Path, **k8s: Any) -> Ktl:
    config = write_kubeconfig(tmp_path / "kubeconfig", api)
    return await start_ktl(env={"KUBECONFIG": str(config)}, options={"k8s": k8s})


class Person:
    """Answers the editor's questions with the given choices, in turn, noting what was asked
    and whether the cluster had been written to when it was."""

    def __init__(self, ktl: Ktl, api: FakeApi, *choices: str | None) -> None:
        self.asked: list[str] = []
        self.received_at: list[float] = []
        self.writes_when_asked: list[list[str]] = []
        self.choices = list(choices)
        self.hold = asyncio.Event()

        @ktl.client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
        async def answer(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
            self.asked.append(params.message)
            self.received_at.append(time.time())
            self.writes_when_asked.append(list(api.writes))
            if not self.choices:
                await self.hold.wait()  # a person who never answers
                return None
            choice = self.choices.pop(0)
            titles = [a.title for a in params.actions or []]
            assert choice is None or choice in titles, (choice, titles)
            return None if choice is None else lsp.MessageActionItem(title=choice)


@pytest.fixture
def silent(start_ktl: StartKtl) -> Iterator[list[Person]]:
    """People who never answer; their dialogs close before the server is shut down."""
    people: list[Person] = []
    yield people
    for p in people:
        p.hold.set()


async def test_read_only_context_refuses_changes_and_says_why(
    start_ktl: StartKtl, api: FakeApi, tmp_path: Path
) -> None:
    ktl = await guarded(start_ktl, api, tmp_path, readOnlyContexts=["fa*"], protectedContexts=["*"])
    uri = open_doc(ktl, tmp_path / "app.yaml", GOOD)
    api.add_pod("web-1", labels={"app": "web"})
    for command, args in [
        ("ktl.apply", {"uri": uri}),
        ("ktl.delete", {"uri": uri}),
        ("ktl.exec", {"pod": "web-1", "command": ["true"]}),
        ("ktl.portForward", {"pod": "web-1", "ports": ["8080"]}),
    ]:
        with pytest.raises(
            JsonRpcInvalidParams, match=r"context fake is read-only \(k8s.readOnlyContexts: fa\*\)"
        ):
            await ktl.cmd(command, args)
    # reading is allowed: a diff (a server-side dry run) and a dry-run apply
    diff = await ktl.cmd("ktl.diff", {"uri": uri, "documents": [0]})
    assert diff["state"] == "done" and diff["changed"] == 1
    dry = await ktl.cmd("ktl.apply", {"uri": uri, "documents": [0], "dryRun": True})
    assert dry["state"] == "done"
    assert api.writes == []


async def test_protected_context_shows_the_diff_then_applies_once_approved(
    start_ktl: StartKtl, api: FakeApi, tmp_path: Path
) -> None:
    ktl = await guarded(start_ktl, api, tmp_path, protectedContexts=["prod-*", "fake"])
    person = Person(ktl, api, "Show diff", "Apply")
    api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    uri = open_doc(ktl, tmp_path / "app.yaml", GOOD)
    result = await ktl.cmd("ktl.apply", {"uri": uri, "documents": [1], "namespace": "shop"})
    assert result["state"] == "done"
    assert [r["action"] for r in result["resources"]] == ["created"]
    assert person.asked == [
        "ktl: Apply 1 object to fake / shop?",
        "ktl: Apply 1 object to fake / shop? (1 of 1 would change: Deployment/web)",
    ]
    assert person.writes_when_asked == [[], []]  # nothing reached the cluster before the yes
    assert api.writes == ["PATCH /apis/apps/v1/namespaces/shop/deployments/web"]
    text = await output_text(ktl, result["sessionId"], plain=True)
    assert "waiting for approval: Apply 1 object to fake / shop?" in text
    assert text.index("diff (server-side dry run)") < text.index("approved by")
    session = await ktl.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    approvals = session["meta"]["approvals"]
    assert [(a["n"], a["state"], a["answer"]) for a in approvals] == [
        (1, "answered", "Show diff"),
        (2, "answered", "Apply"),
    ]
    assert all(a["who"].endswith("(editor)") for a in approvals)
    # the question reaches the editor at once (the figure is 100 ms; slack for a busy machine)
    delay = person.received_at[0] - approvals[0]["askedAt"]
    print(f"question reached the editor {delay * 1000:.1f} ms after it was asked")
    assert delay < 0.5
    assert "waiting" not in session["meta"]


@pytest.mark.parametrize("choice", ["Cancel", None])
async def test_protected_context_without_a_yes_sends_nothing(
    start_ktl: StartKtl, api: FakeApi, tmp_path: Path, choice: str | None
) -> None:
    ktl = await guarded(start_ktl, api, tmp_path, protectedContexts=["fake"])
    Person(ktl, api, choice)
    uri = open_doc(ktl, tmp_path / "app.yaml", GOOD)
    result = await ktl.cmd("ktl.delete", {"uri": uri})
    assert result["state"] == "cancelled"
    said = "dismissed by .* \\(editor\\)" if choice is None else ".* \\(editor\\) chose Cancel"
    assert re.fullmatch(f"not approved: {said}", result["error"]), result["error"]
    assert api.writes == [] and api.requests["DELETE"] == 0
    session = await ktl.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    [record] = session["meta"]["approvals"]
    assert record["question"] == "Delete 2 objects from fake / shop?"
    assert record["choices"] == ["Delete", "Cancel"]
    assert record["answer"] == choice


async def test_approved_from_another_client_while_the_editor_waits(
    start_ktl: StartKtl, api: FakeApi, tmp_path: Path, silent: list[Person]
) -> None:
    ktl = await guarded(start_ktl, api, tmp_path, protectedContexts=["fake"])
    person = Person(ktl, api)
    silent.append(person)  # never answers the dialog
    uri = open_doc(ktl, tmp_path / "app.yaml", GOOD)
    task = ktl.start("ktl.apply", {"uri": uri, "documents": [0]})
    sid = await running_session(ktl)
    for _ in range(100):
        pending = (await ktl.cmd("ktl.approvals.list", {}))["pending"]
        if pending:
            break
        await asyncio.sleep(0.05)
    [q] = pending
    assert (q["sessionId"], q["n"], q["question"]) == (sid, 1, "Apply 1 object to fake / default?")
    assert q["choices"] == ["Show diff", "Apply", "Cancel"]
    assert person.asked == ["ktl: Apply 1 object to fake / default?"]
    with pytest.raises(JsonRpcInvalidParams, match="'Yes' is not a choice of question 1"):
        await ktl.cmd("ktl.approvals.answer", {"sessionId": sid, "n": 1, "choice": "Yes"})
    assert api.writes == []
    answered = await ktl.cmd(
        "ktl.approvals.answer", {"sessionId": sid[:8], "n": 1, "choice": "Apply"}
    )
    assert answered["state"] == "answered" and answered["answer"] == "Apply"
    result = await asyncio.wait_for(task, 10)
    assert result["state"] == "done" and api.writes == ["PATCH /api/v1/namespaces/shop"]
    with pytest.raises(
        JsonRpcInvalidParams, match=r"question 1 of session \w+ is already answered"
    ):
        await ktl.cmd("ktl.approvals.answer", {"sessionId": sid, "n": 1, "choice": "Cancel"})


async def test_cancel_while_waiting_withdraws_the_question(
    start_ktl: StartKtl, api: FakeApi, tmp_path: Path, silent: list[Person]
) -> None:
    ktl = await guarded(start_ktl, api, tmp_path, protectedContexts=["fake"])
    person = Person(ktl, api)
    silent.append(person)
    uri = open_doc(ktl, tmp_path / "app.yaml", GOOD)
    task = ktl.start("ktl.apply", {"uri": uri})
    sid = await running_session(ktl)
    while not person.asked:
        await asyncio.sleep(0.02)
    await ktl.cmd("ktl.session.cancel", {"sessionId": sid})
    result = await asyncio.wait_for(task, 10)
    assert result["state"] == "cancelled" and api.writes == []
    session = await ktl.cmd("ktl.session.get", {"sessionId": sid})
    [record] = session["meta"]["approvals"]
    assert (record["state"], record["answer"], record["who"]) == ("withdrawn", None, "cancelled")
    assert (await ktl.cmd("ktl.approvals.list", {}))["pending"] == []
