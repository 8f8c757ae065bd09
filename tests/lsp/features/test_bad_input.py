"""Bad input gets a clear answer and never hangs a request or loses a session."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from tests.conftest import Ktl, StartKtl
from tests.lsp.features.helpers import output_text, server_pid, wait_gone
from tests.needs import unavailable


async def test_executable_not_found(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"argv": ["definitely-not-a-command-xyz"]})
    assert result["state"] == "error"
    assert "executable not found: definitely-not-a-command-xyz" in result["error"]
    session = await ktl.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    assert session["state"] == "error"


async def test_missing_cwd(ktl: Ktl, tmp_path: Path) -> None:
    result = await ktl.cmd("ktl.run", {"argv": ["true"], "cwd": str(tmp_path / "gone")})
    assert result["state"] == "error"
    assert "working directory does not exist" in result["error"]


async def test_permission_denied(ktl: Ktl, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = await ktl.cmd("ktl.run", {"argv": [str(script)]})
    assert result["state"] == "error"
    assert "permission denied" in result["error"]


async def test_a_binary_for_another_machine_is_named(ktl: Ktl, tmp_path: Path) -> None:
    foreign = tmp_path / "arm-tool"
    foreign.write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\xb7\x00" * 24)
    foreign.chmod(0o755)
    # From the workspace (not the server's directory) a shell enters it and reports the
    # refused exec as a terminal does: exit 126 and the reason on screen. From the server's
    # own directory the spawn itself fails with the same words (tests/pty/test_posix.py).
    result = await ktl.cmd("ktl.run", {"argv": [str(foreign)], "cwd": str(tmp_path)})
    assert result["state"] == "error" and result["exitCode"] == 126
    assert "Exec format error" in await output_text(ktl, result["sessionId"])


async def test_relative_program_resolves_against_cwd(ktl: Ktl, tmp_path: Path) -> None:
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho from-script\n")
    script.chmod(0o755)
    result = await ktl.cmd("ktl.run", {"argv": ["./hello.sh"], "cwd": str(tmp_path)})
    assert result["state"] == "done"
    assert await output_text(ktl, result["sessionId"]) == "from-script\r\n"


async def test_exit_before_anything_is_read(ktl: Ktl) -> None:
    results = await asyncio.gather(*(ktl.cmd("ktl.run", {"argv": ["true"]}) for _ in range(10)))
    assert {r["state"] for r in results} == {"done"}


async def test_flood_is_recorded_completely(ktl: Ktl) -> None:
    # 8 MB in one burst: every byte reaches the store, the request still answers.
    result = await ktl.cmd(
        "ktl.run", {"command": "head -c 8000000 /dev/zero | tr '\\0' 'x'; echo; echo END"}
    )
    assert result["state"] == "done"
    text = await output_text(ktl, result["sessionId"])
    assert text.count("x") == 8_000_000 and text.endswith("END\r\n")


async def test_timeout_ends_the_session(ktl: Ktl) -> None:
    result = await asyncio.wait_for(
        ktl.cmd("ktl.run", {"argv": ["sleep", "30"], "timeoutS": 0.3}), 10
    )
    assert result["state"] == "error"
    assert result["error"] == "timed out after 0.3s"


async def test_bad_arguments_name_the_field(ktl: Ktl) -> None:
    cases = [
        ({"argv": ["true"], "colz": 3}, "unknown field 'colz'"),
        ({"argv": "true"}, "field 'argv': expected array, got string"),
        ({"argv": [1]}, r"field 'argv\[0\]': expected string, got number"),
        ({}, "exactly one of 'argv' or 'command'"),
        ({"argv": ["true"], "env": {"A": 1}}, "field 'env.A': expected string"),
        ({"argv": ["true"], "rows": 0}, "field 'rows'"),
    ]
    for args, message in cases:
        with pytest.raises(JsonRpcInvalidParams, match=message):
            await ktl.cmd("ktl.run", args)
    with pytest.raises(JsonRpcInvalidParams, match="field 'signal': expected one of"):
        await ktl.cmd("ktl.session.signal", {"sessionId": "x", "signal": "STOP"})
    with pytest.raises(JsonRpcInvalidParams, match="missing field 'sessionId'"):
        await ktl.cmd("ktl.session.input", {"data": "x"})
    with pytest.raises(JsonRpcInvalidParams, match="is not defined"):
        await ktl.cmd("ktl.no.such.command", {})


async def test_unknown_session_everywhere(ktl: Ktl) -> None:
    for command, extra in [
        ("ktl.session.get", {}),
        ("ktl.session.wait", {}),
        ("ktl.session.output", {}),
        ("ktl.session.cancel", {}),
        ("ktl.session.input", {"data": "x"}),
        ("ktl.session.resize", {"cols": 10, "rows": 10}),
        ("ktl.session.signal", {"signal": "INT"}),
    ]:
        with pytest.raises(JsonRpcInvalidParams, match="unknown session ghost"):
            await ktl.cmd(command, {"sessionId": "ghost", **extra})


async def test_input_to_finished_session(ktl: Ktl) -> None:
    result = await ktl.cmd("ktl.run", {"argv": ["true"]})
    with pytest.raises(JsonRpcInvalidParams, match="is not running"):
        await ktl.cmd("ktl.session.input", {"sessionId": result["sessionId"], "data": "x"})


async def test_unwritable_store_still_runs(start_ktl: StartKtl, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    ktl = await start_ktl(store=blocker / "sessions.db")
    result = await ktl.cmd("ktl.run", {"command": "echo still-running"})
    assert result["state"] == "done"
    assert "still-running" in ktl.rec.text(result["sessionId"])
    assert await output_text(ktl, result["sessionId"]) == "still-running\r\n"
    await ktl.cmd("ktl.run", {"argv": ["true"]})
    notices = [m.message for m in ktl.client.messages if "recording is off" in m.message]
    assert len(notices) == 1, notices


@contextlib.contextmanager
def small_tmpfs(mnt: Path, size: str) -> Iterator[Path]:
    """A filesystem of ``size`` at ``mnt`` that really fills up (skips where mounting is
    not permitted: it needs root or CAP_SYS_ADMIN)."""
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mnt)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        why = f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}"
        unavailable(why)  # CI runs as root: a skip there would hide the full-disk tests
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


class FilledTmpfs:
    """A tmpfs filled by a file: the store's writes fail with ENOSPC until it is deleted."""

    def __init__(self, mnt: Path) -> None:
        self.dir = mnt
        self.filler = mnt / "filler"

    def fill(self, pid: int | None = None) -> None:
        chunk = b"f" * 4096
        with self.filler.open("wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(chunk)

    def free(self) -> None:
        self.filler.unlink()


class FileSizeLimit:
    """RLIMIT_FSIZE on the server process at the store's current size: its writes past it
    fail (EFBIG) as on a full disk, with no privileges (CPython ignores SIGXFSZ)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.pid = 0
        self.saved = resource.getrlimit(resource.RLIMIT_FSIZE)

    def fill(self, pid: int | None = None) -> None:
        assert pid is not None, "a limit is set on a running server"
        self.pid = pid
        self.saved = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        size = max(f.stat().st_size for f in self.dir.iterdir() if f.is_file())
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, self.saved[1]))

    def free(self) -> None:
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, self.saved)


@contextlib.contextmanager
def small_disk(way: str, tmp_path: Path) -> Iterator[FilledTmpfs | FileSizeLimit]:
    if way == "tmpfs":
        with small_tmpfs(tmp_path / "tiny", "4m") as mnt:
            yield FilledTmpfs(mnt)
    else:
        directory = tmp_path / "limited"
        directory.mkdir()
        yield FileSizeLimit(directory)


async def notices(ktl: Ktl, text: str, timeout: float = 10) -> list[str]:
    """The editor's messages containing ``text``, once there is at least one."""
    for _ in range(int(timeout / 0.05)):
        found = [m.message for m in ktl.client.messages if text in m.message]
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message with {text!r} in {[m.message for m in ktl.client.messages]}")


async def test_full_disk_turns_recording_off_once(start_ktl: StartKtl, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "tiny", "600k") as mnt:
        ktl = await start_ktl(store=mnt / "sessions.db")
        result = await ktl.cmd(
            "ktl.run", {"command": "head -c 3000000 /dev/zero | tr '\\0' 'y'; echo; echo DONE"}
        )
        assert result["state"] == "done"
        assert ktl.rec.text(result["sessionId"]).endswith("DONE\r\n")
        again = await ktl.cmd("ktl.run", {"command": "echo after-full"})
        assert again["state"] == "done"
        assert "after-full" in ktl.rec.text(again["sessionId"])
        assert await output_text(ktl, again["sessionId"]) == "after-full\r\n"
        off = [m.message for m in ktl.client.messages if "recording is off" in m.message]
        assert len(off) == 1, off
        await ktl.client.shutdown_session()


@pytest.mark.parametrize(
    ("way", "full"),
    [("tmpfs", "while running"), ("file-size-limit", "while running"), ("tmpfs", "from the start")],
)
async def test_recording_resumes_when_the_disk_has_space_again(
    start_ktl: StartKtl, tmp_path: Path, way: str, full: str
) -> None:
    with small_disk(way, tmp_path) as disk:
        store = disk.dir / "sessions.db"
        if full == "from the start":
            disk.fill()
        ktl = await start_ktl(store=store, env={"KTL_LSP_STORE_RETRY_S": "0.05,0.2"})
        if full == "while running":
            warm = await ktl.cmd("ktl.run", {"command": "echo warm"})
            assert warm["state"] == "done"
            disk.fill(server_pid(ktl))
        # About 300 KB of output while the disk is full: the session runs and ends as usual.
        full = await ktl.cmd(
            "ktl.run",
            {"command": "head -c 300000 /dev/zero | tr '\\0' 'y'; echo; echo FULL-DONE"},
        )
        assert full["state"] == "done" and full["exitCode"] == 0
        assert len(await notices(ktl, "recording is off")) == 1

        disk.free()
        resumed = await notices(ktl, "recording resumed")
        assert len(resumed) == 1, resumed
        after = await ktl.cmd("ktl.run", {"command": "echo after-space"})
        assert after["state"] == "done"
        off = [m.message for m in ktl.client.messages if "recording is off" in m.message]
        assert len(off) == 1, off

        pid = server_pid(ktl)
        await ktl.client.shutdown_session()
        assert await wait_gone(pid, timeout=15)
        db = sqlite3.connect(store)
        try:
            rows = dict(
                (sid, (state, code))
                for sid, state, code in db.execute("SELECT id, state, exit_code FROM sessions")
            )
            assert rows[full["sessionId"]] == ("done", 0)
            assert rows[after["sessionId"]] == ("done", 0)

            def output(sid: str) -> bytes:
                return b"".join(
                    bytes(d)
                    for (d,) in db.execute(
                        "SELECT data FROM frames WHERE session_id = ? AND type = 'output' "
                        "ORDER BY seq",
                        (sid,),
                    )
                )

            # The session that ran while the disk was full is recorded whole, from memory.
            assert output(full["sessionId"]) == b"y" * 300000 + b"\r\nFULL-DONE\r\n"
            assert output(after["sessionId"]) == b"after-space\r\n"
            seqs = [
                seq
                for (seq,) in db.execute(
                    "SELECT seq FROM frames WHERE session_id = ? ORDER BY seq",
                    (after["sessionId"],),
                )
            ]
            assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3
        finally:
            db.close()


async def test_corrupt_store_file_is_named_and_left_alone(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    store = tmp_path / "corrupt.db"
    store.write_bytes(b"definitely not sqlite " * 500)
    ktl = await start_ktl(store=store)
    result = await ktl.cmd("ktl.run", {"command": "echo works anyway"})
    assert result["state"] == "done"
    notices = [m.message for m in ktl.client.messages if "recording is off" in m.message]
    assert len(notices) == 1
    assert str(store) in notices[0] and "move it aside" in notices[0]
    assert store.read_bytes().startswith(b"definitely not sqlite")
