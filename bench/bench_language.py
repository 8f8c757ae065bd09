"""Hover speed through the real server on the 70k-line file of bench_diagnostics.py, with
yaml-language-server (same schema, same position) in the same run as the baseline.

Opens the generated 2,000-Deployment file, waits for its diagnostics (both servers have parsed
it), then asks for hover on `image` inside document 1,000 N times and prints the median; then
edits that document and asks at once (the answer must be about the edited text).

    .venv/bin/python bench/bench_language.py [--deployments 2000] [-n 50] [--no-yamlls]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_diagnostics import _bundled_schema, _install_yamlls, _Lsp, generate


def _position(text: str, document: int) -> tuple[int, int]:
    """(line, character) on the `image` key of the container of `document`."""
    lines = text.split("\n")
    name = f"  name: app-{document}"
    start = lines.index(name)
    line = next(n for n in range(start, len(lines)) if lines[n].strip().startswith("image:"))
    return line, lines[line].index("image") + 2


def _hover_text(reply: dict[str, Any] | None) -> str:
    result = (reply or {}).get("result") or {}
    contents = result.get("contents")
    if isinstance(contents, dict):
        return str(contents.get("value", ""))
    if isinstance(contents, list):
        return " ".join(c if isinstance(c, str) else str(c.get("value", "")) for c in contents)
    return str(contents or "")


def bench_server(
    lsp: _Lsp, path: Path, text: str, where: tuple[int, int], count: int, settings: Any = None
) -> dict[str, Any] | None:
    ident = lsp.send(
        "initialize",
        {
            "processId": os.getpid(),
            "rootUri": None,
            "capabilities": {"workspace": {"configuration": True}},
        },
        request=True,
    )
    if lsp.wait(lambda m: m.get("id") == ident, 60) is None:
        return None
    lsp.send("initialized", {})
    if settings is not None:
        lsp.settings = settings
        lsp.send("workspace/didChangeConfiguration", {"settings": settings})
    uri = path.as_uri()
    lsp.send(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
    )
    published = lsp.wait(
        lambda m: (
            m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
        ),
        180,
    )
    if published is None:
        return None

    def hover(line: int, character: int) -> tuple[float, str]:
        start = time.perf_counter()
        ident = lsp.send(
            "textDocument/hover",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
            request=True,
        )
        reply = lsp.wait(lambda m: m.get("id") == ident, 60)
        return time.perf_counter() - start, _hover_text(reply)

    hover(*where)  # first answer: schema descriptions load
    times = []
    answer = ""
    for _ in range(count):
        elapsed, answer = hover(*where)
        times.append(elapsed)
    # Edit the same document (rename its image key's container) and ask at once.
    lines = text.split("\n")
    line, character = where
    lines.insert(line, " " * (lines[line].index("image")) + "imagePullPolicy: Always")
    lsp.send(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": "\n".join(lines)}],
        },
    )
    edited_s, edited = hover(line, character)
    return {
        "median_s": statistics.median(times),
        "answer": answer,
        "edited_s": edited_s,
        "edited": edited,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=2000)
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--no-yamlls", action="store_true")
    args = parser.parse_args()
    text = generate(args.deployments)
    target = min(1000, args.deployments - 1)
    where = _position(text, target)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deployments.yaml"
        path.write_text(text)
        print(
            f"file: {args.deployments} Deployments, {text.count(chr(10)) + 1} lines; "
            f"hover at {where[0] + 1}:{where[1] + 1} (document {target}), median of {args.n}"
        )
        ktl = _Lsp([sys.executable, "-m", "ktl_lsp", "--store", str(Path(tmp) / "s.db")])
        try:
            ours = bench_server(ktl, path, text, where, args.n)
        finally:
            ktl.close()
        assert ours is not None, "ktl-lsp did not answer"
        assert ours["answer"].startswith("**image** `string`"), ours["answer"]
        assert ours["edited"].startswith("**imagePullPolicy**"), ours["edited"]
        print(f"ktl-lsp hover:                   {ours['median_s'] * 1000:7.2f} ms")
        print(f"ktl-lsp edit then hover at once: {ours['edited_s'] * 1000:7.2f} ms")
        if args.no_yamlls:
            print("yaml-language-server: skipped (--no-yamlls)")
            return
        binary = _install_yamlls()
        if binary is None:
            print("yaml-language-server: skipped (not installable)")
            return
        schema = Path(tmp) / "deployment.schema.json"
        _bundled_schema(schema)
        settings = {
            "yaml": {
                "schemas": {schema.as_uri(): "*.yaml"},
                "validate": True,
                "hover": True,
                "maxItemsComputed": 10**7,
            }
        }
        yamlls = _Lsp([str(binary), "--stdio"])
        try:
            theirs = bench_server(yamlls, path, text, where, args.n, settings)
        except (OSError, subprocess.SubprocessError) as error:
            print(f"yaml-language-server: skipped ({error})")
            return
        finally:
            yamlls.close()
        if theirs is None:
            print("yaml-language-server: skipped (no diagnostics in time)")
            return
        print(
            f"yaml-language-server hover:      {theirs['median_s'] * 1000:7.2f} ms "
            f"(ktl-lsp takes {ours['median_s'] / theirs['median_s']:.2f}x its time)"
        )
        print(f"yaml-language-server edit then hover: {theirs['edited_s'] * 1000:7.2f} ms")
        print(f"  its answer: {theirs['answer'][:100]!r}")


if __name__ == "__main__":
    main()
