"""``GET /api/v1/search`` and ``/api/v1/sessions/{id}/blocks`` over a real store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.gateway.conftest import Served
from tests.sessions.test_shells import start_shell


async def test_search_across_sessions(served: Served) -> None:
    a = await served.run("echo gateway-needle one")
    b = await served.run("echo gateway-needle two; exit 3")
    r = await served.http.get("/api/v1/search", params={"q": "gateway-needle"})
    assert r.status_code == 200
    matches = r.json()["matches"]
    assert [(m["sessionId"], m["line"]) for m in matches] == [
        (b.id, "gateway-needle two"),
        (a.id, "gateway-needle one"),
    ]
    assert matches[0]["highlights"] == [[0, 14]]
    r = await served.http.get("/api/v1/search", params={"q": "gateway-needle", "state": "error"})
    assert [m["sessionId"] for m in r.json()["matches"]] == [b.id]
    r = await served.http.get("/api/v1/search", params={"q": "gateway-needle", "since": "1h"})
    assert len(r.json()["matches"]) == 2
    assert (await served.http.get("/api/v1/search", params={"q": ""})).status_code == 400
    bad = await served.http.get("/api/v1/search", params={"q": "x", "since": "soon"})
    assert bad.status_code == 400
    assert (await served.anon.get("/api/v1/search", params={"q": "x"})).status_code == 401


async def test_blocks_route(served: Served, tmp_path: Path) -> None:
    live = start_shell(served.manager, "bash", tmp_path)
    await asyncio.sleep(0.5)
    served.manager.input(live.id, "echo from-gateway\rexit\r")
    await asyncio.wait_for(live.done, 10)
    r = await served.http.get(f"/api/v1/sessions/{live.id}/blocks")
    blocks = r.json()["blocks"]
    assert blocks[0]["command"] == "echo from-gateway" and blocks[0]["exitCode"] == 0
    r = await served.http.get(
        "/api/v1/sessions/diff", params={"a": f"{live.id}#block0", "b": f"{live.id}#block0"}
    )
    assert r.status_code == 200 and r.json()["outputDiff"] == ""
