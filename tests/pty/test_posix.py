"""The POSIX runner on its own: no editor, no store."""

from __future__ import annotations

import asyncio
import os
import platform

import pytest

from ktl_lsp.pty import PtySpec, SpawnError, spawn


class Sink:
    def __init__(self) -> None:
        self.raw = bytearray()

    def on_output(self, raw: bytes, text: str) -> None:
        self.raw += raw


async def test_runs_and_reports_exit_code() -> None:
    sink = Sink()
    pty = await spawn(PtySpec(["sh", "-c", "echo out; exit 7"]), sink)
    info = await pty.wait()
    assert info.exit_code == 7 and info.signal is None
    assert bytes(sink.raw) == b"out\r\n"


async def test_kill_reports_signal() -> None:
    sink = Sink()
    pty = await spawn(PtySpec(["sleep", "30"]), sink)
    pty.send_signal("KILL")
    info = await asyncio.wait_for(pty.wait(), 5)
    assert (info.exit_code, info.signal) == (137, "KILL")


async def test_spawn_errors_are_clear(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpawnError, match="executable not found"):
        await spawn(PtySpec(["no-such-program-ktl"]), Sink())
    with pytest.raises(SpawnError, match="working directory does not exist"):
        await spawn(PtySpec(["true"], cwd=str(tmp_path / "missing")), Sink())


#: write(2)'s number, as /proc/PID/syscall shows it while a process waits in it.
WRITE = {"x86_64": 1, "aarch64": 64}.get(platform.machine())


def _waiting_to_write(pid: int) -> bool:
    """The process sleeps inside write(2): the terminal's buffer is full, nobody reads."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/syscall") as fh:
            call = fh.read().split()
    except OSError:
        return False
    return state == "S" and bool(call) and call[0] == str(WRITE)


@pytest.mark.skipif(WRITE is None, reason="write(2)'s number is known for x86_64 and aarch64")
async def test_backpressure_pauses_the_child() -> None:
    sink = Sink()
    pty = await spawn(PtySpec(["head", "-c", "2000000", "/dev/zero"]), sink)
    pty.pause_reading()
    for _ in range(500):  # the child fills the terminal's buffer, then has to wait
        if _waiting_to_write(pty.pid):
            break
        await asyncio.sleep(0.01)
    assert _waiting_to_write(pty.pid), "the child never had to wait: the stream was still read"
    held = len(sink.raw)
    assert held < 2_000_000, "a paused reader must not consume the stream"
    for _ in range(10):  # and it stays so: a running reader would free it at once
        await asyncio.sleep(0.01)
        assert _waiting_to_write(pty.pid) and len(sink.raw) == held
    pty.resume_reading()
    info = await asyncio.wait_for(pty.wait(), 10)
    assert info.exit_code == 0 and len(sink.raw) == 2_000_000


async def test_no_fds_leak() -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(10):
        pty = await spawn(PtySpec(["true"]), Sink())
        await pty.wait()
    assert len(os.listdir("/proc/self/fd")) <= before


class SizedSink(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def on_output(self, raw: bytes, text: str) -> None:
        super().on_output(raw, text)
        self.sizes.append(len(raw))


async def test_many_floods_share_each_loop_turn_and_lose_nothing() -> None:
    """Ten terminals flooding at once: each gets one read per turn, every byte still arrives."""
    from ktl_lsp.pty.posix import FULL_READ, READ_SIZE

    # All wait until every one is spawned, then flood together.
    script = "sleep 1.5; head -c 2000000 /dev/zero"
    sinks = [SizedSink() for _ in range(10)]
    ptys = [await spawn(PtySpec(["sh", "-c", script]), s) for s in sinks]
    await asyncio.wait_for(asyncio.gather(*(p.wait() for p in ptys)), 30)
    expected = bytes(2_000_000)
    for sink in sinks:
        assert bytes(sink.raw) == expected
    sizes = [size for sink in sinks for size in sink.sizes]
    # The last one or two may finish alone and drain; while crowded, one read each per turn.
    single = [size for size in sizes if size <= FULL_READ]
    assert len(single) >= 0.8 * len(sizes), sizes

    # Alone, a terminal drains more than one read per turn (fewer, larger frames).
    alone = SizedSink()
    pty = await spawn(PtySpec(["sh", "-c", "head -c 3000000 /dev/zero"]), alone)
    await asyncio.wait_for(pty.wait(), 30)
    assert len(alone.raw) == 3_000_000
    assert max(alone.sizes) > FULL_READ and max(alone.sizes) <= READ_SIZE


async def test_children_start_with_default_signals_whatever_the_server_ignores(
    spawner: str,
) -> None:
    """Python ignores SIGPIPE; a server started from a background shell ignores SIGINT too.
    Ignored signals survive exec: the child must not inherit them."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sink = Sink()
        pty = await spawn(
            PtySpec(["sh", "-c", "yes | head -1; grep SigIgn /proc/self/status"]), sink
        )
        assert (await asyncio.wait_for(pty.wait(), 10)).exit_code == 0
        out = bytes(sink.raw).decode()
        assert "Broken pipe" not in out
        ignored = int(out.split("SigIgn:\t")[1].split()[0], 16)
        # Signals 1-31; glibc's own two below SIGRTMIN are ignored by any posix_spawn (Rust's
        # Command too) and re-installed by the C library when a program needs them.
        assert ignored & 0x7FFFFFFF == 0, hex(ignored)  # bit n-1 is signal n
        sink = Sink()
        pty = await spawn(PtySpec(["sleep", "30"]), sink)
        await asyncio.sleep(0.2)
        pty.send_signal("INT")
        info = await asyncio.wait_for(pty.wait(), 5)
        assert (info.exit_code, info.signal) == (130, "INT")
    finally:
        signal.signal(signal.SIGINT, previous)


