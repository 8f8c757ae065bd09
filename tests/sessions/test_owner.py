"""Who records a session: a live process on this host, told apart from a reused PID and from
another host's process, so a store opened after a crash marks only what really died."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktl_lsp.sessions.model import Session, State
from ktl_lsp.sessions.owner import _start_ticks, current_owner, owner_alive
from ktl_lsp.sessions.store import Store

HOST = socket.gethostname()


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_this_process_owns_its_sessions() -> None:
    assert current_owner().startswith(f"{HOST}:")
    assert owner_alive(current_owner())


def test_a_process_is_alive_until_it_exits(child: subprocess.Popen[bytes]) -> None:
    owner = f"{HOST}:{child.pid}:{_start_ticks(child.pid)}"
    assert _start_ticks(child.pid) != ""
    assert owner_alive(owner)
    child.kill()
    child.wait()
    assert not owner_alive(owner)


def test_a_reused_pid_is_not_the_owner(child: subprocess.Popen[bytes]) -> None:
    """The PID is alive, but it started at another time: a new process got the old number."""
    ticks = int(_start_ticks(child.pid))
    assert not owner_alive(f"{HOST}:{child.pid}:{ticks - 1}")
    assert not owner_alive(f"{HOST}:{child.pid}:{ticks + 100}")


def test_another_hosts_process_cannot_be_vouched_for(child: subprocess.Popen[bytes]) -> None:
    """Same PID and start time, another machine: a store copied or synced from there (SQLite's
    WAL needs one host, so that process cannot be writing to this file). It is not alive here."""
    assert not owner_alive(f"{HOST}-other:{child.pid}:{_start_ticks(child.pid)}")


@pytest.mark.parametrize("owner", ["", "nonsense", f"{HOST}:abc:1", f"{HOST}:0:1", f"{HOST}:-5:"])
def test_unreadable_owners_are_not_alive(owner: str) -> None:
    assert not owner_alive(owner)


def test_without_start_times_a_live_pid_counts(child: subprocess.Popen[bytes]) -> None:
    """Where /proc has no start time (not Linux) the PID alone decides."""
    assert owner_alive(f"{HOST}:{child.pid}:")


def test_reopening_marks_only_the_sessions_whose_owner_died(
    tmp_path: Path, child: subprocess.Popen[bytes]
) -> None:
    store = Store(tmp_path / "s.db")
    store.open()
    for sid in ("mine", "child", "reused", "elsewhere"):
        store.save_session(Session(id=sid, kind="pty", title=sid))
    store.flush_sync()
    ticks = _start_ticks(child.pid)
    owners = {
        "child": f"{HOST}:{child.pid}:{ticks}",
        "reused": f"{HOST}:{child.pid}:{int(ticks) + 7}",
        "elsewhere": f"{HOST}-other:{child.pid}:{ticks}",
    }
    with sqlite3.connect(tmp_path / "s.db") as db:
        db.executemany(
            "UPDATE sessions SET owner = ? WHERE id = ?", [(o, s) for s, o in owners.items()]
        )
    assert store.mark_interrupted() == 2
    states = {sid: store.get_session(sid).state for sid in ("mine", "child", "reused", "elsewhere")}  # type: ignore[union-attr]
    assert states == {
        "mine": State.RUNNING,
        "child": State.RUNNING,
        "reused": State.INTERRUPTED,
        "elsewhere": State.INTERRUPTED,
    }
    store.close()


def test_a_killed_process_not_reaped_yet_is_not_alive() -> None:
    """A zombie still answers kill(pid, 0) with its start time, until its parent waits."""
    proc = subprocess.Popen(["sleep", "30"])
    try:
        owner = f"{HOST}:{proc.pid}:{_start_ticks(proc.pid)}"
        proc.kill()
        for _ in range(200):  # until the kernel has made it a zombie (not waited for here)
            if Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.01)
        assert not owner_alive(owner)
    finally:
        proc.wait()
