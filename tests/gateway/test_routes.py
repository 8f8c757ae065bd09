"""ktl-agent's routes and JSON shapes, and ours."""

from __future__ import annotations

import base64
import json

from tests.gateway.conftest import Served


async def test_empty_list_is_an_empty_array(served: Served) -> None:
    r = await served.http.get("/api/v1/mirror/sessions")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.json() == {"sessions": []}


async def test_list_filters_and_order(served: Served) -> None:
    a = await served.run("echo one", tags={"team": "web"})
    b = await served.run("echo two; exit 3", tags={"team": "db"})
    c = await served.run("echo three")
    ids = [
        s["session_id"]
        for s in (await served.http.get("/api/v1/mirror/sessions")).json()["sessions"]
    ]
    assert ids == [c.id, b.id, a.id]
    q = await served.http.get("/api/v1/mirror/sessions", params={"state": "error"})
    assert [s["session_id"] for s in q.json()["sessions"]] == [b.id]
    q = await served.http.get("/api/v1/mirror/sessions", params={"command": "TWO"})
    assert [s["session_id"] for s in q.json()["sessions"]] == [b.id]
    q = await served.http.get("/api/v1/mirror/sessions", params=[("tag", "team=web")])
    assert [s["session_id"] for s in q.json()["sessions"]] == [a.id]
    q = await served.http.get("/api/v1/mirror/sessions", params={"tag.team": ""})
    assert len(q.json()["sessions"]) == 2
    q = await served.http.get("/api/v1/mirror/sessions", params={"limit": "1"})
    assert len(q.json()["sessions"]) == 1
    q = await served.http.get("/api/v1/mirror/sessions", params={"limit": "0"})
    assert len(q.json()["sessions"]) == 3  # ktl-agent's "no limit given"
    q = await served.http.get("/api/v1/mirror/sessions", params={"limit": "nonsense"})
    assert q.status_code == 400 and q.text.startswith("limit: ")


async def test_get_session_shape(served: Served) -> None:
    s = await served.run("echo hi; exit 2")
    r = await served.http.get(f"/api/v1/mirror/sessions/{s.id}")
    body = r.json()
    assert body["session_id"] == s.id
    assert isinstance(body["last_sequence"], str) and int(body["last_sequence"]) == s.last_seq
    assert (
        body["status"]["state"] == "MIRROR_SESSION_STATE_ERROR" and body["status"]["exit_code"] == 2
    )
    assert body["meta"]["command"] == "echo hi; exit 2"
    missing = await served.http.get("/api/v1/mirror/sessions/nope")
    assert missing.status_code == 404 and missing.text == "session not found\n"
    other = await served.http.get(f"/api/v1/mirror/sessions/{s.id}/whatever")
    assert other.status_code == 404 and other.text == "404 page not found\n"


async def test_jsonl_export(served: Served) -> None:
    s = await served.run("printf 'a\\nb\\n'")
    r = await served.http.get(f"/api/v1/mirror/sessions/{s.id}/export")
    assert r.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [int(x["sequence"]) for x in lines] == list(range(1, s.last_seq + 1))
    out = b"".join(base64.b64decode(x["raw"]) for x in lines if "raw" in x and "ktl_event" not in x)
    assert out == b"a\r\nb\r\n"
    later = await served.http.get(
        f"/api/v1/mirror/sessions/{s.id}/export", params={"from_sequence": "3"}
    )
    assert int(json.loads(later.text.splitlines()[0])["sequence"]) == 3


async def test_our_routes(served: Served) -> None:
    a = await served.run("echo result=ok")
    b = await served.run("echo result=bad; exit 1")
    pinned = await served.http.post(f"/api/v1/sessions/{a.id}/pin")
    assert pinned.json()["pinned"] is True
    assert (await served.http.delete(f"/api/v1/sessions/{a.id}/pin")).json()["pinned"] is False
    diff = (await served.http.get("/api/v1/sessions/diff", params={"a": a.id, "b": b.id})).json()
    assert diff["exitCodes"] == [0, 1] and "+result=bad" in diff["outputDiff"]
    cast = await served.http.get(f"/api/v1/sessions/{a.id}/export", params={"format": "asciicast"})
    assert json.loads(cast.text.splitlines()[0])["version"] == 2
    assert "attachment" in cast.headers["content-disposition"]
    bad = await served.http.get(f"/api/v1/sessions/{a.id}/export", params={"format": "pdf"})
    assert bad.status_code == 400
    frames = (
        await served.http.get(
            f"/api/v1/sessions/{a.id}/frames", params={"from_seq": "2", "limit": "2"}
        )
    ).json()
    assert [int(f["sequence"]) for f in frames["frames"]] == [2, 3]
    assert (await served.http.delete(f"/api/v1/sessions/{b.id}")).status_code == 204
    assert (await served.http.get(f"/api/v1/sessions/{b.id}")).status_code == 404
    listed = (await served.http.get("/api/v1/sessions")).json()["sessions"]
    assert [s["sessionId"] for s in listed] == [a.id]
