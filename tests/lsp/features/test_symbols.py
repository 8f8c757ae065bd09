"""Document symbols end to end: Kubernetes documents, their keys and containers, stack releases
and plan nodes, from a real server process; empty answers for bad input."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.conftest import Ktl, StartKtl
from tests.lsp.features.test_codelens import STACK, open_doc, write
from tests.lsp.features.test_diagnostics import workspace_checked

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: migrate:1
      containers:
        - name: web
          image: nginx
        - name: sidecar
          image: envoy
---
# only a comment: no symbol
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 1 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: busybox}]
"""

Tree = tuple[str, str, lsp.SymbolKind, list["Tree"]]


async def symbols(ktl: Ktl, uri: str) -> list[lsp.DocumentSymbol]:
    result = await ktl.client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    assert result is None or all(isinstance(s, lsp.DocumentSymbol) for s in result)
    return [s for s in result or [] if isinstance(s, lsp.DocumentSymbol)]


def tree(symbol: lsp.DocumentSymbol) -> Tree:
    """(name, detail, kind, children), checking that every selection lies inside its range."""
    rng, sel = symbol.range, symbol.selection_range
    assert (rng.start.line, rng.start.character) <= (sel.start.line, sel.start.character)
    assert (sel.end.line, sel.end.character) <= (rng.end.line, rng.end.character)
    children = [tree(c) for c in symbol.children or []]
    return symbol.name, symbol.detail or "", symbol.kind, children


P, S = lsp.SymbolKind.Property, lsp.SymbolKind.Struct


async def test_kubernetes_documents_keys_and_containers(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "app.yaml", MANIFESTS))
    got = await symbols(ktl, uri)
    assert [tree(s) for s in got] == [
        (
            "Deployment/web",
            "shop",
            lsp.SymbolKind.Object,
            [
                ("apiVersion", "", P, []),
                ("kind", "", P, []),
                ("metadata", "", P, []),
                (
                    "spec",
                    "",
                    P,
                    [
                        ("migrate", "initContainer migrate:1", S, []),
                        ("web", "nginx", S, []),
                        ("sidecar", "envoy", S, []),
                    ],
                ),
            ],
        ),
        (
            "Service/web",
            "",
            lsp.SymbolKind.Object,
            [
                ("apiVersion", "", P, []),
                ("kind", "", P, []),
                ("metadata", "", P, []),
                ("spec", "", P, []),
            ],
        ),
        (
            "CronJob/nightly",
            "",
            lsp.SymbolKind.Object,
            [
                ("apiVersion", "", P, []),
                ("kind", "", P, []),
                ("metadata", "", P, []),
                ("spec", "", P, [("job", "busybox", S, [])]),
            ],
        ),
    ]
    deployment, service, cron = got
    assert (deployment.range.start.line, deployment.range.end.line) == (0, 16)
    assert deployment.selection_range.start.line == 3  # metadata.name
    assert (service.range.start.line, cron.range.start.line) == (19, 25)
    container = (deployment.children or [])[3].children or []
    assert [c.range.start.line for c in container] == [9, 12, 14]


async def test_stack_releases_and_plan_nodes(ktl: Ktl, tmp_path: Path) -> None:
    write(tmp_path, "charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    stack = open_doc(ktl, write(tmp_path, "stack.yaml", STACK))
    assert [(s.name, s.detail, s.kind, s.range.start.line) for s in await symbols(ktl, stack)] == [
        ("api", "release", lsp.SymbolKind.Module, 4),
        ("db", "release", lsp.SymbolKind.Module, 7),
    ]
    plan = "name: ci\nnodes:\n  - id: build\n    run: make\n  - id: test\n    deps: [build]\n"
    uri = open_doc(ktl, write(tmp_path, "ktl-plan.yaml", plan))
    assert [(s.name, s.kind, s.range.start.line) for s in await symbols(ktl, uri)] == [
        ("build", lsp.SymbolKind.Function, 2),
        ("test", lsp.SymbolKind.Function, 4),
    ]


async def test_symbols_follow_the_current_text(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(
        ktl, write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")
    )
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                lsp.TextDocumentContentChangeWholeDocument(
                    text="apiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n"
                )
            ],
        )
    )
    assert [s.name for s in await symbols(ktl, uri)] == ["Secret/b"]


async def test_bad_input_is_an_empty_list(ktl: Ktl, tmp_path: Path) -> None:
    assert await symbols(ktl, (tmp_path / "never-opened.yaml").as_uri()) == []
    binary = open_doc(ktl, tmp_path / "blob.yaml", "apiVersion: v1\x00\x01")
    assert await symbols(ktl, binary) == []
    broken = open_doc(ktl, write(tmp_path, "broken.yaml", "apiVersion: v1\nkind: [\n"))
    assert await symbols(ktl, broken) == []
    uri = open_doc(ktl, write(tmp_path, "app.yaml", MANIFESTS))
    assert len(await symbols(ktl, uri)) == 3  # still answering


async def test_workspace_symbols_find_every_object_fuzzily(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    """Objects of files never opened are found too (the workspace folders are read)."""
    (tmp_path / "apps").mkdir()
    write(tmp_path / "apps", "web.yaml", MANIFESTS)
    write(
        tmp_path,
        "config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\ndata: {a: b}\n",
    )
    ktl = await start_ktl()
    await workspace_checked(ktl)

    async def query(text: str) -> list[lsp.SymbolInformation]:
        found = await ktl.client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query=text))
        assert isinstance(found, list)
        return [s for s in found if isinstance(s, lsp.SymbolInformation)]

    names = [s.name for s in await query("web")]
    # whole names first (shorter first), then names it begins
    assert names.index("Deployment/web") < names.index("ConfigMap/web-settings")
    assert names.index("Service/web") < names.index("ConfigMap/web-settings")
    deployment = next(s for s in await query("dplweb") if s.name == "Deployment/web")
    assert deployment.container_name == "shop"
    assert deployment.location.uri == (tmp_path / "apps" / "web.yaml").as_uri()
    assert deployment.location.range.start.line == 3  # `name: web`
    assert [s.name for s in await query("zzz")] == []
    everything = await query("")
    assert {"Deployment/web", "ConfigMap/web-settings"} <= {s.name for s in everything}
