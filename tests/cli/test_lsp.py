"""`ktl-lsp` as the language server: stdio and TCP transports, start and stop."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import select
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import KTL_LSP, ktl_lsp
from tests.conftest import server_command
from tests.needs import unavailable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _frame(obj: dict) -> bytes:  # type: ignore[type-arg]
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def _read_message(reader: asyncio.StreamReader) -> dict:  # type: ignore[type-arg]
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length"):
            length = int(line.split(b":")[1])
    return json.loads(await reader.readexactly(length))  # type: ignore[no-any-return]


def _listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, found without connecting to it."""
    with open("/proc/net/tcp") as fh:
        rows = [line.split() for line in fh.readlines()[1:]]
    return any(r[1] == f"0100007F:{port:04X}" and r[3] == "0A" for r in rows)


async def _start_tcp(store: Path, port: int, **pipes: Any) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *server_command(store), "--tcp", f"127.0.0.1:{port}", **pipes
    )


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    for _ in range(200):
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("server did not listen")


async def _connect_initialized(
    port: int, options: dict[str, Any] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await _connect(port)
    params = {"capabilities": {}, "initializationOptions": options or {}}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    writer.write(_frame(init))
    msg = await asyncio.wait_for(_read_message(reader), 20)
    assert msg["result"]["serverInfo"]["name"] == "ktl-lsp"
    writer.write(_frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    return reader, writer


@pytest.mark.parametrize("client", [True, False], ids=["editor-connected", "no-editor"])
async def test_ctrl_c_stops_a_tcp_server_quietly(tmp_path: Path, client: bool) -> None:
    port = _free_port()
    proc = await _start_tcp(tmp_path / "tcp.db", port, stderr=asyncio.subprocess.PIPE)
    try:
        _, writer = await _connect(port)
    except AssertionError:
        proc.kill()
        raise
    if not client:
        writer.close()  # a client leaving ends the TCP server by itself: wait for the next one
        await asyncio.wait_for(proc.wait(), 10)
        proc = await _start_tcp(tmp_path / "tcp.db", port, stderr=asyncio.subprocess.PIPE)
        for _ in range(200):  # listening, nobody connected
            if _listening(port):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("server did not listen")
    await asyncio.sleep(0.5)  # an idle loop, asleep in its selector, must still wake for it
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), 10) == 130
    writer.close()
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize("shutdown", [True, False], ids=["shutdown-then-exit", "exit-only"])
async def test_an_editor_ending_a_tcp_session_stops_the_server_quietly(
    tmp_path: Path, shutdown: bool
) -> None:
    """The LSP way to end: `shutdown`, then `exit` (exit code 0; 1 without shutdown). Over TCP
    pygls' own handler logged a SystemExit traceback each time."""
    port = _free_port()
    proc = await _start_tcp(tmp_path / "tcp.db", port, stderr=asyncio.subprocess.PIPE)
    try:
        reader, writer = await _connect_initialized(port)
        if shutdown:
            writer.write(_frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
            while (await asyncio.wait_for(_read_message(reader), 20)).get("id") != 2:
                pass
        writer.write(_frame({"jsonrpc": "2.0", "method": "exit"}))
        assert await asyncio.wait_for(proc.wait(), 10) == (0 if shutdown else 1)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the server hung up
        writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert "Traceback" not in stderr and "SystemExit" not in stderr, stderr


async def test_an_absurd_frame_header_over_tcp_is_skipped(tmp_path: Path) -> None:
    """The message size limit holds on a socket as on stdio (``Content-Length`` of a TB)."""
    port = _free_port()
    proc = await _start_tcp(tmp_path / "tcp.db", port, stderr=asyncio.subprocess.PIPE)
    try:
        reader, writer = await _connect(port)
        writer.write(b"Content-Length: 1000000000000\r\n\r\n")
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
        writer.write(_frame(init))
        told = []
        while "id" not in (msg := await asyncio.wait_for(_read_message(reader), 20)):
            told.append(msg["params"]["message"])
        assert msg["result"]["serverInfo"]["name"] == "ktl-lsp"
        assert any("refused a message of 1000000000000 bytes" in m for m in told), told
        writer.write(_frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
        while (await asyncio.wait_for(_read_message(reader), 20)).get("id") != 2:
            pass
        writer.write(_frame({"jsonrpc": "2.0", "method": "exit"}))
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_second_editor_is_refused_and_the_first_keeps_working(tmp_path: Path) -> None:
    """pygls has one protocol object: a second connection used to take the first one's replies."""
    port = _free_port()
    proc = await _start_tcp(tmp_path / "tcp.db", port, stderr=asyncio.subprocess.PIPE)
    try:
        reader, writer = await _connect_initialized(port)

        other_reader, other_writer = await _connect(port)
        told = await asyncio.wait_for(_read_message(other_reader), 10)
        assert told["method"] == "window/showMessage"
        assert "already serves an editor" in told["params"]["message"]
        assert await asyncio.wait_for(other_reader.read(), 10) == b""  # then hung up
        other_writer.close()

        run = {"command": "ktl.run", "arguments": [{"argv": ["echo", "still mine"]}]}
        writer.write(
            _frame({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": run})
        )
        while (msg := await asyncio.wait_for(_read_message(reader), 20)).get("id") != 2:
            pass
        assert msg["result"]["state"] == "done"
        writer.close()
    finally:
        proc.kill()
        await proc.wait()
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert "already serves an editor" in stderr and "Traceback" not in stderr, stderr


async def test_tcp_listens_on_loopback_only(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *server_command(tmp_path / "tcp.db"),
        "--tcp",
        f"0.0.0.0:{_free_port()}",
        stderr=asyncio.subprocess.PIPE,
    )
    assert await asyncio.wait_for(proc.wait(), 20) == 2
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert "loopback" in stderr and "no authentication" in stderr


async def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await _start_tcp(tmp_path / "tcp.db", port, stderr=asyncio.subprocess.PIPE)
        assert await asyncio.wait_for(proc.wait(), 20) == 1
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert f"cannot listen on 127.0.0.1:{port}" in stderr and "address already in use" in stderr
    assert "Traceback" not in stderr, stderr


CONNECT_AS_OTHER = """
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
length = 0
while (line := f.readline()) not in (b"\\r\\n", b""):
    if line.lower().startswith(b"content-length"):
        length = int(line.split(b":")[1])
print(json.loads(f.read(length))["params"]["message"])
print("eof" if f.read() == b"" else "more")
"""


SYSTEM_PYTHON = "/usr/bin/python3"


async def test_another_local_user_is_refused(tmp_path: Path) -> None:
    """No token on the language server: only the user who started it may drive it."""
    if os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON):
        unavailable("needs root (to connect as another user) and a system python3")
    port = _free_port()
    proc = await _start_tcp(tmp_path / "tcp.db", port, stderr=asyncio.subprocess.PIPE)
    try:
        _, mine = await _connect(port)  # waits until it listens, then leaves: the server stops
        mine.close()
        await asyncio.wait_for(proc.wait(), 10)
        proc = await _start_tcp(tmp_path / "tcp.db", port, stderr=asyncio.subprocess.PIPE)
        for _ in range(200):
            if _listening(port):
                break
            await asyncio.sleep(0.05)
        other = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON,  # the venv's may not be readable by nobody
            "-c",
            CONNECT_AS_OTHER,
            str(port),
            user=65534,  # nobody
            cwd="/",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(other.communicate(), 20)
        message, end = out.decode().splitlines()
        assert "serves only the user who started it" in message and "uid 65534" in message
        assert end == "eof"
        # Still serving its own user afterwards.
        _, writer = await _connect_initialized(port)
        writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_tcp_transport(tmp_path: Path) -> None:
    port = _free_port()
    proc = await _start_tcp(tmp_path / "tcp.db", port, stdout=asyncio.subprocess.PIPE)
    try:
        reader, writer = await _connect_initialized(port)
        writer.write(
            _frame(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "workspace/executeCommand",
                    "params": {"command": "ktl.run", "arguments": [{"argv": ["true"]}]},
                }
            )
        )
        while True:
            msg = await asyncio.wait_for(_read_message(reader), 20)
            if msg.get("id") == 2:
                break
        assert msg["result"]["state"] == "done"
        writer.close()
    finally:
        proc.kill()
        stdout = await proc.stdout.read() if proc.stdout else b""
        await proc.wait()
    assert stdout == b"", "nothing may reach stdout in TCP mode either"


async def test_tcp_streams_session_data(tmp_path: Path) -> None:
    """Terminal output reaches a TCP editor as ``ktl/sessionData``, whole and in order."""
    port = _free_port()
    proc = await _start_tcp(tmp_path / "tcp.db", port)
    try:
        reader, writer = await _connect_initialized(port, {"sessionData": True})
        run = {"command": "ktl.run", "arguments": [{"argv": ["printf", "h\u00e9llo \u2713\\n"]}]}
        writer.write(
            _frame({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": run})
        )
        data: list[str] = []
        while True:
            msg = await asyncio.wait_for(_read_message(reader), 20)
            if msg.get("method") == "ktl/sessionData":
                data.append(msg["params"]["data"])
            elif msg.get("method") == "ktl/sessionState" and msg["params"]["state"] != "running":
                break
        assert "".join(data) == "h\u00e9llo \u2713\r\n"
        writer.close()
    finally:
        proc.kill()
        await proc.wait()


async def test_bad_arguments_are_answered_without_a_logged_traceback(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *server_command(tmp_path / "s.db"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    run = {"command": "ktl.run", "arguments": [{"argv": 5}]}
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": run},
    ):
        proc.stdin.write(_frame(message))
    while (msg := await asyncio.wait_for(_read_message(proc.stdout), 20)).get("id") != 2:
        pass
    assert "field 'argv': expected array, got number" in msg["error"]["message"]
    proc.stdin.close()
    await asyncio.wait_for(proc.wait(), 10)
    stderr = (await proc.stderr.read()).decode()
    assert "Traceback" not in stderr and "ArgumentError" not in stderr, stderr


def _signal_ignored(pid: int, signum: int) -> bool:
    """Whether ``signum`` is in the process's ignored set (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(
        next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16
    )
    return bool(mask & (1 << (signum - 1)))


async def test_a_tcp_server_started_with_ctrl_c_ignored_keeps_ignoring_it(tmp_path: Path) -> None:
    # nohup, or `&` in a script: the convention is to leave an ignored SIGINT ignored.
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        *server_command(tmp_path / "tcp.db"),
        "--tcp",
        f"127.0.0.1:{port}",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        for _ in range(200):
            if _listening(port):
                break
            await asyncio.sleep(0.05)
        # The kernel drops a signal the process ignores as it is sent: no waiting needed to see
        # that it did nothing (a handler would show in SigCgt and run later).
        assert _signal_ignored(proc.pid, signal.SIGINT), "the server stopped ignoring Ctrl-C"
        proc.send_signal(signal.SIGINT)
        assert proc.returncode is None and _listening(port)
    finally:
        proc.kill()
        await proc.wait()


def _read_pty(proc: Any, until: bytes | None, timeout: float) -> bytes:
    """What the terminal shows until ``until`` appears (None: until the program closes it)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while until is None or until not in seen:
        left = deadline - time.monotonic()
        assert left > 0, seen
        if select.select([proc.fd], [], [], left)[0]:
            try:
                chunk = os.read(proc.fd, 4096)
            except OSError:  # EIO: the program has ended
                chunk = b""
            if not chunk:
                break
            seen += chunk
    return seen


#: read(2)'s number, as /proc/PID/task/TID/syscall shows it while a thread waits in it.
READ = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())


def _reading_stdin(pid: int) -> bool:
    """Some thread of ``pid`` waits in read(2) on file descriptor 0."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            call = (task / "syscall").read_text().split()
        except OSError:
            continue
        if len(call) > 1 and call[0] == READ and int(call[1], 16) == 0:
            return True
    return False


def test_typed_in_a_terminal_it_says_what_it_is_and_ctrl_c_ends_it(tmp_path: Path) -> None:
    from ptyprocess import PtyProcess

    proc = PtyProcess.spawn([KTL_LSP, "--store", str(tmp_path / "s.db")])
    try:
        told = _read_pty(proc, b"lists the rest.", 30).decode()
        said = " ".join(told.split())
        assert "ktl-lsp is a language server: it is waiting for an editor" in said
        for command in ("ktl-lsp run -- CMD", "ktl-lsp serve", "ktl-lsp check PATH..."):
            assert command in said
        for _ in range(500):  # serving: a thread of it waits in read(2) on stdin for the editor
            if _reading_stdin(proc.pid):
                break
            time.sleep(0.01)
        assert _reading_stdin(proc.pid), "the server never waited for the editor's input"
        proc.sendintr()
        rest = _read_pty(proc, None, 10).decode()
        assert proc.wait() == 130
        assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
    finally:
        if proc.isalive():
            proc.kill(signal.SIGKILL)


def test_started_by_an_editor_it_says_nothing(tmp_path: Path) -> None:
    quiet = ktl_lsp("--store", str(tmp_path / "s.db"), stdin=subprocess.DEVNULL)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


async def test_an_editor_ending_a_stdio_session_leaves_no_traceback(tmp_path: Path) -> None:
    """shutdown + exit, as every editor ends a session: exit 0 and nothing alarming on stderr."""
    proc = await asyncio.create_subprocess_exec(
        *server_command(tmp_path / "s.db"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None},
    ):
        proc.stdin.write(_frame(message))
    while (await asyncio.wait_for(_read_message(proc.stdout), 20)).get("id") != 2:
        pass
    proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "exit", "params": None}))
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    stderr = (await proc.stderr.read()).decode()
    assert "Traceback" not in stderr, stderr
