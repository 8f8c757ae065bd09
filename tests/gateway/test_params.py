"""Every numeric query parameter of every route: a bad value is a 400 naming it, never a 500
and never a cut stream."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import Served

# Whole numbers: no Unicode digits, nothing past what a sequence or a limit can be, no
# fractions or exponents, no signs that make them negative, no words.
BAD_WHOLE = [
    "²",
    "١٢",
    "99999999999999999999",
    "1" * 5000,
    "-1",
    "1.5",
    "1e3",
    "0x10",
    "nan",
    "inf",
    "1_000",
    "ten",
]
# Real numbers (times): no Unicode digits, nothing infinite, undefined or absurdly large.
BAD_REAL = ["²", "١٢", "1e400", "99999999999999999999", "nan", "inf", "-inf", "0x10", "ten"]
NEGATIVE = "-5"

# path (with {id}), the other parameters it needs, {parameter: kind}
ROUTES: list[tuple[str, dict[str, str], dict[str, str]]] = [
    (
        "/api/v1/mirror/sessions",
        {},
        {
            "limit": "whole",
            "since_last_seen_unix_nano": "whole",
            "since_unix_nano": "whole",
            "since": "whole",
            "until_last_seen_unix_nano": "whole",
            "until_unix_nano": "whole",
            "until": "whole",
        },
    ),
    ("/api/v1/mirror/sessions/{id}/export", {}, {"from_sequence": "whole"}),
    (
        "/api/v1/mirror/sessions/{id}/tail",
        {},
        {
            "from_sequence": "whole",
            "last_event_id": "whole",
            "retry_ms": "whole",
            "retry": "whole",
            "heartbeat_ms": "whole",
            "heartbeat": "whole",
        },
    ),
    ("/api/v1/sessions", {}, {"limit": "whole"}),
    (
        "/api/v1/sessions/{id}/frames",
        {},
        {"from_seq": "whole", "limit": "whole", "max_bytes": "whole"},
    ),
    ("/api/v1/sessions/{id}/index", {}, {"points": "whole", "idle_ms": "real"}),
    ("/api/v1/sessions/{id}/seek", {"seq": "1"}, {"budget": "whole", "idle_ms": "real"}),
    ("/api/v1/sessions/{id}/seek", {}, {"seq": "whole"}),
    ("/api/v1/sessions/{id}/seek", {}, {"t_ms": "signed real"}),
    ("/api/v1/sessions/{id}/search", {"q": "a"}, {"limit": "whole", "idle_ms": "real"}),
]


def _bad(kind: str) -> list[str]:
    if kind == "whole":
        return BAD_WHOLE
    if kind == "real":
        return [*BAD_REAL, NEGATIVE]
    return BAD_REAL


async def _get(http: httpx.AsyncClient, path: str, params: dict[str, str]) -> httpx.Response:
    # Streams: an SSE tail that was accepted would not end by itself.
    async with http.stream("GET", path, params=params, timeout=10) as r:
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            return r
        await r.aread()
        return r


async def test_every_numeric_parameter_refuses_bad_values(served: Served) -> None:
    s = await served.run("echo a; echo b")
    checked = 0
    for path, base, params in ROUTES:
        url = path.format(id=s.id)
        for name, kind in params.items():
            for value in _bad(kind):
                r = await _get(served.http, url, {**base, name: value})
                assert r.status_code == 400, (url, name, value, r.status_code)
                assert r.text.startswith(f"{name}: "), (url, name, value, r.text)
                assert len(r.text) < 300, r.text  # the value is shown, shortened
                checked += 1
            # A good value of the same parameter is still taken.
            good = {"heartbeat": "15s", "t_ms": "1.5"}.get(name, "2")
            ok = await _get(served.http, url, {**base, name: good})
            assert ok.status_code == 200, (url, name, ok.status_code)
    assert checked > 250


async def test_the_last_event_id_header_is_checked_too(served: Served) -> None:
    s = await served.run("echo a")
    for value in ("²", "99999999999999999999", "9223372036854775807", "-3", "1.5"):
        r = await served.http.get(
            f"/api/v1/mirror/sessions/{s.id}/tail", headers={"Last-Event-ID": value.encode()}
        )
        assert r.status_code == 400 and r.text.startswith("Last-Event-ID: "), (value, r.text)


async def test_a_large_export_start_is_an_empty_export_not_a_cut_one(served: Served) -> None:
    s = await served.run("echo a")
    r = await served.http.get(
        f"/api/v1/mirror/sessions/{s.id}/export", params={"from_sequence": str(2**53)}
    )
    assert r.status_code == 200 and r.text == ""
    r = await served.http.get(
        f"/api/v1/mirror/sessions/{s.id}/export", params={"from_sequence": "99999999999999999999"}
    )
    assert r.status_code == 400 and r.text.startswith("from_sequence: ")
