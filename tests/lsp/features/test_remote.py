"""A remote gateway: listing its sessions and attaching to one, across a gateway restart."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.gateway.auth import load_or_create_token
from tests.cli.conftest import record_in_background
from tests.conftest import StartKtl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(store: Path, port: int, *flags: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ktl_lsp",
        "--store",
        str(store),
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        *flags,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    while b"sign in once" not in await asyncio.wait_for(proc.stderr.readline(), 20):
        pass
    return proc


async def test_list_and_attach_across_a_restart(start_ktl: StartKtl, tmp_path: Path) -> None:
    remote_store = tmp_path / "remote.db"
    token = load_or_create_token(remote_store)
    port = _free_port()
    gateway = await _serve(remote_store, port)
    recorder, remote_id = await record_in_background(
        remote_store, "for i in $(seq 1 60); do echo line$i; sleep 0.05; done"
    )
    ktl = await start_ktl(options={"agent": {"url": f"http://127.0.0.1:{port}", "token": token}})
    try:
        listed = await ktl.cmd("ktl.sessions.list", {})
        remote = [s for s in listed["sessions"] if s.get("remote")]
        assert [s["sessionId"] for s in remote] == [remote_id]
        attach = ktl.start("ktl.session.attach", {"sessionId": remote_id})
        # Wait until lines are flowing through the attachment, then cut it mid-stream.
        await ktl.rec.until(lambda: any("line3" in "".join(v) for v in ktl.rec.data.values()), 20)
        gateway.terminate()  # the network goes away mid-stream...
        await gateway.wait()
        await asyncio.sleep(0.5)
        gateway = await _serve(remote_store, port)  # ...and comes back
        result = await asyncio.wait_for(attach, 30)
        assert result["state"] == "done" and result["remoteSessionId"] == remote_id
        local = result["sessionId"]
        text = ktl.rec.text(local)
        assert [int(x[4:]) for x in re.findall(r"line\d+", text)] == list(range(1, 61))
        out = await ktl.cmd("ktl.session.output", {"sessionId": local, "plain": True})
        recorded = "".join(f["data"] for f in out["frames"] if f["type"] == "output")
        assert recorded == text
        assert any(
            '"remote":"reconnecting"' in f["data"] for f in out["frames"] if f["type"] == "event"
        )
    finally:
        await recorder.wait()
        gateway.terminate()
        await gateway.wait()


async def test_wrong_token_and_unreachable(start_ktl: StartKtl, tmp_path: Path) -> None:
    port = _free_port()
    gateway = await _serve(tmp_path / "remote.db", port)
    try:
        ktl = await start_ktl(
            options={"agent": {"url": f"http://127.0.0.1:{port}", "token": "wrong"}}
        )
        listed = await ktl.cmd("ktl.sessions.list", {})
        assert "refused the token" in listed["remoteError"]
        with pytest.raises(JsonRpcInvalidParams, match="refused the token"):
            await ktl.cmd("ktl.session.attach", {"sessionId": "x"})
    finally:
        gateway.terminate()
        await gateway.wait()
    gone = await start_ktl(
        options={"agent": {"url": f"http://127.0.0.1:{_free_port()}"}}, store=tmp_path / "b.db"
    )
    listed = await gone.cmd("ktl.sessions.list", {})
    assert "cannot reach" in listed["remoteError"]


async def test_attach_from_a_frame_and_across_a_pruned_range(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    """`fromSeq` starts the local copy there; frames the remote store no longer has are recorded
    as a `remote_dropped` event, and the rest still arrives."""
    from ktl_lsp.sessions.model import FrameType
    from ktl_lsp.sessions.retention import RetentionPolicy
    from tests.gateway.conftest import serving

    (tmp_path / "remote").mkdir()
    async with serving(tmp_path / "remote") as served:
        s = await served.run("for i in $(seq 1 30); do echo n$i; sleep 0.005; done")
        store = served.manager.store
        assert store is not None
        frames = store.frames(s.id)
        outputs = [f for f in frames if f.type is FrameType.OUTPUT]
        assert len(outputs) > 6, "the lines came as separate frames"
        url, token = served.gateway.base_url, served.token
        ktl = await start_ktl(options={"agent": {"url": url, "token": token}})

        async def attached(**args: object) -> tuple[str, list[dict[str, str]]]:
            result = await ktl.cmd("ktl.session.attach", {"sessionId": s.id, **args})
            assert result["state"] == "done", result
            out = await ktl.cmd("ktl.session.output", {"sessionId": result["sessionId"]})
            text = "".join(f["data"] for f in out["frames"] if f["type"] == "output")
            return text, out["frames"]

        start = outputs[3].seq
        text, _ = await attached(fromSeq=start)
        expected = b"".join(f.data for f in outputs if f.seq >= start).decode()
        assert text == expected and not text.startswith("n1\r\n"), text

        store.prune(
            RetentionPolicy(
                max_sessions=0, max_frames_per_session=5, max_store_bytes=0, max_age_days=0
            )
        )
        kept = [f for f in store.frames(s.id) if f.type is FrameType.OUTPUT]
        text, recorded = await attached()
        assert text == b"".join(f.data for f in kept).decode()
        gaps = [
            f["data"] for f in recorded if f["type"] == "event" and "remote_dropped" in f["data"]
        ]
        assert gaps and '"from":1' in gaps[0], recorded


async def test_attach_gets_redacted_output_unless_asked_to_reveal(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    """The remote gateway redacts what an attachment receives (output and the session's
    command line); ``reveal: true`` asks it, with the token, for the output as recorded."""
    from tests.gateway.conftest import serving

    aws = "AKIA" + "IOSFODNN7EXAMPLE"
    (tmp_path / "remote").mkdir()
    async with serving(tmp_path / "remote") as served:
        s = await served.run(f"echo key={aws}; echo done")
        ktl = await start_ktl(
            options={"agent": {"url": served.gateway.base_url, "token": served.token}}
        )
        result = await ktl.cmd("ktl.session.attach", {"sessionId": s.id})
        assert result["state"] == "done", result
        out = await ktl.cmd("ktl.session.output", {"sessionId": result["sessionId"]})
        text = "".join(f["data"] for f in out["frames"] if f["type"] == "output")
        assert "key=[REDACTED aws-access-key-id]" in text and aws not in text
        listed = await ktl.cmd("ktl.sessions.list", {})
        local = next(x for x in listed["sessions"] if x["sessionId"] == result["sessionId"])
        assert aws not in json.dumps(local)

        shown = await ktl.cmd("ktl.session.attach", {"sessionId": s.id, "reveal": True})
        out = await ktl.cmd("ktl.session.output", {"sessionId": shown["sessionId"]})
        assert aws in "".join(f["data"] for f in out["frames"] if f["type"] == "output")
