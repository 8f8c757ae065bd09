"""Security properties end to end, through the real server (see docs/security.md)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import StartKtl
from tests.lsp.features.helpers import frames

GH = "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"
KUBE = "    token: ZXlKaGJHY2lPaUpTVXpJMU5pSXNJbXRwWkNJNklp"


async def test_secrets_in_output_are_redacted_everywhere_with_a_marker(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    ktl = await start_ktl(options={"redact": {"enabled": True}})
    # The secrets are put together at run time: the command line itself is recorded as given
    # (docs/security.md says so), only output is scanned.
    cmd = f"printf 'auth %s%s end\\n' {GH[:10]} {GH[10:]}; printf '%s%s\\n' '{KUBE[:15]}' '{KUBE[15:]}'"
    r = await ktl.cmd("ktl.run", {"command": cmd})
    sid = r["sessionId"]
    recorded = await frames(ktl, sid)
    out = "".join(f["data"] for f in recorded if f["type"] == "output")
    assert GH not in out and "ZXlKaGJHY2lPaUpTVXpJMU5pSXNJbXRwWkNJNklp" not in out
    assert "auth [REDACTED github-token] end" in out
    assert "token: [REDACTED kubeconfig-token]" in out
    markers = [json.loads(f["data"]) for f in recorded if '"redacted"' in f["data"]]
    assert {n for m in markers for n in m["redacted"]} == {"github-token", "kubeconfig-token"}
    assert GH not in ktl.rec.text(sid)  # the editor's terminal stream
    # The gateway and exports serve what was recorded.
    url = (await ktl.cmd("ktl.session.replay", {"sessionId": sid}))["url"]
    base = url.split("/ui/")[0]
    token = (ktl.store.parent / (ktl.store.name + ".gateway-token")).read_text().strip()
    async with httpx.AsyncClient(base_url=base, headers={"X-KTL-Token": token}) as http:
        for path in (
            f"/api/v1/sessions/{sid}/export?format=ndjson",
            f"/api/v1/sessions/{sid}/export?format=asciicast",
            f"/api/v1/mirror/sessions/{sid}/tail",
        ):
            body = (await http.get(path)).text
            assert GH not in body, path
            if "ndjson" in path or "tail" in path:  # base64 of "auth [REDACTED github-token]"
                assert "YXV0aCBbUkVEQUNURUQgZ2l0aHViLXRva2VuXS" in body, path
            else:
                assert "auth [REDACTED github-token] end" in body, path
    exported = await ktl.cmd(
        "ktl.session.export", {"sessionId": sid, "format": "html", "path": str(tmp_path)}
    )
    assert GH not in Path(exported["path"]).read_text()


async def test_redaction_is_off_unless_asked_for(start_ktl: StartKtl) -> None:
    ktl = await start_ktl()
    r = await ktl.cmd("ktl.run", {"command": f"printf '%s%s\\n' {GH[:10]} {GH[10:]}"})
    out = "".join(f["data"] for f in await frames(ktl, r["sessionId"]) if f["type"] == "output")
    assert GH in out


async def test_user_patterns_are_added_and_bad_ones_reported(start_ktl: StartKtl) -> None:
    ktl = await start_ktl(
        options={
            "redact": {
                "enabled": True,
                "patterns": [{"name": "pin", "pattern": "PIN=(\\d{4})"}, "("],
            }
        }
    )
    r = await ktl.cmd("ktl.run", {"command": f"printf 'PIN=%s %s%s\\n' 1234 {GH[:10]} {GH[10:]}"})
    out = "".join(f["data"] for f in await frames(ktl, r["sessionId"]) if f["type"] == "output")
    assert "PIN=[REDACTED pin] [REDACTED github-token]" in out
    shown = [m.message for m in ktl.client.messages]
    assert any("not a valid regex" in m for m in shown), shown


async def test_children_get_no_secret_of_the_server(start_ktl: StartKtl) -> None:
    agent_token = "agent-sekret-0123456789"
    ktl = await start_ktl(
        options={"agent": {"url": "http://127.0.0.1:9", "token": agent_token}},
        env={"KTL_LSP_DEBUG_COMMANDS": "0"},
    )
    await ktl.cmd(
        "ktl.session.replay",
        {"sessionId": (await ktl.cmd("ktl.run", {"command": "true"}))["sessionId"]},
    )
    gateway_token = (ktl.store.parent / (ktl.store.name + ".gateway-token")).read_text().strip()
    r = await ktl.cmd("ktl.run", {"argv": ["env"], "cols": 400})
    out = "".join(f["data"] for f in await frames(ktl, r["sessionId"]))
    assert "TERM=xterm-256color" in out
    assert agent_token not in out and gateway_token not in out


@pytest.mark.parametrize("sid", ["../../../etc/passwd", "..", "a/../../b", "/etc/passwd"])
async def test_session_ids_cannot_walk_out_of_the_store(start_ktl: StartKtl, sid: str) -> None:
    ktl = await start_ktl()
    with pytest.raises(JsonRpcException):
        await ktl.cmd("ktl.session.export", {"sessionId": sid, "format": "ndjson"})
    assert not (ktl.store.parent / "exports").exists() or not any(
        (ktl.store.parent / "exports").iterdir()
    )
