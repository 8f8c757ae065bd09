"""``:KtlShell`` and command blocks in a real headless Neovim against the real server: a bash
session, the exit code marks on its terminal buffer, ``:KtlBlocks`` (``<CR>`` jumps),
``:KtlBlockCopy`` and ``:KtlBlockRerun`` (editors/neovim/tests/blocks.lua does the work)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.editors.neovims import NEOVIMS, check, neovim, neovim_env, run_checks
from tests.needs import unavailable


@pytest.fixture(scope="module", params=NEOVIMS)
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    nvim = neovim(request.param)
    if shutil.which("bash") is None:
        unavailable("bash is not installed")
    tmp = tmp_path_factory.mktemp("nvim-blocks")
    (tmp / ".git").mkdir()
    (tmp / "home").mkdir()
    (tmp / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    env = neovim_env(
        tmp,
        KTL_RESULTS=str(tmp / "results.json"),
        KTL_MANIFEST=str(tmp / "cm.yaml"),
        HOME=str(tmp / "home"),  # bash reads no rc file of the user's
    )
    return run_checks(nvim, "blocks.lua", tmp, env, 120)


def test_shell_marks_each_block_with_its_exit_code(results: dict[str, Any]) -> None:
    check(results, "shell_terminal")
    check(results, "block_marks")


def test_blocks_list_jumps_to_a_block(results: dict[str, Any]) -> None:
    check(results, "blocks_list")
    check(results, "blocks_jump")


def test_copy_and_rerun_a_block(results: dict[str, Any]) -> None:
    check(results, "block_copy")
    check(results, "block_rerun")


def test_a_block_ends_with_its_shell(results: dict[str, Any]) -> None:
    check(results, "block_closed_with_shell")
