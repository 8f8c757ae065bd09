"""The SSE tail: replay, resume, live frames, heartbeats, gaps and the end."""

from __future__ import annotations

import asyncio
import base64
import json

from ktl_lsp.gateway.sse_client import SseEvent, SseParser
from ktl_lsp.sessions.manager import RunSpec
from tests.gateway.conftest import Served


async def collect(
    served: Served, sid: str, until: str = "end", timeout: float = 10, **params: str
) -> list[SseEvent]:
    headers = {}
    if "last_event_id_header" in params:
        headers["Last-Event-ID"] = params.pop("last_event_id_header")
    events: list[SseEvent] = []
    parser = SseParser()

    async def go() -> None:
        async with served.http.stream(
            "GET", f"/api/v1/mirror/sessions/{sid}/tail", params=params, headers=headers
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert (
                r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
            )
            async for chunk in r.aiter_text():
                for ev in parser.feed(chunk):
                    events.append(ev)
                    if ev.event == until:
                        return

    await asyncio.wait_for(go(), timeout)
    return events


def frames(events: list[SseEvent]) -> list[int]:
    return [int(e.id or 0) for e in events if e.event == "frame"]


async def test_replay_of_a_finished_session_ends(served: Served) -> None:
    s = await served.run("echo hi")
    events = await collect(served, s.id, retry="500")
    assert events[0].retry == 500
    assert frames(events) == list(range(1, s.last_seq + 1))
    end = json.loads(events[-1].data)
    assert events[-1].event == "end" and end["state"] == "done"
    assert end["status"]["state"] == "MIRROR_SESSION_STATE_DONE"
    first = json.loads(next(e for e in events if e.event == "frame").data)
    assert first["session_id"] == s.id and first["sequence"] == "1"


async def test_resume_with_last_event_id(served: Served) -> None:
    s = await served.run("for i in 1 2 3 4 5; do echo $i; done")
    header = await collect(served, s.id, last_event_id_header="3")
    assert frames(header) == list(range(4, s.last_seq + 1))
    query = await collect(served, s.id, last_event_id="4", replay="0")  # the id forces replay on
    assert frames(query) == list(range(5, s.last_seq + 1))
    start = await collect(served, s.id, from_sequence="2")
    assert frames(start)[0] == 2


async def test_live_tail_without_gaps_or_repeats(served: Served) -> None:
    cmd = "for i in $(seq 1 40); do echo line$i; sleep 0.01; done"
    live = served.manager.start(RunSpec(argv=["sh", "-c", cmd], command=cmd))
    await asyncio.sleep(0.15)  # some frames are already recorded, more are coming
    events = await collect(served, live.id, timeout=15)
    seqs = frames(events)
    assert seqs == list(range(1, len(seqs) + 1))
    session = await live.done
    assert seqs[-1] == session.last_seq
    text = b"".join(
        base64.b64decode(json.loads(e.data)["raw"])
        for e in events
        if e.event == "frame" and "ktl_event" not in e.data
    ).decode()
    assert [int(x[4:]) for x in text.split()] == list(range(1, 41))


async def test_live_only_and_heartbeat(served: Served) -> None:
    live = served.manager.start(RunSpec(argv=["sh", "-c", "sleep 1.5; echo late"], command="late"))
    await asyncio.sleep(0.2)
    events = await collect(served, live.id, replay="0", heartbeat_ms="1000", timeout=10)
    assert any(e.event == "ping" and e.data.isdigit() and e.id is None for e in events)
    assert min(frames(events)) > 2  # the frames recorded before subscribing were not replayed
    assert events[-1].event == "end"


async def test_unknown_session_is_404(served: Served) -> None:
    r = await served.http.get("/api/v1/mirror/sessions/none/tail")
    assert r.status_code == 404


async def test_pruned_frames_are_reported_as_dropped(served: Served) -> None:
    from ktl_lsp.sessions.retention import RetentionPolicy

    s = await served.run("for i in $(seq 1 30); do echo $i; sleep 0.005; done")
    assert served.manager.store is not None
    served.manager.store.prune(
        RetentionPolicy(max_sessions=0, max_frames_per_session=5, max_store_bytes=0, max_age_days=0)
    )
    events = await collect(served, s.id)
    dropped = [json.loads(e.data) for e in events if e.event == "dropped"]
    # The trim marker takes the last trimmed number; everything before it is gone.
    assert dropped and dropped[0]["from_sequence"] == 1 and dropped[0]["reason"] == "not_available"
    assert frames(events)[-1] == s.last_seq


async def test_a_tail_after_pruning_sends_what_the_store_has_not_what_it_cached(
    served: Served,
) -> None:
    """Retention replaces trimmed frames by a marker numbered like the last of them: a tail
    before the prune filled the event cache, one after it must not bring that frame back."""
    from ktl_lsp.sessions.mirror import mirror_to_frame
    from ktl_lsp.sessions.retention import RetentionPolicy

    s = await served.run("for i in $(seq 1 30); do echo $i; sleep 0.005; done")
    await collect(served, s.id)  # every frame now in the gateway's event cache
    assert served.manager.store is not None
    served.manager.store.prune(
        RetentionPolicy(max_sessions=0, max_frames_per_session=5, max_store_bytes=0, max_age_days=0)
    )
    stored = {f.seq: f for f in served.manager.store.frames(s.id)}
    events = await collect(served, s.id)
    for e in events:
        if e.event == "frame":
            sent = mirror_to_frame(json.loads(e.data), s.id)
            assert sent.type is stored[sent.seq].type and sent.data == stored[sent.seq].data, sent
