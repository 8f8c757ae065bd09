"""CodeLens end to end: titles, commands and arguments from a real server process."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from tests.conftest import Ktl


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def open_doc(ktl: Ktl, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    ktl.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri, language_id="yaml", version=1, text=text or path.read_text()
            )
        )
    )
    return uri


async def lenses(ktl: Ktl, uri: str) -> list[lsp.CodeLens]:
    result = await ktl.client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    return list(result or [])


def brief(lens: lsp.CodeLens) -> tuple[int, str, str, Any]:
    assert lens.range.start.line == lens.range.end.line
    assert lens.command is not None
    arguments = list(lens.command.arguments or [])
    return (lens.range.start.line, lens.command.title, lens.command.command, arguments)


MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 8080}, {containerPort: 9090}]}]
---
# just a comment: no lens
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  containers: [{name: sh, image: busybox}]
"""


async def test_lenses_of_a_multi_document_manifest(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "app.yaml", MANIFESTS))
    got = [brief(lens) for lens in await lenses(ktl, uri)]

    def doc(index: int) -> list[dict[str, Any]]:
        return [{"uri": uri, "documents": [index]}]

    assert got == [
        (0, "Apply", "ktl.apply", doc(0)),
        (0, "Diff", "ktl.diff", doc(0)),
        (0, "Delete", "ktl.delete", doc(0)),
        (0, "Logs", "ktl.logs", [{"workload": "deployment/web", "namespace": "shop"}]),
        (0, "Verify", "ktl.verify", doc(0)),
        (0, "Exec", "ktl.exec", [{"workload": "deployment/web", "namespace": "shop"}]),
        (
            0,
            "Port-forward",
            "ktl.portForward",
            [{"workload": "deployment/web", "namespace": "shop", "ports": [":8080", ":9090"]}],
        ),
        (16, "Apply", "ktl.apply", doc(2)),
        (16, "Diff", "ktl.diff", doc(2)),
        (16, "Delete", "ktl.delete", doc(2)),
        (16, "Port-forward", "ktl.portForward", [{"service": "web", "ports": [":80"]}]),
        (24, "Apply", "ktl.apply", doc(3)),
        (24, "Diff", "ktl.diff", doc(3)),
        (24, "Delete", "ktl.delete", doc(3)),
        (24, "Logs", "ktl.logs", [{"pod": "debug"}]),
        (24, "Verify", "ktl.verify", doc(3)),
        (24, "Exec", "ktl.exec", [{"pod": "debug"}]),
    ]


async def test_lenses_follow_unsaved_edits(ktl: Ktl, tmp_path: Path) -> None:
    path = write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    uri = open_doc(ktl, path)
    assert [brief(lens)[:2] for lens in await lenses(ktl, uri)] == [
        (0, "Apply"),
        (0, "Diff"),
        (0, "Delete"),
    ]
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                lsp.TextDocumentContentChangePartial(
                    range=lsp.Range(
                        start=lsp.Position(line=0, character=0),
                        end=lsp.Position(line=0, character=0),
                    ),
                    text="# moved down\n---\n",
                )
            ],
        )
    )
    # Asked at once, inside the diagnostics pause: the lenses are for the new text anyway.
    got = [brief(lens) for lens in await lenses(ktl, uri)]
    assert [g[:2] for g in got] == [(2, "Apply"), (2, "Diff"), (2, "Delete")]
    assert got[0][3] == [{"uri": uri, "documents": [0]}]  # a comment before "---" is no document


STACK = """\
name: shop
defaults:
  cluster: {name: dev}
releases:
  - name: api
    chart: ./charts/app
    needs: [db]
  - name: db
    chart: ./charts/app
"""


async def test_lenses_of_a_stack_and_a_release_file(ktl: Ktl, tmp_path: Path) -> None:
    write(tmp_path, "charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    stack = open_doc(ktl, write(tmp_path, "stack.yaml", STACK))
    assert [brief(lens) for lens in await lenses(ktl, stack)] == [
        (4, "Run", "ktl.plan.run", [{"uri": stack, "nodes": ["api"]}]),
        (7, "Run", "ktl.plan.run", [{"uri": stack, "nodes": ["db"]}]),
    ]
    # A release file runs through the stack it belongs to.
    release = write(tmp_path, "svc/web/release.yaml", "name: web\nchart: ../../charts/app\n")
    got = await lenses(ktl, open_doc(ktl, release))
    assert [brief(lens) for lens in got] == [
        (0, "Run", "ktl.plan.run", [{"uri": stack, "nodes": ["web"]}])
    ]


async def test_lenses_of_a_plan(ktl: Ktl, tmp_path: Path) -> None:
    plan = """\
    name: ci
    nodes:
      - id: build
        run: [make, build]
      - id: test
        run: make test
        deps: [build]
    """
    uri = open_doc(ktl, write(tmp_path, "ktl-plan.yaml", plan))
    assert [brief(lens) for lens in await lenses(ktl, uri)] == [
        (2, "Run", "ktl.plan.run", [{"uri": uri, "nodes": ["build"]}]),
        (4, "Run", "ktl.plan.run", [{"uri": uri, "nodes": ["test"]}]),
    ]


async def test_many_lenses_are_resolved_lazily(ktl: Ktl, tmp_path: Path) -> None:
    one = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"
    text = "---\n".join(one.format(i=i) for i in range(40))  # 120 lenses
    uri = open_doc(ktl, write(tmp_path, "many.yaml", text))
    got = await lenses(ktl, uri)
    assert len(got) == 120
    assert all(lens.command is None for lens in got)
    resolved = await ktl.client.code_lens_resolve_async(got[-1])
    assert brief(resolved) == (195, "Delete", "ktl.delete", [{"uri": uri, "documents": [39]}])


async def test_no_lenses_for_files_the_checker_does_not_know(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, tmp_path / "notes.txt", "apiVersion: v1\nkind: Pod\n")
    assert await lenses(ktl, uri) == []
