"""The VS Code extension (editors/vscode): type check, bundle, unit tests and the end-to-end test
(a Node client on vscode-languageserver-protocol driving the real server), then the .vsix.

Without node/npm or node_modules (scripts/system-deps runs npm ci): skipped locally, a failure
in CI (CI=true).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.needs import unavailable

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "editors" / "vscode"
SERVER = Path(sys.executable).with_name("ktl-lsp")


_missing = unavailable


@pytest.fixture(scope="module")
def npm() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _missing("node/npm not installed (scripts/system-deps installs them)")
    assert npm is not None
    if not (EXT / "node_modules" / ".bin" / "tsc").exists():
        _missing("editors/vscode/node_modules missing (scripts/system-deps runs npm ci)")
    return npm


def _run(
    npm: str, *args: str, timeout: float = 120, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KTL_LSP": str(SERVER), "NO_COLOR": "1"}
    if kubeconfig is not None:
        # the e2e tests hand it to their servers as KUBECONFIG (contexts "fake" and "staging")
        env["KTL_TEST_KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [npm, *args],
        cwd=EXT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _failures(tap: str) -> str:
    """The failing subtests' blocks of node's TAP output (the tail alone hides them)."""
    lines = tap.splitlines()
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("not ok")]
    return "\n".join("\n".join(lines[i : i + 40]) for i in starts)[:12000]


def test_npm_test_unit_and_e2e(npm: str, kubeconfig: Path) -> None:
    proc = _run(npm, "test", kubeconfig=kubeconfig)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, _failures(out) or out[-6000:]
    assert "# fail 0" in out, out[-6000:]
    assert "a live terminal: run detached" in out  # the protocol e2e ran
    assert "Run Command as Session opens a live terminal" in out  # extension.ts over the server
    # ktl.k8s.contexts / ktl.k8s.use against the loopback cluster's kubeconfig, protocol and UI
    assert "kubernetes contexts: the status bar's text" in out
    assert "the status bar shows the kubeconfig's context" in out
    # exec and port-forward against pod web-1 of the loopback cluster: ran, not skipped
    for name in (
        "kubernetes exec: a detached ktl.exec into pod web-1 streams sessionData",
        "kubernetes exec: the extension's terminal (SessionTerminal execInto) on pod web-1",
        "kubernetes port-forward: ktl.portForward to pod web-1 port 80 answers over node:http",
        "kubernetes list: ktl.k8s.list gives pod web-1 (target pod/web-1) and Service web",
        "quick picks from the cluster (ktl.k8s.list): Exec into pod/web-1",
        # the language features over the real server, and the feature switches through extension.ts
        "completion: a container's keys (not the ones present)",
        "quick fix: the misspelled `replica:` becomes `replicas:`",
        "beside the YAML extension: told once; Turn Off ktl's",
        "both on: asked once, the YAML extension's off",
        # the host behaves as VS Code where the extension depends on it
        "the client announces what vscode-languageclient 9 sends",
        "menus follow their when clauses",
        "Open Replay from a lens or menu: the server's window/showDocument",
        "CodeLens switched off in the settings: the server asks the client to re-read",
        "files VS Code watches for the server",
        "the server crashes: the client stops",
        # sessions.persist: a session outlives its window's server, attached again with its screen
        "a session outlives its window's server and is shown again in a new one",
        # ... a shell with its blocks, and a port-forward to pod web-1, across a killed window
        "with sessions.persist on, a shell outlives its window killed with its server",
        "with sessions.persist on, a port-forward outlives its window killed with its server",
    ):
        _ran(out, name)


def _ran(out: str, name: str) -> None:
    """A node:test (TAP) line ``ok N - <name>...`` without ``# SKIP``."""
    lines = [line for line in out.splitlines() if line.startswith("ok ") and f" - {name}" in line]
    assert lines, f"{name!r} did not pass:\n{out[-6000:]}"
    assert not any("# SKIP" in line for line in lines), lines


def test_vsix_package(npm: str, tmp_path: Path) -> None:
    vsix = tmp_path / "ktl-lsp.vsix"
    proc = _run(npm, "run", "package", "--", "--out", str(vsix))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
    assert "extension/dist/extension.js" in names, names
    assert "extension/package.json" in names, names
    assert not any("node_modules" in n for n in names), "the bundle should be self-contained"
