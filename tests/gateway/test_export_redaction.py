"""What leaves the store through the gateway's exports is redacted unless the token holder asks
to see it (``reveal=1``); the store keeps what it recorded."""

from __future__ import annotations

from tests.gateway.conftest import Served, served

__all__ = ["served"]

GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


async def test_export_redacted_by_default_revealed_on_request(served: Served) -> None:
    s = await served.run(f"echo token={GH}; echo after")
    url = f"/api/v1/sessions/{s.id}/export?format=asciicast"
    hidden = await served.http.get(url)
    assert hidden.status_code == 200
    assert GH not in hidden.text and "[REDACTED github-token]" in hidden.text
    assert "after" in hidden.text
    shown = await served.http.get(url + "&reveal=1")
    assert GH in shown.text
    assert (await served.anon.get(url + "&reveal=1")).status_code == 401
    mirror = await served.http.get(f"/api/v1/mirror/sessions/{s.id}/export")
    assert mirror.status_code == 200 and "Z2hwX0ExYjJD" not in mirror.text  # base64 of ghp_A1b2C