async def output_of(spec: PtySpec) -> str:
    sink = Sink()
    pty = await spawn(spec, sink)
    assert (await asyncio.wait_for(pty.wait(), 10)).exit_code == 0, bytes(sink.raw)
    return bytes(sink.raw).decode()


@pytest.fixture(params=["posix_spawn", "ptyprocess"])
def spawner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of starting a child: posix_spawn (Linux) and ptyprocess's fork (elsewhere)."""
    import ktl_lsp.pty.posix as posix

    monkeypatch.setattr(posix, "USE_POSIX_SPAWN", request.param == "posix_spawn")
    return str(request.param)


async def test_the_pty_is_the_childs_controlling_terminal(spawner: str) -> None:
    # What job control, Ctrl-C from the line discipline, `sudo` and ssh's password prompt need:
    # /dev/tty opens, and the child's group is the terminal's foreground group.
    script = (
        "tty; exec 3</dev/tty && echo tty-opens; "
        "set -- $(cut -d' ' -f5,8 /proc/$$/stat); echo pgrp=$1 tpgid=$2 pid=$$"
    )
    out = await output_of(PtySpec(["sh", "-c", script]))
    assert out.startswith("/dev/pts/") and "tty-opens" in out
    fields = dict(kv.split("=") for kv in out.split()[-3:])
    assert fields["pgrp"] == fields["tpgid"] == fields["pid"], out


async def test_working_directory_and_arguments_arrive_unchanged(tmp_path, spawner: str) -> None:  # type: ignore[no-untyped-def]
    # Another directory than the server's goes through a shell that execs the program: names
    # and arguments a shell would otherwise interpret must come through as they are.
    odd = tmp_path / "-dir with 'quotes' $HOME"
    odd.mkdir()
    args = ["a b", "$HOME", "*", "'", '"', "-n", ""]
    out = await output_of(
        PtySpec(
            ["python3", "-c", "import os, sys; print(os.getcwd()); print(sys.argv[1:])", *args],
            cwd=str(odd),
        )
    )
    lines = out.splitlines()
    assert lines[0] == str(odd)
    assert lines[1] == str(args)
    # The shell exec'd the program rather than forking it: its parent is us.
    out = await output_of(
        PtySpec(["python3", "-c", "import os; print(os.getppid())"], cwd=str(odd))
    )
    assert int(out.strip()) == os.getpid()


@pytest.mark.parametrize("where", ["server's directory", "another directory"])
async def test_a_script_without_shebang_runs_as_a_shell_would_run_it(
    tmp_path, spawner: str, where: str
) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "no-shebang"
    script.write_text('echo "ran as a script: $1"\n')
    script.chmod(0o755)
    cwd = None if where == "server's directory" else str(tmp_path)
    out = await output_of(PtySpec([str(script), "arg one"], cwd=cwd))
    assert "ran as a script: arg one" in out


async def test_a_binary_the_kernel_refuses_is_an_error_not_a_script(tmp_path, spawner: str) -> None:  # type: ignore[no-untyped-def]
    binary = tmp_path / "foreign"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\xff" * 48)
    binary.chmod(0o755)
    with pytest.raises(SpawnError, match="cannot execute binary file: Exec format error"):
        await spawn(PtySpec([str(binary)]), Sink())
