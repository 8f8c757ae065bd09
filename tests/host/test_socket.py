"""Who may use the session host's socket, and what happens to one left behind or raced for."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.host.protocol import HostPaths
from tests.host.conftest import StartPersisting, alive, host_pid, ktl_lsp

NOBODY = 65534


def dead_socket(path: Path) -> None:
    """A socket file nobody listens on any more (what a killed host leaves)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


async def test_a_stale_socket_is_replaced_and_the_new_one_is_owner_only(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    store = tmp_path / "stale.db"
    paths = HostPaths.of(store)
    dead_socket(paths.socket)
    os.chmod(paths.directory, 0o755)  # too open: tightened, since it is ours
    ktl = await persisting(store)
    done = await ktl.cmd("ktl.run", {"command": "echo through-the-host"})
    assert done["state"] == "done"
    out = await ktl.cmd("ktl.session.output", {"sessionId": done["sessionId"], "plain": True})
    assert "through-the-host" in "".join(f["data"] for f in out["frames"])
    assert stat.S_IMODE(os.stat(paths.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths.socket).st_mode) == 0o600
    assert stat.S_ISSOCK(os.stat(paths.socket).st_mode)
    assert host_pid(store) is not None


async def test_two_hosts_racing_to_start_one_serves(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "race.db"
    argv = [sys.executable, "-m", "ktl_lsp", "--store", str(store), "host"]
    racers = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for _ in range(200):
        if sum(p.poll() is not None for p in racers) == 2:
            break
        await asyncio.sleep(0.05)
    serving = [p for p in racers if p.poll() is None]
    assert len(serving) == 1
    for p in racers:
        if p is not serving[0]:
            _, err = p.communicate()
            assert p.returncode == 0
            assert "a host already serves this store" in err
    for _ in range(100):
        if host_pid(store) is not None:
            break
        await asyncio.sleep(0.05)
    assert host_pid(store) == serving[0].pid
    assert ktl_lsp(store, "host", "--stop").returncode == 0
    serving[0].communicate(timeout=10)
    assert serving[0].returncode == 0


@pytest.mark.skipif(os.getuid() != 0, reason="making a file of another user needs root")
async def test_a_socket_or_directory_of_another_user_is_refused(
    persisting: StartPersisting, tmp_path: Path
) -> None:
    store = tmp_path / "foreign.db"
    paths = HostPaths.of(store)
    dead_socket(paths.socket)
    os.chown(paths.socket, NOBODY, NOBODY)
    ktl = await persisting(store)
    with pytest.raises(JsonRpcInvalidParams, match="belongs to another user"):
        await ktl.cmd("ktl.run", {"argv": ["true"]})
    refused = ktl_lsp(store, "host")
    assert refused.returncode == 1 and "belongs to another user" in refused.stderr
    assert paths.socket.exists(), "another user's socket is left alone"
    # Persistence off: sessions run in the language server as before, whatever the socket.
    plain = await persisting(tmp_path / "plain.db", options={})
    assert (await plain.cmd("ktl.run", {"argv": ["true"]}))["state"] == "done"

    os.unlink(paths.socket)
    os.chown(paths.directory, NOBODY, NOBODY)
    with pytest.raises(JsonRpcInvalidParams, match="belongs to another user"):
        await ktl.cmd("ktl.run", {"argv": ["true"]})
    os.chown(paths.directory, 0, 0)
    assert not any(alive(p) for p in _hosts_of(store))


def _hosts_of(store: Path) -> list[int]:
    pid = host_pid(store)
    return [pid] if pid is not None else []
