"""Session routes take a unique id prefix; full ids (ktl-agent's too) keep working."""

from __future__ import annotations

import json

from ktl_lsp.sessions.model import Session, State
from tests.gateway.conftest import Served

TWINS = ("zzzzcfcb00000001", "zzzzcfcb00000002")
#: ktl-agent ids are prefix-timestamp: one can be a prefix of another.
AGENT, AGENT_LONGER = "remote-logs-17", "remote-logs-170"


async def _save(served: Served, *sids: str) -> None:
    store = served.manager.store
    assert store is not None
    for sid in sids:
        store.save_session(Session(id=sid, kind="remote", title=sid, state=State.DONE))
    await store.flush()


async def test_routes_resolve_a_unique_prefix(served: Served) -> None:
    a = await served.run("echo result=ok")
    b = await served.run("echo result=bad; exit 1")
    pa, pb = a.id[:10], b.id[:10]
    got = await served.http.get(f"/api/v1/mirror/sessions/{pa}")
    assert got.status_code == 200 and got.json()["session_id"] == a.id
    export = await served.http.get(f"/api/v1/mirror/sessions/{pa}/export")
    assert [json.loads(line)["session_id"] for line in export.text.splitlines()] == [
        a.id
    ] * a.last_seq
    ours = await served.http.get(f"/api/v1/sessions/{pa}")
    assert ours.json()["sessionId"] == a.id
    frames = (await served.http.get(f"/api/v1/sessions/{pa}/frames")).json()
    assert frames["session"]["sessionId"] == a.id and len(frames["frames"]) == a.last_seq
    index = (await served.http.get(f"/api/v1/sessions/{pa}/index")).json()
    assert index["session"]["sessionId"] == a.id
    cast = await served.http.get(f"/api/v1/sessions/{pa}/export", params={"format": "asciicast"})
    assert f'filename="{a.id}.cast"' in cast.headers["content-disposition"]
    pinned = await served.http.post(f"/api/v1/sessions/{pa}/pin")
    assert pinned.json()["sessionId"] == a.id and (await served.manager.get(a.id)).pinned
    diff = (await served.http.get("/api/v1/sessions/diff", params={"a": pa, "b": pb})).json()
    assert diff["exitCodes"] == [0, 1] and "+result=bad" in diff["outputDiff"]
    assert (await served.http.delete(f"/api/v1/sessions/{pb}")).status_code == 204
    assert (await served.http.get(f"/api/v1/sessions/{b.id}")).status_code == 404


async def test_full_ids_ambiguous_and_unknown(served: Served) -> None:
    a = await served.run("echo hi")
    await _save(served, *TWINS, AGENT, AGENT_LONGER)
    for sid in (a.id, *TWINS, AGENT, AGENT_LONGER):  # an exact id always wins
        got = await served.http.get(f"/api/v1/mirror/sessions/{sid}")
        assert got.status_code == 200 and got.json()["session_id"] == sid
        assert (await served.http.get(f"/api/v1/sessions/{sid}")).json()["sessionId"] == sid
    for path in ("/api/v1/mirror/sessions/zzzzcfcb", "/api/v1/sessions/zzzzcfcb/frames"):
        r = await served.http.get(path)
        assert r.status_code == 409, (path, r.status_code)
        assert r.text == f"ambiguous session zzzzcfcb: it could be {TWINS[0]}, {TWINS[1]}\n"
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
    ambiguous = await served.http.get("/api/v1/sessions/diff", params={"a": "zzzz", "b": a.id})
    assert ambiguous.status_code == 409
    assert (await served.http.delete("/api/v1/sessions/zzzz")).status_code == 409
    assert (await served.manager.get(TWINS[0])).id == TWINS[0]  # nothing was deleted
    for sid in (a.id[:3], "nope0", a.id + "0"):
        for path in (f"/api/v1/mirror/sessions/{sid}", f"/api/v1/sessions/{sid}"):
            r = await served.http.get(path)
            assert r.status_code == 404 and r.text == "session not found\n", path
    # Without credentials a prefix reveals nothing: auth comes first.
    assert (await served.anon.get("/api/v1/sessions/zzzzcfcb")).status_code == 401
