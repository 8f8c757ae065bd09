"""Hover and completion speed through the real server on the 70k-line file of
bench_diagnostics.py, with yaml-language-server (same schema, same position) in the same run as
the baseline.

Opens the generated 2,000-Deployment file, waits for its diagnostics (both servers have parsed
it), then asks for hover and for completion on `image` inside document 1,000 N times each and
prints the medians; then edits that document and asks at once (the answer must be about the
edited text): hover on a new `imagePullPolicy` line, completion at the end of a half-typed
`imagePul` line (the document then does not parse). Last, for ktl-lsp only (yaml-language-server
has no Kubernetes references): a second file with a ConfigMap and a Service, an `envFrom`
reading that ConfigMap added to document 1,000, then go to definition on it and the references
of that Deployment (the Service selecting it), each the median of N, and the first answers after
the edit (the workspace's reference index is built again).

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


def _labels(reply: dict[str, Any] | None) -> list[str]:
    result = (reply or {}).get("result")
    items = result.get("items", []) if isinstance(result, dict) else (result or [])
    return [str(item.get("label")) for item in items if isinstance(item, dict)]


def _locations(reply: dict[str, Any] | None) -> list[tuple[str, int, int]]:
    result = (reply or {}).get("result") or []
    return [
        (
            str(r["uri"]).rsplit("/", 1)[-1],
            r["range"]["start"]["line"],
            r["range"]["start"]["character"],
        )
        for r in (result if isinstance(result, list) else [result])
    ]


def bench_navigation(
    lsp: _Lsp, uri: str, path: Path, text: str, document: int, count: int
) -> dict[str, Any]:
    """Definition on a configMapRef and references of a Deployment, inside `document`."""
    namespace = f"team-{document % 10}"
    config = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings-{document}, "
        f"namespace: {namespace}}}\ndata: {{mode: fast}}\n---\napiVersion: v1\nkind: Service\n"
        f"metadata: {{name: app-{document}, namespace: {namespace}}}\nspec:\n"
        f"  selector: {{app: app-{document}}}\n  ports: [{{port: 80}}]\n"
    )
    config_uri = (path.parent / "config.yaml").as_uri()
    lsp.send(
        "textDocument/didOpen",
        {"textDocument": {"uri": config_uri, "languageId": "yaml", "version": 1, "text": config}},
    )
    lsp.wait(
        lambda m: (
            m.get("method") == "textDocument/publishDiagnostics"
            and m["params"]["uri"] == config_uri
        ),
        60,
    )
    lines = text.split("\n")
    line, _ = _position(text, document)
    indent = " " * lines[line].index("image")
    reader = f"{indent}envFrom: [{{configMapRef: {{name: settings-{document}}}}}]"
    edited = [*lines[: line + 1], reader, *lines[line + 1 :]]
    lsp.send(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 4},
            "contentChanges": [{"text": "\n".join(edited)}],
        },
    )
    on_ref = (line + 1, reader.index("settings") + 2)
    name_line = lines.index(f"  name: app-{document}")
    on_name = (name_line, len("  name: ") + 2)

    def ask(method: str, at: tuple[int, int]) -> tuple[float, dict[str, Any] | None]:
        params: dict[str, Any] = {
            "textDocument": {"uri": uri},
            "position": {"line": at[0], "character": at[1]},
        }
        if method == "textDocument/references":
            params["context"] = {"includeDeclaration": False}
        start = time.perf_counter()
        ident = lsp.send(method, params, request=True)
        reply = lsp.wait(lambda m: m.get("id") == ident, 60)
        return time.perf_counter() - start, reply

    edited_s, edited_reply = ask("textDocument/definition", on_ref)
    lsp.wait(
        lambda m: (
            m.get("method") == "textDocument/publishDiagnostics"
            and m["params"]["uri"] == uri
            and m["params"].get("version") == 4
        ),
        60,
    )
    out: dict[str, Any] = {"edited_s": edited_s, "edited": _locations(edited_reply)}
    for key, method, at in (
        ("definition", "textDocument/definition", on_ref),
        ("references", "textDocument/references", on_name),
    ):
        out[f"{key}_first_s"], _ = ask(method, at)
        times, reply = [], None
        for _ in range(count):
            elapsed, reply = ask(method, at)
            times.append(elapsed)
        out[f"{key}_s"], out[key] = statistics.median(times), _locations(reply)
    return out


def bench_server(
    lsp: _Lsp,
    path: Path,
    text: str,
    where: tuple[int, int],
    count: int,
    settings: Any = None,
    navigation: int | None = None,
) -> dict[str, Any] | None:
    ident = lsp.send(
        "initialize",
        {
            "processId": os.getpid(),
            "rootUri": None,
            "capabilities": {
                "workspace": {"configuration": True},
                "textDocument": {
                    "completion": {
                        "completionItem": {
                            "snippetSupport": True,
                            "documentationFormat": ["markdown", "plaintext"],
                        }
                    }
                },
            },
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

    def ask(method: str, line: int, character: int) -> tuple[float, dict[str, Any] | None]:
        start = time.perf_counter()
        ident = lsp.send(
            method,
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
            request=True,
        )
        reply = lsp.wait(lambda m: m.get("id") == ident, 60)
        return time.perf_counter() - start, reply

    def median(method: str) -> tuple[float, dict[str, Any] | None]:
        ask(method, *where)  # first answer: schema descriptions load
        times = []
        reply = None
        for _ in range(count):
            elapsed, reply = ask(method, *where)
            times.append(elapsed)
        return statistics.median(times), reply

    hover_s, hover_reply = median("textDocument/hover")
    completion_s, completion_reply = median("textDocument/completion")
    # Edit the same document (a new key above `image`) and hover on it at once.
    lines = text.split("\n")
    line, character = where
    indent = " " * lines[line].index("image")
    edited = [*lines[:line], indent + "imagePullPolicy: Always", *lines[line:]]
    lsp.send(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": "\n".join(edited)}],
        },
    )
    edited_s, edited_reply = ask("textDocument/hover", line, character)
    # Half-type a key below `image` (the document stops parsing) and complete it at once.
    typed = [*lines[: line + 1], indent + "imagePul", *lines[line + 1 :]]
    lsp.send(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 3},
            "contentChanges": [{"text": "\n".join(typed)}],
        },
    )
    typed_s, typed_reply = ask("textDocument/completion", line + 1, len(indent) + len("imagePul"))
    nav = bench_navigation(lsp, uri, path, text, navigation, count) if navigation else None
    return {
        "navigation": nav,
        "median_s": hover_s,
        "answer": _hover_text(hover_reply),
        "edited_s": edited_s,
        "edited": _hover_text(edited_reply),
        "completion_median_s": completion_s,
        "completion": _labels(completion_reply),
        "typed_s": typed_s,
        "typed": _labels(typed_reply),
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
            ours = bench_server(ktl, path, text, where, args.n, navigation=target)
        finally:
            ktl.close()
        assert ours is not None, "ktl-lsp did not answer"
        assert ours["answer"].startswith("**image** `string`"), ours["answer"]
        assert ours["edited"].startswith("**imagePullPolicy**"), ours["edited"]
        assert "imagePullPolicy" in ours["completion"], ours["completion"]
        assert "ports" not in ours["completion"], ours["completion"]  # present: not offered
        assert "imagePullPolicy" in ours["typed"] and "image" not in ours["typed"], ours["typed"]
        print(f"ktl-lsp hover:                   {ours['median_s'] * 1000:7.2f} ms")
        print(f"ktl-lsp edit then hover at once: {ours['edited_s'] * 1000:7.2f} ms")
        print(
            f"ktl-lsp completion:              {ours['completion_median_s'] * 1000:7.2f} ms "
            f"({len(ours['completion'])} items)"
        )
        print(
            f"ktl-lsp half-typed key then completion at once: {ours['typed_s'] * 1000:7.2f} ms "
            f"({len(ours['typed'])} items)"
        )
        nav = ours["navigation"]
        config_line = 2  # the ConfigMap's name, and the Service's selector, in config.yaml
        assert nav["edited"] == nav["definition"], nav
        assert [(f, n) for f, n, _ in nav["definition"]] == [("config.yaml", config_line)], nav
        assert [(f, n) for f, n, _ in nav["references"]] == [("config.yaml", 9)], nav
        print(
            f"ktl-lsp definition (configMapRef -> ConfigMap in another file): "
            f"{nav['definition_s'] * 1000:7.2f} ms "
            f"(first after the edit: {nav['edited_s'] * 1000:.2f} ms; "
            f"first after it was checked: {nav['definition_first_s'] * 1000:.2f} ms)"
        )
        print(
            f"ktl-lsp references (Deployment -> the Service selecting it): "
            f"{nav['references_s'] * 1000:7.2f} ms "
            f"(first: {nav['references_first_s'] * 1000:.2f} ms)"
        )
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
                "completion": True,
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
        ratio = ours["completion_median_s"] / theirs["completion_median_s"]
        print(
            f"yaml-language-server completion: {theirs['completion_median_s'] * 1000:7.2f} ms "
            f"({len(theirs['completion'])} items; ktl-lsp takes {ratio:.2f}x its time)"
        )
        print(
            f"yaml-language-server half-typed key then completion: "
            f"{theirs['typed_s'] * 1000:7.2f} ms ({len(theirs['typed'])} items, "
            f"imagePullPolicy offered: {'imagePullPolicy' in theirs['typed']})"
        )


if __name__ == "__main__":
    main()
