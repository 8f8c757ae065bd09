"""ktl.session.export through the LSP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from tests.conftest import Ktl


async def test_export_binary_session_round_trips(ktl: Ktl, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 64)
    result = await ktl.cmd("ktl.run", {"argv": ["cat", str(blob)]})
    sid = result["sessionId"]
    out = await ktl.cmd(
        "ktl.session.export",
        {"sessionId": sid, "format": "ndjson", "path": str(tmp_path / "s.ndjson")},
    )
    lines = [json.loads(line) for line in Path(out["path"]).read_text().splitlines()]
    assert [int(x["sequence"]) for x in lines] == list(range(1, len(lines) + 1))
    raw = b"".join(base64.b64decode(x["raw"]) for x in lines if "raw" in x and "ktl_event" not in x)
    # The terminal turns \n into \r\n on output (onlcr); every other byte arrives as sent.
    assert raw.replace(b"\r\n", b"\n") == blob.read_bytes().replace(b"\r\n", b"\n")
    assert all(x["session_id"] == sid for x in lines)


async def test_export_formats_and_default_path(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"command": "printf '\\033[32mgreen\\033[0m\\n'"})
    sid = result["sessionId"]
    cast = Path(
        (await ktl.cmd("ktl.session.export", {"sessionId": sid, "format": "asciicast"}))["path"]
    )
    assert cast.parent == ktl.store.parent / "exports" and cast.suffix == ".cast"
    header = json.loads(cast.read_text().splitlines()[0])
    assert header["version"] == 2 and header["width"] == 120
    html = Path((await ktl.cmd("ktl.session.export", {"sessionId": sid, "format": "html"}))["path"])
    page = html.read_text()
    assert "<html" in page.lower() and "default-src 'none'" in page


async def test_export_errors(ktl: Ktl, tmp_path: Path) -> None:
    result = await ktl.cmd("ktl.run", {"argv": ["true"]})
    with pytest.raises(JsonRpcInvalidParams, match="field 'format'"):
        await ktl.cmd("ktl.session.export", {"sessionId": result["sessionId"], "format": "pdf"})
    with pytest.raises(JsonRpcInvalidParams, match="unknown session nope"):
        await ktl.cmd("ktl.session.export", {"sessionId": "nope", "format": "ndjson"})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JsonRpcInvalidParams):
        await ktl.cmd(
            "ktl.session.export",
            {
                "sessionId": result["sessionId"],
                "format": "ndjson",
                "path": str(blocker / "out.ndjson"),
            },
        )
