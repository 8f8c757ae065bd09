"""``:KtlShell`` and command blocks in a real headless Neovim against the real server: a bash
session, the exit code marks on its terminal buffer, ``:KtlBlocks`` (``<CR>`` jumps),
``:KtlBlockCopy`` and ``:KtlBlockRerun`` (editors/neovim/tests/blocks.lua does the work)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.editors.neovims import NEOVIMS, neovim, neovim_env
from tests.needs import unavailable

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "editors" / "neovim"


@pytest.fixture(scope="module", params=NEOVIMS)
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    nvim = neovim(request.param)
    if shutil.which("bash") is None:
        unavailable("bash is not installed")
    tmp = tmp_path_factory.mktemp("nvim-blocks")
    (tmp / ".git").mkdir()
    (tmp / "home").mkdir()
    (tmp / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    out = tmp / "results.json"
    env = neovim_env(
        tmp,
        KTL_RESULTS=str(out),
        KTL_MANIFEST=str(tmp / "cm.yaml"),
        HOME=str(tmp / "home"),  # bash reads no rc file of the user's
    )
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
            f"luafile {PLUGIN / 'tests' / 'blocks.lua'}",
        ],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.exists(), f"nvim wrote no results (rc {proc.returncode}):\n{proc.stderr}"
    data: dict[str, Any] = json.loads(out.read_text())
    error = data["checks"].get("lua_error")
    assert error is None, f"the Lua test failed: {error['detail']}"
    return data


def _check(results: dict[str, Any], name: str) -> None:
    check = results["checks"].get(name)
    assert check is not None, f"check {name!r} did not run (nvim {results['nvim']})"
    assert check["ok"], f"{name}: {check['detail']}"


def test_shell_marks_each_block_with_its_exit_code(results: dict[str, Any]) -> None:
    _check(results, "shell_terminal")
    _check(results, "block_marks")


def test_blocks_list_jumps_to_a_block(results: dict[str, Any]) -> None:
    _check(results, "blocks_list")
    _check(results, "blocks_jump")


def test_copy_and_rerun_a_block(results: dict[str, Any]) -> None:
    _check(results, "block_copy")
    _check(results, "block_rerun")


def test_a_block_ends_with_its_shell(results: dict[str, Any]) -> None:
    _check(results, "block_closed_with_shell")
