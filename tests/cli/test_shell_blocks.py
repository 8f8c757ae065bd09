"""`ktl-lsp run -- bash` records command blocks; `sessions blocks`, `sessions search`,
`sessions diff ID#blockN` read them back."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from ptyprocess import PtyProcess

from tests.cli.conftest import KTL_LSP, ktl_lsp


def _read_until(proc: PtyProcess, needle: bytes, timeout: float = 15) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        assert time.monotonic() < deadline, seen[-500:]
        try:
            seen += proc.read(4096)
        except EOFError:
            break
    return seen


def test_run_bash_in_a_terminal_has_blocks(tmp_path: Path) -> None:
    store = tmp_path / "cli.db"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("PS1='cli$ '\n")
    env = {**os.environ, "HOME": str(home)}
    proc = PtyProcess.spawn(
        [KTL_LSP, "--store", str(store), "run", "--", "bash"], env=env, dimensions=(30, 100)
    )
    try:
        _read_until(proc, b"cli$ ")
        proc.write(b"echo cli-needle-$((6*7))\r")
        _read_until(proc, b"cli$ ")
        proc.write(b"echo cli-needle-42x; exit 2\r")
        seen = _read_until(proc, b"\x00never", timeout=15)
    finally:
        proc.close(force=True)
    sid = re.search(rb"session (\S+)", seen)
    assert sid, seen
    session = sid.group(1).decode()
    blocks = json.loads(
        ktl_lsp("--store", str(store), "sessions", "blocks", session, "--json").stdout
    )
    got = [(b["command"], b.get("exitCode")) for b in blocks["blocks"]]
    assert got[0] == ("echo cli-needle-$((6*7))", 0)
    assert got[1][0] == "echo cli-needle-42x; exit 2"
    text = ktl_lsp("--store", str(store), "sessions", "blocks", session).stdout
    assert "echo cli-needle-$((6*7))" in text
    found = ktl_lsp("--store", str(store), "sessions", "search", "cli-needle-42")
    assert found.returncode == 0
    assert f"{session}#block0@" in found.stdout and "cli-needle-42" in found.stdout
    assert ktl_lsp("--store", str(store), "sessions", "search", "nowhere-xyz").returncode == 1
    diff = ktl_lsp(
        "--store", str(store), "sessions", "diff", f"{session[:6]}#block0", f"{session}#block1"
    )
    assert diff.returncode == 1 and "+cli-needle-42x" in diff.stdout

    # One block exported as a recording of its own: its command, its output, not the rest.
    cast = ktl_lsp(
        "--store", str(store), "sessions", "export", f"{session[:6]}#block1", "-f", "asciicast"
    )
    assert cast.returncode == 0, cast.stderr
    head, *events = [json.loads(line) for line in cast.stdout.splitlines()]
    assert head["title"] == "echo cli-needle-42x; exit 2" and head["width"] == 100
    block = head["ktl"]["meta"]["block"]
    assert (block["index"], block["of"]) == (1, session)
    shown = "".join(e[2] for e in events if e[1] == "o")
    assert "cli-needle-42x" in shown and "cli-needle-42\r" not in shown
    assert all(e[0] >= 0 for e in events)
    page = tmp_path / "exports"
    page.mkdir()
    written = ktl_lsp(
        "--store",
        str(store),
        "sessions",
        "export",
        f"{session}#block0",
        "-f",
        "html",
        "-o",
        str(page),
    )
    assert written.returncode == 0, written.stderr
    [html_file] = page.iterdir()
    assert html_file.name == f"{session}_block0.html"
    assert "echo cli-needle-$((6*7))" in html_file.read_text()
    bad = ktl_lsp("--store", str(store), "sessions", "export", f"{session}#block9")
    assert bad.returncode != 0 and "block" in bad.stderr
