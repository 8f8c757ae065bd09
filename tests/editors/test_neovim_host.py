"""Sessions that outlive Neovim (``sessions.persist``): a real headless Neovim runs a session,
is killed with its language server (its whole process group), and a new one finds the session
still running, opens it with its screen back and new output live (editors/neovim/tests/host.lua).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.editors.neovims import NEOVIMS, neovim, neovim_env
from tests.host.conftest import host_env, ktl_lsp

__all__ = ["host_env"]  # the fixture: this test's directory for the session host's socket

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "editors" / "neovim"
MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"


def _nvim(nvim: str, tmp: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(nvim, "--headless", "-u", "NONE", "-i", "NONE", "--cmd", f"set rtp^={PLUGIN}"),
            *("-c", f"luafile {PLUGIN / 'tests' / 'host.lua'}"),
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


def _start_and_kill(nvim: str, tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """The first Neovim: a ticking session started, then Neovim killed with its language server."""
    first_out = tmp / "first.json"
    first = _nvim(nvim, tmp, {**env, "KTL_PHASE": "start", "KTL_RESULTS": str(first_out)})
    try:
        started = _results(first_out, first, 60)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the editor and its language server, at once
        first.communicate()
    assert started["checks"]["ticking"]["ok"], started["checks"]["ticking"]["detail"]
    return started


def _again(nvim: str, tmp: Path, env: dict[str, str], phase: str, started: dict[str, Any]) -> Any:
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
            "KTL_LAST_TICK": str(started["lastTick"]),
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
