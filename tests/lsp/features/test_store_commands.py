"""Pin, delete, prune and compare through the LSP."""

from __future__ import annotations

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from tests.conftest import Ktl, StartKtl


async def test_pin_delete_prune(start_ktl: StartKtl) -> None:
    ktl = await start_ktl(options={"retention": {"maxSessions": 2, "intervalS": 0}})
    ids = [(await ktl.cmd("ktl.run", {"command": f"echo run {i}"}))["sessionId"] for i in range(5)]
    pinned = await ktl.cmd("ktl.session.pin", {"sessionId": ids[0], "pinned": True})
    assert pinned["pinned"] is True
    await ktl.cmd("ktl.session.delete", {"sessionId": ids[1]})
    with pytest.raises(JsonRpcInvalidParams, match=f"unknown session {ids[1]}"):
        await ktl.cmd("ktl.session.get", {"sessionId": ids[1]})
    pruned = await ktl.cmd("ktl.sessions.prune", {})
    assert pruned["deleted"] == 2  # 4 left, 2 allowed: the two oldest unpinned go
    left = [s["sessionId"] for s in (await ktl.cmd("ktl.sessions.list", {}))["sessions"]]
    assert left == [ids[4], ids[0]]


async def test_running_sessions_cannot_be_deleted(start_ktl: StartKtl) -> None:
    ktl = await start_ktl()
    result = await ktl.cmd("ktl.run", {"argv": ["sleep", "30"], "detach": True})
    with pytest.raises(JsonRpcInvalidParams, match="is running; cancel it"):
        await ktl.cmd("ktl.session.delete", {"sessionId": result["sessionId"]})
    await ktl.cmd("ktl.session.cancel", {"sessionId": result["sessionId"]})


async def test_bad_retention_setting_is_reported(start_ktl: StartKtl) -> None:
    ktl = await start_ktl(options={"retention": {"maxSessions": -1, "bogus": 1}})
    await ktl.cmd("ktl.sessions.list", {})
    messages = " ".join(m.message for m in ktl.client.messages)
    assert (
        "setting 'retention.maxSessions': must not be negative" in messages
        and "unknown setting 'retention.bogus'" in messages
    )


async def test_diff_two_runs(start_ktl: StartKtl) -> None:
    ktl = await start_ktl()
    a = await ktl.cmd("ktl.run", {"command": "echo started at $(date +%T); echo result=ok"})
    b = await ktl.cmd(
        "ktl.run", {"command": "sleep 1.1; echo started at $(date +%T); echo result=fail; exit 2"}
    )
    out = await ktl.cmd("ktl.sessions.diff", {"a": a["sessionId"], "b": b["sessionId"]})
    assert out["exitCodes"] == [0, 2]
    assert out["durationDeltaMs"] > 0
    lines = out["outputDiff"].splitlines()
    assert "-result=ok" in lines and "+result=fail" in lines
    assert not any(line.startswith(("-started", "+started")) for line in lines)


async def test_a_unique_prefix_stands_for_its_session(ktl: Ktl) -> None:
    first = await ktl.cmd("ktl.run", {"argv": ["echo", "one"]})
    second = await ktl.cmd("ktl.run", {"argv": ["echo", "two"]})
    a, b = first["sessionId"], second["sessionId"]
    shared = next(i for i in range(16) if a[i] != b[i])
    got = await ktl.cmd("ktl.session.get", {"sessionId": a[: max(shared + 1, 4)]})
    assert got["sessionId"] == a
    out = await ktl.cmd("ktl.session.output", {"sessionId": b[:12], "plain": True})
    assert "two" in "".join(f["data"] for f in out["frames"] if f["type"] == "output")
    if shared >= 4:
        with pytest.raises(JsonRpcInvalidParams, match=f"ambiguous session {a[:shared]}"):
            await ktl.cmd("ktl.session.get", {"sessionId": a[:shared]})
    with pytest.raises(JsonRpcInvalidParams, match="a prefix needs at least 4 characters"):
        await ktl.cmd("ktl.session.get", {"sessionId": a[:3]})
    # a running session is reached by its prefix too (input, cancel)
    live = await ktl.cmd("ktl.run", {"argv": ["sleep", "30"], "detach": True})
    cancelled = await ktl.cmd("ktl.session.cancel", {"sessionId": live["sessionId"][:10]})
    assert cancelled["sessionId"] == live["sessionId"] and cancelled["state"] == "cancelled"
