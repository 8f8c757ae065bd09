"""Sessions that outlive Neovim (``sessions.persist``): a real headless Neovim runs a session,
is killed with its language server (its whole process group), and a new one finds the session
still running, opens it with its screen back and new output live (editors/neovim/tests/host.lua).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.editors.neovims import neovim, neovim_env
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


@pytest.mark.parametrize("which", ["recent"])
def test_a_session_outlives_neovim_and_reopens_with_its_screen(
    which: str, tmp_path: Path, host_env: dict[str, str]
) -> None:
    nvim = neovim(which)
    (tmp_path / ".git").mkdir()
    (tmp_path / "cm.yaml").write_text(MANIFEST)
    first_out = tmp_path / "first.json"
    env = neovim_env(tmp_path, KTL_MANIFEST=str(tmp_path / "cm.yaml"), **host_env)
    first = _nvim(nvim, tmp_path, {**env, "KTL_PHASE": "start", "KTL_RESULTS": str(first_out)})
    try:
        started = _results(first_out, first, 60)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the editor and its language server, at once
        first.communicate()
    assert started["checks"]["ticking"]["ok"], started["checks"]["ticking"]["detail"]

    time.sleep(1.0)  # output goes on being recorded with no editor at all
    again_out = tmp_path / "again.json"
    again = _nvim(
        nvim,
        tmp_path,
        {
            **env,
            "KTL_PHASE": "reopen",
            "KTL_RESULTS": str(again_out),
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
    checks = _results(again_out, again, 1)["checks"]
    for name in ("listed_running", "screen_back_and_live", "from_the_screen", "cancelled"):
        assert checks[name]["ok"], f"{name}: {checks[name]['detail']}"
    assert ktl_lsp(Path(env["KTL_STORE"]), "host", "--status").returncode == 0
