"""What the gateway hands out (session JSON, SSE frames, pages of frames, searches, the index)
is redacted by default; ``reveal=1`` shows secrets only with the token in a header. The store
keeps what it recorded (recording redaction is off here)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx

from ktl_lsp.gateway.sse_client import SseParser
from ktl_lsp.sessions.model import FrameType
from ktl_lsp.sessions.redact import Redaction
from tests.gateway.conftest import Served, served, serving

__all__ = ["served"]

AWS = "AKIA" + "IOSFODNN7EXAMPLE"
GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
BEARER = "abcdefghijklmnop0123456789"
KUBE = "c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1Ng=="
KEY_BODY = ["MIIEowIBAAKCAQEAx1y2z3" + "Q" * 40, "abcdEFGH" * 8, "zz+/09==" * 3]
TICKET = "TICKET-4321"
#: Each secret and what must not be seen of it.
SECRETS = {
    "aws": AWS,
    "github": GH,
    "bearer": BEARER,
    "kubeconfig": KUBE,
    "pem": KEY_BODY[1],
    # The whole ticket: its four digits alone turn up in the session JSON's nanosecond times.
    "user": TICKET,
}
FILE = "\n".join(
    [
        f"    token: {KUBE}",
        "-----BEGIN RSA PRIVATE KEY-----",
        *KEY_BODY,
        "-----END RSA PRIVATE KEY-----",
    ]
)


def _script(tmp_path: Path) -> str:
    """Prints every kind; the kubeconfig and the key come from a file (``cat``), as they would."""
    (tmp_path / "kubeconfig").write_text(FILE + "\n")
    return (
        f"echo key={AWS}; echo token {GH}; echo 'Authorization: Bearer {BEARER}'; "
        f"cat {tmp_path / 'kubeconfig'}; echo see {TICKET} done"
    )


def _leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


async def _tail(http: httpx.AsyncClient, sid: str, params: str = "") -> tuple[str, list[str]]:
    """The output of a finished session's SSE tail, and the events' names."""
    out, names = [], []
    parser = SseParser()
    async with http.stream("GET", f"/api/v1/mirror/sessions/{sid}/tail?{params}") as r:
        assert r.status_code == 200
        async for chunk in r.aiter_text():
            for ev in parser.feed(chunk):
                names.append(ev.event)
                if ev.event == "frame":
                    raw = json.loads(ev.data).get("raw")
                    out.append(base64.b64decode(raw).decode() if raw else "")
            if "end" in names:
                break
    return "".join(out), names


async def test_api_and_sse_redact_everything_and_reveal_needs_the_token(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        served.manager.leaving = Redaction.build(True, [("ticket", r"TICKET-(\d{4})")])
        s = await served.run(_script(tmp_path))
        store = served.manager.store
        assert store is not None
        recorded = b"".join(f.data for f in store.frames(s.id) if f.type is FrameType.OUTPUT)
        assert set(_leaks(recorded.decode())) == set(SECRETS)  # the store keeps them

        text, events = await _tail(served.http, s.id)
        assert _leaks(text) == [] and events[-1] == "end"
        for name in ("aws-access-key-id", "github-token", "bearer-token", "private-key"):
            assert f"[REDACTED {name}]" in text
        assert "TICKET-[REDACTED ticket] done" in text and "kubeconfig-token]" in text

        # Session JSON (the command line holds every secret), ours and the mirror's.
        for path in (
            f"/api/v1/sessions/{s.id}",
            f"/api/v1/mirror/sessions/{s.id}",
            "/api/v1/sessions",
            "/api/v1/mirror/sessions",
            f"/api/v1/sessions/{s.id}/frames",
            f"/api/v1/sessions/{s.id}/index",
        ):
            r = await served.http.get(path)
            assert r.status_code == 200, path
            body = r.text
            if path.endswith("/frames"):
                frames = r.json()["frames"]
                body += "".join(base64.b64decode(f.get("raw", "")).decode() for f in frames)
            assert _leaks(body) == [], (path, _leaks(body))

        # A secret cannot be found by searching for it; the rest of its line can.
        inside = await served.http.get(f"/api/v1/sessions/{s.id}/search", params={"q": AWS[:10]})
        assert inside.json()["matches"] == []
        around = await served.http.get(f"/api/v1/sessions/{s.id}/search", params={"q": "key="})
        assert around.json()["matches"]
        found = await served.http.get("/api/v1/search", params={"q": AWS})
        assert found.status_code == 200 and found.json()["matches"] == []
        line = await served.http.get("/api/v1/search", params={"q": "see"})
        lines = [m["line"] for m in line.json()["matches"]]
        assert lines and all(TICKET not in x for x in lines)

        # reveal=1: with the token in a header, everything; a cookie (the replay UI's sign-in
        # from a shared link) is refused, and so is no token at all.
        shown, _ = await _tail(served.http, s.id, "reveal=1")
        assert set(_leaks(shown)) == set(SECRETS)
        by_header = httpx.AsyncClient(
            base_url=served.gateway.base_url, headers={"X-KTL-Token": served.token}
        )
        async with by_header:
            r = await by_header.get(f"/api/v1/sessions/{s.id}", params={"reveal": "1"})
            assert AWS in r.text
        cookie = httpx.AsyncClient(
            base_url=served.gateway.base_url, cookies={"ktl_token": served.token}
        )
        async with cookie:
            assert AWS not in (await cookie.get(f"/api/v1/sessions/{s.id}")).text
            refused = await cookie.get(f"/api/v1/sessions/{s.id}/frames", params={"reveal": "1"})
            assert refused.status_code == 403 and "header" in refused.text
            tail = await cookie.get(f"/api/v1/mirror/sessions/{s.id}/tail?reveal=1")
            assert tail.status_code == 403
        anon = await served.anon.get(f"/api/v1/sessions/{s.id}", params={"reveal": "1"})
        assert anon.status_code == 401


async def test_a_secret_split_across_frames(served: Served) -> None:
    """Written in two pieces with a pause, the key is in two frames of the store; the tail,
    a page of frames starting between them, and a tail resumed between them show none of it."""
    cut = 9
    s = await served.run(
        f"printf 'key: {AWS[:cut]}'; sleep 0.3; printf '{AWS[cut:]} done\\n'; echo after"
    )
    store = served.manager.store
    assert store is not None
    outputs = [f for f in store.frames(s.id) if f.type is FrameType.OUTPUT]
    assert not any(AWS.encode() in f.data for f in outputs), "the key came in one read"
    first = next(f for f in outputs if AWS[:cut].encode() in f.data)
    assert AWS.encode() in b"".join(f.data for f in outputs)

    text, _ = await _tail(served.http, s.id)
    assert AWS[:4] not in text and AWS[cut:] not in text
    assert "key: [REDACTED aws-access-key-id] done" in text and "after" in text

    # From the second frame on: the rest of the key is still recognised and removed.
    rest = first.seq + 1
    page = (await served.http.get(f"/api/v1/sessions/{s.id}/frames?from_seq={rest}")).json()
    got = "".join(base64.b64decode(f.get("raw", "")).decode() for f in page["frames"])
    assert AWS[cut:] not in got and " done" in got
    resumed, _ = await _tail(served.http, s.id, f"last_event_id={first.seq}")
    assert AWS[cut:] not in resumed and " done" in resumed
    # Revealed, the frames are as recorded.
    shown, _ = await _tail(served.http, s.id, "reveal=1")
    assert AWS in shown


async def test_a_live_tail_is_redacted_as_it_streams(served: Served) -> None:
    from ktl_lsp.sessions.manager import RunSpec

    cmd = f"sleep 0.3; echo one; sleep 0.2; echo token {GH}; sleep 0.2; echo two"
    live = served.manager.start(RunSpec(argv=["sh", "-c", cmd], command="live"))
    text, events = await asyncio.wait_for(_tail(served.http, live.id), 20)
    assert GH not in text and "[REDACTED github-token]" in text
    assert "one" in text and "two" in text and events[-1] == "end"
