"""Sessions that outlive Neovim (``sessions.persist``): a real headless Neovim runs a session,
is killed with its language server (its whole process group), and a new one finds the session
still running, opens it with its screen back and new output live (editors/neovim/tests/host.lua);
the same for a shell with command blocks and for a port-forward to the loopback API server's pod
(editors/neovim/tests/host_kinds.lua).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.editors.neovims import NEOVIMS, neovim, neovim_env
from tests.host.conftest import host_env, ktl_lsp
from tests.needs import unavailable

__all__ = ["host_env"]  # the fixture: this test's directory for the session host's socket

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "editors" / "neovim"
MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"


def _nvim(nvim: str, tmp: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    script = env.get("KTL_SCRIPT", "host.lua")
    return subprocess.Popen(
        [
            *(nvim, "--headless", "-u", "NONE", "-i", "NONE", "--cmd", f"set rtp^={PLUGIN}"),
            *("-c", f"luafile {PLUGIN / 'tests' / script}"),
        ],
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, the language server in it
    )


def _results(path: Path, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            error = data["checks"].get("lua_error")
            assert error is None, f"the Lua test failed: {error['detail']}"
            return data
        assert proc.poll() is None, f"nvim ended with no results: {proc.communicate()[1]}"
        time.sleep(0.1)
    raise AssertionError("nvim wrote no results in time")


def _start_and_kill(
    nvim: str, tmp: Path, env: dict[str, str], phase: str = "start", check: str = "ticking"
) -> dict[str, Any]:
    """The first Neovim: a session started (a ticking one by default), then Neovim killed with
    its language server."""
    first_out = tmp / "first.json"
    first = _nvim(nvim, tmp, {**env, "KTL_PHASE": phase, "KTL_RESULTS": str(first_out)})
    try:
        started = _results(first_out, first, 60)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the editor and its language server, at once
        first.communicate()
    assert started["checks"][check]["ok"], started["checks"][check]["detail"]
    return started


def _again(
    nvim: str, tmp: Path, env: dict[str, str], phase: str, started: dict[str, Any], **extra: str
) -> Any:
    """The checks of a new Neovim in ``phase``, on the session the first one started."""
    out = tmp / f"{phase}.json"
    again = _nvim(
        nvim,
        tmp,
        {
            **env,
            "KTL_PHASE": phase,
            "KTL_RESULTS": str(out),
            "KTL_SESSION": started["sessionId"],
            "KTL_LAST_TICK": str(started.get("lastTick")),
            **extra,
        },
    )
    try:
        again.wait(90)
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGKILL)
        again.communicate()
    return _results(out, again, 1)


def _workspace(tmp: Path, host_env: dict[str, str], **extra: str) -> dict[str, str]:
    (tmp / ".git").mkdir()
    (tmp / "cm.yaml").write_text(MANIFEST)
    return neovim_env(tmp, KTL_MANIFEST=str(tmp / "cm.yaml"), **host_env, **extra)


@pytest.mark.parametrize("which", ["recent"])
def test_a_session_outlives_neovim_and_reopens_with_its_screen(
    which: str, tmp_path: Path, host_env: dict[str, str]
) -> None:
    nvim = neovim(which)
    env = _workspace(tmp_path, host_env)
    started = _start_and_kill(nvim, tmp_path, env)

    time.sleep(1.0)  # output goes on being recorded with no editor at all
    checks = _again(nvim, tmp_path, env, "reopen", started)["checks"]
    for name in ("listed_running", "screen_back_and_live", "from_the_screen", "cancelled"):
        assert checks[name]["ok"], f"{name}: {checks[name]['detail']}"
    assert ktl_lsp(Path(env["KTL_STORE"]), "host", "--status").returncode == 0


@pytest.mark.parametrize("which", NEOVIMS)  # stdpath('state') and buffer events differ
def test_neovim_reopens_the_buffers_of_sessions_that_outlived_it(
    which: str, tmp_path: Path, host_env: dict[str, str]
) -> None:
    nvim = neovim(which)
    gate = tmp_path / "go"
    env = _workspace(tmp_path, host_env, KTL_GATE=str(gate))
    started = _start_and_kill(nvim, tmp_path, env)
    sid, gated = started["sessionId"], started["gatedId"]
    assert sorted(started["remembered"]) == sorted([sid, gated])
    state_file = Path(started["stateFile"])
    # stdpath('state'), or stdpath('data') on Neovim 0.7 (which has no 'state')
    assert state_file.parent in (
        tmp_path / "state" / "nvim" / "ktl",
        tmp_path / "data" / "nvim" / "ktl",
    )
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_file.parent.stat().st_mode) == 0o700
    gate.touch()  # the second session ends while no Neovim shows it

    time.sleep(1.0)
    got = _again(nvim, tmp_path, env, "auto", started)
    checks = got["checks"]
    for name in (
        "reopened_live",
        "from_the_screen",
        "focus_kept",
        "only_running_remembered",
        "forgotten_when_closed",
        "still_running",
    ):
        assert checks[name]["ok"], f"{name}: {checks[name]['detail']}"
    assert json.loads(state_file.read_text())["sessions"] == []


def _checks_passed(checks: dict[str, Any], *names: str) -> None:
    for name in names:
        assert name in checks, f"check {name!r} did not run: {checks}"
        assert checks[name]["ok"], f"{name}: {checks[name]['detail']}"


@pytest.mark.parametrize("which", NEOVIMS)
def test_a_shell_with_blocks_outlives_neovim_and_comes_back_with_them(
    which: str, tmp_path: Path, host_env: dict[str, str]
) -> None:
    nvim = neovim(which)
    if shutil.which("bash") is None:
        unavailable("bash is not installed")
    (tmp_path / "home").mkdir()
    env = _workspace(tmp_path, host_env, KTL_SCRIPT="host_kinds.lua", HOME=str(tmp_path / "home"))
    started = _start_and_kill(nvim, tmp_path, env, "shell-start", "two_blocks")
    # The shell is still there with no Neovim at all: its session is running in the host.
    listed = ktl_lsp(Path(env["KTL_STORE"]), "sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [shell] = [
        s for s in json.loads(listed.stdout)["sessions"] if s["sessionId"] == started["sessionId"]
    ]
    assert (shell["kind"], shell["state"]) == ("shell", "running")

    checks = _again(nvim, tmp_path, env, "shell-back", started)["checks"]
    _checks_passed(checks, "reopened", "still_running", "block_marks", "blocks_listed", "new_block")


def _answers(url: str) -> str:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(url + "/", timeout=20) as answer:
        assert answer.status == 200
        return str(answer.headers["x-pod"])


def _closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("which", ["recent"])
def test_a_port_forward_outlives_neovim_and_is_stopped_from_the_next_one(
    which: str, tmp_path: Path, host_env: dict[str, str], kubeconfig: Path
) -> None:
    nvim = neovim(which)
    env = _workspace(tmp_path, host_env, KTL_SCRIPT="host_kinds.lua", KUBECONFIG=str(kubeconfig))
    started = _start_and_kill(nvim, tmp_path, env, "forward-start", "forwarding")
    url = started["url"]
    assert _answers(url) == "web-1", "the port still answers with no Neovim"

    checks = _again(nvim, tmp_path, env, "forward-back", started, KTL_URL=url)["checks"]
    _checks_passed(checks, "listed", "stopped")
    port = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 15
    while not _closed(port):
        assert time.monotonic() < deadline, f"{url} still open after the forward was stopped"
        time.sleep(0.1)
