"""What a Neovim user sees: the plugin in a real terminal (tmux), a manifest with its diagnostic
and a live ``:KtlRun`` terminal buffer, read back from the screen.

The screen (with its colours) is rendered by xterm.js in headless Chromium to a picture; with
``KTL_DOC_IMAGES=<dir>`` it is written there, which is how ``docs/images/neovim.png`` is made (so
it shows the plugin as it is). Without tmux, nvim or the browser: skipped locally, a failure in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.needs import unavailable
from tests.web.ui_driver import Browser, missing

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "editors" / "neovim"
SERVER = Path(sys.executable).with_name("ktl-lsp")
VENDOR = ROOT / "ktl_lsp" / "web" / "vendor"
COLS, ROWS = 104, 30

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: two
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
"""
INIT = """
vim.opt.rtp:prepend({plugin!r})
vim.cmd('highlight SignColumn ctermbg=NONE')
vim.o.signcolumn = 'yes'
vim.o.laststatus = 2
vim.cmd('syntax on')
vim.diagnostic.config({{ virtual_text = true, signs = true }})
require('ktl').setup({{ cmd = {{ {server!r} }}, store = {store!r} }})
"""
RUN = (
    "for i in 1 2 3; do printf '\\033[32mstep %s\\033[0m ok\\n' $i; sleep 0.2; done; echo deployed"
)


def _need(tool: str) -> str:
    path = shutil.which(tool)
    why = None if path else f"{tool} not installed (scripts/system-deps installs it)"
    why = why or missing()
    if why:
        unavailable(why)
    assert path is not None
    return path


class Tmux:
    """One tmux server of our own (its own socket), so nothing of the user's is touched."""

    def __init__(self, tmux: str, socket: Path) -> None:
        self.base = [tmux, "-S", str(socket), "-f", "/dev/null"]

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    def screen(self, escapes: bool = False) -> str:
        return self("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "shot")

    def until(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed on the screen:\n{screen}")
            time.sleep(0.1)


async def test_neovim_shows_diagnostics_and_a_live_terminal(tmp_path: Path) -> None:
    tmux = Tmux(_need("tmux"), tmp_path / "tmux.sock")
    nvim = _need("nvim")
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    (work / "deploy.yaml").write_text(MANIFEST)
    (work / "rollout.sh").write_text(RUN)
    init = tmp_path / "init.lua"
    init.write_text(
        INIT.format(plugin=str(PLUGIN), server=str(SERVER), store=str(tmp_path / "s.db"))
    )
    env = {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "TERM": "tmux-256color",
    }
    command = " ".join(
        ["env", *(f"{k}={v}" for k, v in env.items()), nvim, "-u", str(init), "-i", "NONE"]
    )
    tmux(
        "new-session",
        "-d",
        "-s",
        "shot",
        "-x",
        str(COLS),
        "-y",
        str(ROWS),
        "-c",
        str(work),
        f"{command} deploy.yaml",
    )
    try:
        # The schema check lands on the value's line, as virtual text beside it.
        screen = tmux.until("expected integer")
        line = next(row for row in screen.splitlines() if "replicas: two" in row)
        assert "expected integer" in line, screen
        tmux("send-keys", "-t", "shot", ":KtlRun sh rollout.sh", "Enter")
        screen = tmux.until("deployed")
        assert all(f"step {i} ok" in screen for i in (1, 2, 3)), screen
        ansi = tmux.screen(escapes=True)
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True, timeout=30)
    assert "\x1b[" in ansi  # colours came through: the picture shows what the user saw

    page = tmp_path / "screen.html"
    page.write_text(
        f"""<!doctype html><meta charset="utf-8">
<link rel="stylesheet" href="{(VENDOR / "xterm.css").as_uri()}">
<style>body {{ margin: 0; background: #1e1e1e; }} #t {{ display: inline-block; padding: 8px; }}</style>
<div id="t"></div>
<script src="{(VENDOR / "xterm.min.js").as_uri()}"></script>
<script>
  const term = new Terminal({{cols: {COLS}, rows: {ROWS}, fontSize: 14,
    theme: {{background: '#1e1e1e'}}}});
  term.open(document.getElementById('t'));
  window.shown = new Promise(done => term.write({json.dumps(ansi.replace(chr(10), chr(13) + chr(10)))}, done));
  window.shown.then(() => {{ window.drawn = true; }});
</script>"""
    )
    browser = await Browser.start()
    try:
        await browser.call("goto", url=page.as_uri())
        await browser.wait("window.drawn === true")
        text = await browser.eval(
            "[...Array(term.rows).keys()].map(i => term.buffer.active.getLine(i)"
            ".translateToString(true)).join('\\n')"
        )
        assert "expected integer" in text and "deployed" in text
        box = await browser.eval(
            "(r => ({x: r.x, y: r.y, width: r.width, height: r.height}))"
            "(document.getElementById('t').getBoundingClientRect())"
        )
        shot = tmp_path / "neovim.png"
        await browser.call("screenshot", path=str(shot), clip=box)
    finally:
        await browser.close()
    assert shot.stat().st_size > 10_000
    target = os.environ.get("KTL_DOC_IMAGES")
    if target:
        shutil.copyfile(shot, Path(target) / "neovim.png")
