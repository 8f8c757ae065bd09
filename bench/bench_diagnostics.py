"""Diagnostics speed on a generated 2,000-Deployment (~70k-line) file, with same-run baselines.

Prints: cold diagnostics (fresh process state except imports), a fresh Workspace with warm
schemas, an edit inside one document re-checked, kubernetes-validate's own `validate()` per
document (the same schemas, as a ratio), and optionally yaml-language-server from npm with a
local schema (installed into ~/.cache/ktl-lsp-bench on first use; skipped when npm or the
registry is unavailable, or with --no-yamlls).

    .venv/bin/python bench/bench_diagnostics.py [--deployments 2000] [--no-yamlls]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from ktl_lsp.checks import Workspace
from ktl_lsp.checks.k8s_schemas import newest_version, schema_root

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  namespace: team-{ns}
  labels:
    app: app-{i}
    tier: backend
spec:
  replicas: 3
  selector:
    matchLabels:
      app: app-{i}
  template:
    metadata:
      labels:
        app: app-{i}
        tier: backend
    spec:
      containers:
        - name: main
          image: registry.example.com/app-{i}:1.2.{i}
          ports:
            - containerPort: 8080
              name: http
          env:
            - name: MODE
              value: production
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              cpu: "1"
              memory: 512Mi
"""


def generate(count: int) -> str:
    return "---\n".join(DEPLOYMENT.format(i=i, ns=i % 10) for i in range(count))


def timed(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_ktl(path: Path, text: str) -> dict[str, float]:
    figures: dict[str, float] = {}

    def cold() -> int:
        workspace = Workspace()
        workspace.update(path, text)
        return len(workspace.findings_for(path))

    figures["cold_first_s"], count = timed(cold)  # includes loading the version's schemas
    assert count == 0, f"unexpected findings: {count}"
    figures["cold_s"], _ = timed(cold, repeat=3)

    workspace = Workspace()
    workspace.update(path, text)
    workspace.findings_for(path)
    lines = text.split("\n")
    target = next(i for i, line in enumerate(lines) if line == "  name: app-1000")
    edits = []
    for n in range(10):
        lines[target] = f"  name: app-1000-edit{n}"
        edited = "\n".join(lines)
        start = time.perf_counter()
        workspace.update(path, edited)
        findings = workspace.findings_for(path)
        edits.append(time.perf_counter() - start)
        assert findings == [], findings
    figures["edit_median_s"] = statistics.median(edits)
    lines[target] = "  name: app-1000"
    lines[target + 6] = "  replicas: three"
    start = time.perf_counter()
    workspace.update(path, "\n".join(lines))
    errors = workspace.findings_for(path)
    figures["edit_with_error_s"] = time.perf_counter() - start
    assert [f.range.start.line for f in errors] == [target + 6], errors
    return figures


def bench_kubernetes_validate(text: str, sample: int) -> float:
    from kubernetes_validate import utils

    docs = [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader)][:sample]
    version = newest_version()
    start = time.perf_counter()
    for doc in docs:
        utils.validate(doc, version, strict=True)
    return (time.perf_counter() - start) / len(docs)


# -- yaml-language-server (optional) ------------------------------------------------------------


def _bundled_schema(target: Path) -> None:
    """Deployment schema with its definitions inlined, draft-07 style, for yaml-language-server."""
    root = schema_root() / f"v{newest_version()}.0-local-strict" / "_definitions.json"
    definitions = json.loads(root.read_text())["$defs"]
    text = json.dumps(definitions).replace("#/$defs/", "#/definitions/")
    text = text.replace("/api/_definitions.json#/definitions/", "#/definitions/")
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$ref": "#/definitions/io.k8s.api.apps.v1.Deployment",
        "definitions": json.loads(text),
    }
    target.write_text(json.dumps(schema))


def _install_yamlls() -> Path | None:
    npm = shutil.which("npm")
    if npm is None:
        return None
    prefix = Path.home() / ".cache" / "ktl-lsp-bench"
    binary = prefix / "node_modules" / ".bin" / "yaml-language-server"
    if not binary.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                "yaml-language-server",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0 or not binary.exists():
            print(f"  (npm install failed: {result.stderr.strip()[-200:]})")
            return None
    return binary


class _Lsp:
    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._id = 0
        self.settings: dict[str, Any] = {}

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = 0
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.messages.put(json.loads(stream.read(length)))

    def send(self, method: str, params: Any, request: bool = False) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        ident = None
        if request:
            self._id += 1
            ident = message["id"] = self._id
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return ident

    def wait(self, predicate: Any, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if "id" in message and "method" in message:  # a server request
                result: Any = None
                if message["method"] == "workspace/configuration":
                    result = [
                        self.settings.get(item.get("section", ""), None)
                        for item in message["params"]["items"]
                    ]
                reply = json.dumps(
                    {"jsonrpc": "2.0", "id": message["id"], "result": result}
                ).encode()
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(reply) + reply)
                self.proc.stdin.flush()
                continue
            if predicate(message):
                return message
        return None

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def bench_yamlls(path: Path, text: str) -> float | None:
    binary = _install_yamlls()
    if binary is None:
        return None
    schema = path.parent / "deployment.schema.json"
    _bundled_schema(schema)
    lsp = _Lsp([str(binary), "--stdio"])
    try:
        ident = lsp.send(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": path.parent.as_uri(),
                "capabilities": {"workspace": {"configuration": True}},
            },
            request=True,
        )
        if lsp.wait(lambda m: m.get("id") == ident, 60) is None:
            return None
        lsp.send("initialized", {})
        lsp.settings = {
            "yaml": {
                "schemas": {schema.as_uri(): "*.yaml"},
                "validate": True,
                "maxItemsComputed": 10**7,
            }
        }
        lsp.send("workspace/didChangeConfiguration", {"settings": lsp.settings})
        uri = path.as_uri()
        start = time.perf_counter()
        lsp.send(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
        )
        reply = lsp.wait(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
            ),
            120,
        )
        elapsed = time.perf_counter() - start
        if reply is None:
            return None
        print(f"  yaml-language-server diagnostics: {len(reply['params']['diagnostics'])}")
        return elapsed
    finally:
        lsp.close()


