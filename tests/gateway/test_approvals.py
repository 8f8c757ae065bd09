"""Approvals over HTTP: a session waiting on a question, listed and answered through a real
gateway with its token; the first answer wins, the session goes on with it."""

from __future__ import annotations

import asyncio

from ktl_lsp.sessions.approvals import Question
from ktl_lsp.sessions.manager import LiveSession, RunSpec, TaskOutcome
from ktl_lsp.sessions.model import State
from tests.gateway.conftest import Served, served

__all__ = ["served"]


def waiting_session(served: Served) -> tuple[LiveSession, asyncio.Future[Question]]:
    """A session that asks one question and ends with what it was told."""
    got: asyncio.Future[Question] = asyncio.get_running_loop().create_future()

    async def work(live: LiveSession) -> TaskOutcome:
        q = await served.manager.approvals.ask(
            live.id, "Apply 3 objects to prod-eu / payments?", ["Apply", "Cancel"]
        )
        got.set_result(q)
        ok = q.answer == "Apply"
        return TaskOutcome(State.DONE if ok else State.CANCELLED, 0 if ok else 130)

    spec = RunSpec(argv=[], command="apply", kind="k8s", title="apply")
    return served.manager.start_task(spec, work), got


async def wait_pending(served: Served) -> list[dict[str, object]]:
    for _ in range(200):
        r = await served.http.get("/api/v1/approvals")
        assert r.status_code == 200
        if r.json()["pending"]:
            return list(r.json()["pending"])
        await asyncio.sleep(0.01)
    raise AssertionError("no question came")


async def test_listed_and_answered_with_the_token(served: Served) -> None:
    live, got = waiting_session(served)
    [q] = await wait_pending(served)
    assert (q["sessionId"], q["n"], q["question"], q["choices"], q["state"]) == (
        live.id,
        1,
        "Apply 3 objects to prod-eu / payments?",
        ["Apply", "Cancel"],
        "pending",
    )
    url = f"/api/v1/sessions/{live.id}/approvals"
    assert (await served.anon.get(url)).status_code == 401
    assert (await served.anon.post(f"{url}/1", json={"choice": "Apply"})).status_code == 401
    listed = (await served.http.get(url)).json()
    assert [p["n"] for p in listed["pending"]] == [1]
    evil = {"Origin": "http://evil.example"}
    cross = await served.http.post(f"{url}/1", json={"choice": "Apply"}, headers=evil)
    assert cross.status_code == 403  # another site's page cannot approve
    bad = await served.http.post(f"{url}/1", json={"choice": "Yes"})
    assert bad.status_code == 400 and "'Yes' is not a choice of question 1" in bad.text
    assert (await served.http.post(f"{url}/1", content=b"nope")).status_code == 400
    assert (await served.http.post(f"{url}/2", json={"choice": "Apply"})).status_code == 409
    prefix = f"/api/v1/sessions/{live.id[:8]}/approvals/1"  # a unique prefix is enough
    r = await served.http.post(prefix, json={"choice": "Apply", "who": "alice"})
    assert r.status_code == 200, r.text
    assert r.json()["answer"] == "Apply" and r.json()["who"].startswith("alice (gateway, 127.0.0.1")
    assert (await got).answer == "Apply"
    assert (await live.done).state is State.DONE
    again = await served.http.post(f"{url}/1", json={"choice": "Cancel"})
    assert again.status_code == 409
    assert (
        "question 1 of session" in again.text and "already answered (Apply by alice" in again.text
    )
    recorded = (await served.http.get(url)).json()
    assert recorded["pending"] == []
    [record] = recorded["approvals"]
    assert (record["state"], record["answer"]) == ("answered", "Apply")


async def test_a_null_choice_declines_and_a_cancel_withdraws(served: Served) -> None:
    live, got = waiting_session(served)
    await wait_pending(served)
    r = await served.http.post(f"/api/v1/sessions/{live.id}/approvals/1", json={"choice": None})
    assert r.status_code == 200 and r.json()["answer"] is None
    assert (await live.done).state is State.CANCELLED

    live, got = waiting_session(served)
    await wait_pending(served)
    served.manager.cancel(live.id)
    assert (await live.done).state is State.CANCELLED
    assert not got.done()  # the work was cancelled with its question
    r = await served.http.post(f"/api/v1/sessions/{live.id}/approvals/1", json={"choice": "Apply"})
    assert r.status_code == 409 and "already withdrawn" in r.text
