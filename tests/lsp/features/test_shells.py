"""``ktl.shell``, command blocks and search across sessions, end to end through a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from tests.conftest import StartKtl


async def test_shell_blocks_rerun_diff_and_search(start_ktl: StartKtl, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("PS1='$ '\n")
    ktl = await start_ktl(env={"HOME": str(home)})
    ended: list[dict[str, Any]] = []

    @ktl.client.feature("ktl/block")
    def on_block(params: Any) -> None:
        ended.append(
            {
                "sessionId": params.sessionId,
                "index": params.index,
                "exitCode": getattr(params, "exitCode", None),
            }
        )
        ktl.rec.poke()

    started = await ktl.cmd(
        "ktl.shell", {"shell": "bash", "cwd": str(tmp_path), "detach": True, "cols": 100}
    )
    sid = started["sessionId"]
    await ktl.rec.until(lambda: "$ " in ktl.rec.text(sid))
    await ktl.cmd("ktl.session.input", {"sessionId": sid, "data": "echo shell-needle-1\r"})
    await ktl.rec.until(lambda: len(ended) == 1)
    await ktl.cmd("ktl.session.input", {"sessionId": sid, "data": "echo shell-needle-2; false\r"})
    await ktl.rec.until(lambda: len(ended) == 2)
    # The block's output reached the editor before the block's end did.
    assert "shell-needle-2" in ktl.rec.text(sid)
    assert ended == [
        {"sessionId": sid, "index": 0, "exitCode": 0},
        {"sessionId": sid, "index": 1, "exitCode": 1},
    ]
    blocks = (await ktl.cmd("ktl.session.blocks", {"sessionId": sid}))["blocks"]
    assert [(b["index"], b["command"], b.get("exitCode")) for b in blocks] == [
        (0, "echo shell-needle-1", 0),
        (1, "echo shell-needle-2; false", 1),
    ]
    assert blocks[0]["cwd"] == str(tmp_path) and blocks[0]["toSeq"] >= blocks[0]["fromSeq"]
    assert {"startedAt", "endedAt", "durationMs"} <= blocks[0].keys()
    out = await ktl.cmd("ktl.block.output", {"sessionId": sid, "block": 1})
    assert out == {"text": "shell-needle-2"}
    # Rerun in the same shell: a third block with the same command.
    await ktl.cmd("ktl.block.rerun", {"sessionId": sid, "block": 0})
    await ktl.rec.until(lambda: len(ended) == 3)
    # Rerun as its own session, in the block's directory.
    own = await ktl.cmd("ktl.block.rerun", {"sessionId": sid, "block": 1, "target": "run"})
    assert own["exitCode"] == 1 and own["sessionId"] != sid
    diff = await ktl.cmd("ktl.sessions.diff", {"a": f"{sid}#block0", "b": f"{sid[:8]}#2"})
    assert diff["outputDiff"] == "" and diff["exitCodes"] == [0, 0]
    diff = await ktl.cmd("ktl.sessions.diff", {"a": f"{sid}#block0", "b": f"{sid}#block1"})
    assert "-shell-needle-1" in diff["outputDiff"] and "+shell-needle-2" in diff["outputDiff"]
    found = await ktl.cmd("ktl.sessions.search", {"q": "shell-needle-2"})
    where = [(m["sessionId"], m.get("block"), m["line"]) for m in found["matches"]]
    assert (sid, 1, "shell-needle-2") in where
    assert (own["sessionId"], None, "shell-needle-2") in where
    assert found["matches"][0]["sessionId"] == own["sessionId"]  # newest first
    shells = await ktl.cmd("ktl.sessions.search", {"q": "shell-needle-2", "kind": "shell"})
    assert {m["sessionId"] for m in shells["matches"]} == {sid}
    await ktl.cmd("ktl.session.input", {"sessionId": sid, "data": "exit\r"})
    done = await ktl.cmd("ktl.session.wait", {"sessionId": sid, "timeoutS": 10})
    assert done["state"] == "done"


async def test_bad_block_requests(start_ktl: StartKtl) -> None:
    ktl = await start_ktl()
    result = await ktl.cmd("ktl.run", {"argv": ["true"]})
    sid = result["sessionId"]
    with pytest.raises(JsonRpcInvalidParams, match="has no command block 0"):
        await ktl.cmd("ktl.block.output", {"sessionId": sid, "block": 0})
    with pytest.raises(JsonRpcInvalidParams, match="is not SESSION#blockN"):
        await ktl.cmd("ktl.sessions.diff", {"a": f"{sid}#x", "b": sid})
    with pytest.raises(JsonRpcInvalidParams, match="field 'q': must not be empty"):
        await ktl.cmd("ktl.sessions.search", {"q": " "})