def bench_ktl_editor(path: Path, text: str, rounds: int = 10) -> dict[str, float] | None:
    """An edit inside one document as the editor sees it: `didChange` (one line replaced,
    incremental) -> `publishDiagnostics` for that version, through the real server; then a burst
    of 20 changes sent at once, which must give the last version's diagnostics (coalesced, not
    a queue of checks)."""
    lsp = _Lsp([sys.executable, "-m", "ktl_lsp", "--store", str(path.parent / "s.db")])
    try:
        ident = lsp.send(
            "initialize",
            {"processId": os.getpid(), "rootUri": None, "capabilities": {}},
            request=True,
        )
        if lsp.wait(lambda m: m.get("id") == ident, 60) is None:
            return None
        lsp.send("initialized", {})
        uri = path.as_uri()
        lsp.send(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
        )

        def published(version: int) -> Any:
            return lambda m: (
                m.get("method") == "textDocument/publishDiagnostics"
                and m["params"]["uri"] == uri
                and m["params"].get("version") == version
            )

        if lsp.wait(published(1), 120) is None:
            return None
        lines = text.split("\n")
        target = next(i for i, line in enumerate(lines) if line == "  name: app-1000")
        width = len(lines[target])
        version = 1

        def change(n: int) -> dict[str, Any]:
            nonlocal width
            new = f"  name: app-1000-e{n}"
            edit = {
                "range": {
                    "start": {"line": target, "character": 0},
                    "end": {"line": target, "character": width},
                },
                "text": new,
            }
            width = len(new)
            return edit

        times = []
        for n in range(rounds):
            version += 1
            start = time.perf_counter()
            lsp.send(
                "textDocument/didChange",
                {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change(n)]},
            )
            if lsp.wait(published(version), 30) is None:
                return None
            times.append(time.perf_counter() - start)
            time.sleep(0.05)
        burst_start = time.perf_counter()
        for n in range(20):
            version += 1
            lsp.send(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [change(100 + n)],
                },
            )
        seen: list[int] = []

        def last(m: dict[str, Any]) -> bool:
            if m.get("method") == "textDocument/publishDiagnostics":
                seen.append(m["params"].get("version"))
            return bool(published(version)(m))

        if lsp.wait(last, 30) is None:
            return None
        return {
            "editor_edit_median_s": statistics.median(times),
            "editor_burst_s": time.perf_counter() - burst_start,
            "burst_publishes": float(len(seen)),
        }
    finally:
        lsp.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=2000)
    parser.add_argument("--validate-sample", type=int, default=200)
    parser.add_argument("--no-yamlls", action="store_true")
    args = parser.parse_args()
    text = generate(args.deployments)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deployments.yaml"
        path.write_text(text)
        print(
            f"file: {args.deployments} Deployments, {text.count(chr(10)) + 1} lines, {len(text) / 1e6:.2f} MB"
        )
        ktl = bench_ktl(path, text)
        print(
            f"ktl-lsp cold (first in process, schemas load): {ktl['cold_first_s'] * 1000:8.1f} ms"
        )
        print(f"ktl-lsp cold (fresh Workspace, best of 3):     {ktl['cold_s'] * 1000:8.1f} ms")
        print(
            f"ktl-lsp edit in one document, re-check:        {ktl['edit_median_s'] * 1000:8.1f} ms (median of 10)"
        )
        print(
            f"ktl-lsp edit introducing an error:             {ktl['edit_with_error_s'] * 1000:8.1f} ms"
        )
        editor = bench_ktl_editor(path, text)
        if editor is None:
            print("ktl-lsp through the server: no diagnostics in time")
        else:
            ratio = editor["editor_edit_median_s"] / ktl["edit_median_s"]
            print(
                f"ktl-lsp didChange -> publishDiagnostics:        "
                f"{editor['editor_edit_median_s'] * 1000:8.1f} ms (median of 10; "
                f"{ratio:.2f}x the in-process re-check above, the real limit)"
            )
            print(
                f"ktl-lsp burst of 20 changes -> last version:   "
                f"{editor['editor_burst_s'] * 1000:8.1f} ms, "
                f"{editor['burst_publishes']:.0f} publish(es) on the way"
            )
        per_doc = bench_kubernetes_validate(text, args.validate_sample)
        projected = per_doc * args.deployments
        print(
            f"kubernetes-validate validate(): {per_doc * 1000:.2f} ms/doc, "
            f"{projected:.2f} s projected for the file; ktl-lsp cold is {projected / ktl['cold_s']:.1f}x faster"
        )
        if args.no_yamlls:
            print("yaml-language-server: skipped (--no-yamlls)")
            return
        try:
            yamlls = bench_yamlls(path, text)
        except (OSError, subprocess.SubprocessError) as error:
            print(f"yaml-language-server: skipped ({error})")
            return
        if yamlls is None:
            print("yaml-language-server: skipped (not installable or no diagnostics in time)")
        else:
            print(
                f"yaml-language-server didOpen -> diagnostics:  {yamlls * 1000:8.1f} ms; "
                f"ktl-lsp cold takes {ktl['cold_s'] / yamlls:.2f}x its time"
            )


if __name__ == "__main__":
    main()
