"""`ktl-lsp run`: what the command's exit status and output say."""

from __future__ import annotations

import os
import re
import resource
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from tests.cli.conftest import KTL_LSP, into_a_closed_pipe, ktl_lsp


def test_a_reader_that_leaves_stops_the_copy_not_the_recording(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    gone = into_a_closed_pipe("--store", store, "run", "--", "seq", "20000")
    assert gone.returncode == 0 and "Traceback" not in gone.stderr, gone.stderr
    sid = re.search(r"session (\S+) done", gone.stderr).group(1)  # type: ignore[union-attr]
    recorded = ktl_lsp("--store", store, "sessions", "output", sid, "--plain").stdout
    assert recorded.splitlines()[-1] == "20000"


def test_a_store_warning_is_said_once(tmp_path: Path) -> None:
    store = tmp_path / "corrupt.db"
    store.write_bytes(b"definitely not sqlite " * 500)
    ran = ktl_lsp("--store", str(store), "run", "--", "echo", "works anyway")
    assert ran.returncode == 0 and ran.stdout == "works anyway\n"
    warnings = [line for line in ran.stderr.splitlines() if "session store" in line]
    assert warnings == [
        f"ktl-lsp: recording is off: {store} is not a usable session store (file is not a "
        "database); move it aside or choose another path with --store / KTL_LSP_STORE"
    ]


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        tmp_path.chmod(0o555)
        return tmp_path
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("needs /sys, where even root cannot create files, when run as root")
    return Path("/sys")


def test_a_store_that_cannot_be_created_says_why(unwritable_dir: Path) -> None:
    store = unwritable_dir / "sessions.db"
    ran = ktl_lsp("--store", str(store), "run", "--", "true")
    assert ran.returncode == 0
    warnings = [line for line in ran.stderr.splitlines() if "session store" in line]
    assert warnings == [
        f"ktl-lsp: recording is off: cannot create session store {store}: the directory "
        f"{unwritable_dir} is not writable; choose another path with --store / KTL_LSP_STORE"
    ]


def test_a_command_that_cannot_start_exits_as_in_a_shell(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("echo hi\n")
    for argv, status in (
        (["/nonexistent"], 127),
        (["no-such-command-anywhere"], 127),
        ([str(not_executable)], 126),
        ([str(tmp_path)], 126),  # a directory
        (["sh", "-c", "exit 3"], 3),
    ):
        ran = ktl_lsp("--store", store, "run", "--", *argv)
        assert ran.returncode == status, (argv, ran.stderr)


def test_a_run_on_a_full_disk_is_recorded_once_there_is_space(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    go = tmp_path / "go"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def no_room() -> None:  # every write of the store fails, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))

    command = f"echo start; while [ ! -e {go} ]; do sleep 0.02; done; echo end"
    proc = subprocess.Popen(
        [KTL_LSP, "--store", str(store), "run", "--quiet", "--", "sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=no_room,
        env={**os.environ, "KTL_LSP_STORE_RETRY_S": "0.05,0.2"},
    )
    guard = threading.Timer(30, proc.kill)
    guard.start()
    said: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            said.append(line)
            if "recording is off" in line:
                resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
            if "recording resumed" in line:
                break
        go.touch()
        _, rest = proc.communicate(timeout=30)
    finally:
        go.touch()
        guard.cancel()
    said.extend(rest.splitlines(keepends=True))
    assert proc.returncode == 0, said
    assert len([line for line in said if "recording is off" in line]) == 1, said
    assert len([line for line in said if "recording resumed" in line]) == 1, said
    sid = re.search(r"session (\S+) done", "".join(said)).group(1)  # type: ignore[union-attr]
    shown = ktl_lsp("--store", str(store), "sessions", "output", sid, "--plain")
    assert shown.stdout.splitlines() == ["start", "end"], shown
    db = sqlite3.connect(store)
    try:
        assert db.execute(
            "SELECT state, exit_code FROM sessions WHERE id=?", (sid,)
        ).fetchone() == (
            "done",
            0,
        )
    finally:
        db.close()
