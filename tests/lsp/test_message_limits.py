"""What the editor sends is bounded: one bad frame header or one huge message must not end the
server, and an error about a huge value does not send it back.

The attacks as found: ``Content-Length: 1000000000000`` ended the server (``MemoryError``); a
50 MB request was echoed whole in its error. Each is sent here over the real stdio pipes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.lsp.wire import Wire

MIB = 1024 * 1024


def refusals(wire: Wire) -> list[str]:
    """The refusals the editor was told of (window/logMessage, type Error)."""
    return [
        n["params"]["message"]
        for n in wire.notifications
        if n["method"] == "window/logMessage" and "refused a message" in n["params"]["message"]
    ]


async def test_an_absurd_content_length_does_not_end_the_server(tmp_path: Path) -> None:
    wire = await Wire.start(tmp_path / "sessions.db")
    try:
        await wire.send_bytes(b"Content-Length: 1000000000000\r\n\r\n")
        await wire.send_bytes(b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n")  # no int()
        answer = await wire.initialize()
        assert answer["result"]["serverInfo"]["name"] == "ktl-lsp"
        listed = await wire.command("ktl.sessions.list", {"limit": 1})
        assert listed["result"]["sessions"] == []
        assert wire.proc.returncode is None
        log = wire.log()
        assert log.count("refused a message of 1000000000000 bytes") == 1, log
        assert f"the limit is {64 * MIB} bytes" in log
        assert refusals(wire) == [
            f"ktl-lsp: refused a message of 1000000000000 bytes from the editor: the limit is "
            f"{64 * MIB} bytes (setting maxMessageBytes, or KTL_LSP_MAX_MESSAGE_BYTES)"
        ]
    finally:
        await wire.close()
    assert wire.proc.returncode == 0  # shutdown and exit, as after any session


def oversized_request(msg_id: int | str, size: int, id_last: bool = False) -> bytes:
    # Header-like text inside the body must not be taken for the next message.
    padding = ("Content-Length: 12\r\n\r\n{}" * (size // 24))[:size]
    message: dict[str, Any] = {
        "jsonrpc": "2.0",
        "method": "workspace/executeCommand",
        "params": {"command": "ktl.sessions.list", "arguments": [{"pad": padding, "id": 1}]},
    }
    # VS Code writes the id first; Neovim's encoder may write it after the params.
    message = {**message, "id": msg_id} if id_last else {"id": msg_id, **message}
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)


def refusal_answer(wire: Wire, msg_id: int | str) -> dict[str, Any]:
    answers = [r for r in wire.responses if r.get("id") == msg_id]
    assert len(answers) == 1, wire.responses
    error: dict[str, Any] = answers[0]["error"]
    return error


async def test_a_message_over_the_setting_is_skipped_whole(tmp_path: Path) -> None:
    wire = await Wire.start(tmp_path / "sessions.db")
    try:
        await wire.initialize({"maxMessageBytes": MIB})
        await wire.send_bytes(oversized_request(9999, 2 * MIB))
        await wire.send_bytes(oversized_request("late-id", 2 * MIB, id_last=True))
        listed = await wire.command("ktl.sessions.list", {"limit": 1})
        assert listed["result"]["sessions"] == []  # the next message was read as one
        for msg_id in (9999, "late-id"):
            # Answered, so the editor does not wait for it forever.
            error = refusal_answer(wire, msg_id)
            assert error["code"] == -32600
            assert error["message"].startswith("ktl-lsp: refused a message of ")
            assert f"the limit is {MIB} bytes" in error["message"]
        log = wire.log()
        assert log.count("refused a message of") == 2, log
        assert f"the limit is {MIB} bytes" in log
        assert len(refusals(wire)) == 2
        assert wire.proc.returncode is None
    finally:
        await wire.close()


async def test_the_limit_holds_before_initialize(tmp_path: Path) -> None:
    wire = await Wire.start(tmp_path / "sessions.db", env={"KTL_LSP_MAX_MESSAGE_BYTES": str(MIB)})
    try:
        await wire.send_bytes(oversized_request(9999, 2 * MIB))
        answer = await wire.initialize()
        assert answer["result"]["serverInfo"]["name"] == "ktl-lsp"
        assert f"the limit is {MIB} bytes" in wire.log()
        assert refusal_answer(wire, 9999)["code"] == -32600
    finally:
        await wire.close()


async def test_errors_repeat_little_of_a_huge_value(tmp_path: Path) -> None:
    wire = await Wire.start(tmp_path / "sessions.db")
    huge = "x" * 1_000_000
    try:
        await wire.initialize()

        async def error_of(method: str, params: Any) -> dict[str, Any]:
            answer = await wire.request(method, params)
            assert len(json.dumps(answer)) < 5000, json.dumps(answer)[:300]
            error: dict[str, Any] = answer["error"]
            return error

        bad_format = await error_of(
            "workspace/executeCommand",
            {"command": "ktl.session.export", "arguments": [{"sessionId": "s", "format": huge}]},
        )
        assert bad_format["code"] == -32602
        assert bad_format["message"].startswith("field 'format': expected one of")
        assert "(1000002 characters)" in bad_format["message"]
        unknown = await error_of(
            "workspace/executeCommand",
            {"command": "ktl.session.output", "arguments": [{"sessionId": huge}]},
        )
        assert unknown["message"].startswith("unknown session xxx")
        unknown_method = await error_of(huge, {})
        assert (
            unknown_method["code"] == -32601 and "(1000000 characters)" in unknown_method["message"]
        )
        # An id is repeated in its answer: one of a megabyte is refused, answered with null.
        await wire.send({"jsonrpc": "2.0", "id": huge, "method": "shutdown", "params": None})
        await wire.send({"jsonrpc": "2.0", "id": {"an": "object"}, "method": "shutdown"})
        answers: list[dict[str, Any]] = []
        while len(answers) < 2:
            if "id" in (message := await wire.read()):
                answers.append(message)
        for answer, kind in zip(
            answers, ["a string of 1000000 characters", "an object"], strict=True
        ):
            assert answer["id"] is None and answer["error"]["code"] == -32600
            assert answer["error"]["message"].endswith(f"not {kind}")
        assert len(wire.log()) < 100_000  # the log does not hold the values either
        listed = await wire.command("ktl.sessions.list", {"limit": 1})
        assert listed["result"]["sessions"] == []
    finally:
        await wire.close()
