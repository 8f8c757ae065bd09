"""Go to definition, find references, hover on references and workspace symbols for releases
and plan nodes, end to end through a real server process; files of the workspace folder that
are never opened count, bad input gets an empty answer."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.checks.test_references import PLAN, at
from tests.checks.test_references import spot as place
from tests.conftest import Ktl, StartKtl
from tests.lsp.features.test_codelens import open_doc, write
from tests.lsp.features.test_diagnostics import workspace_checked
from tests.lsp.features.test_hover import hover, markdown

APP = """\
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
      containers:
        - name: web
          image: nginx
          envFrom:
            - configMapRef: {name: settings}
            - secretRef: {name: creds}
          volumeMounts: [{name: files, mountPath: /etc/files}]
      volumes:
        - name: files
          configMap: {name: files}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""

CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data: {mode: fast, level: debug}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
stringData: {password: hunter2}
"""

STACK = """\
name: shop
defaults:
  cluster: {name: dev}
releases:
  - name: api
    chart: ./charts/app
    values: [values/api.yaml]
    needs: [db]
  - name: db
    chart: ./charts/app
    namespace: data
"""


def position(text: str, line_text: str, word: str) -> lsp.Position:
    """Inside `word` on the first line containing `line_text`."""
    where = at(text, line_text, word)
    return lsp.Position(line=where.line, character=where.character)


Brief = tuple[str, int, int, int]


def brief(found: object, root: Path) -> list[Brief]:
    assert isinstance(found, list | tuple)
    out = []
    for location in found:
        assert isinstance(location, lsp.Location)
        rng = location.range
        assert rng.start.line == rng.end.line
        path = Path(location.uri.removeprefix("file://")).relative_to(root)
        out.append((path.as_posix(), rng.start.line, rng.start.character, rng.end.character))
    return out


async def definition(ktl: Ktl, uri: str, where: lsp.Position) -> list[lsp.Location]:
    found = await ktl.client.text_document_definition_async(
        lsp.DefinitionParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=where)
    )
    assert isinstance(found, list | tuple)
    return [f for f in found if isinstance(f, lsp.Location)]


async def references(
    ktl: Ktl, uri: str, where: lsp.Position, declaration: bool
) -> list[lsp.Location]:
    found = await ktl.client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=where,
            context=lsp.ReferenceContext(include_declaration=declaration),
        )
    )
    assert isinstance(found, list | tuple)
    return list(found)


async def test_capabilities_are_advertised(ktl: Ktl) -> None:
    caps = ktl.server_capabilities
    assert caps is not None and caps.definition_provider and caps.references_provider


async def test_definition_of_a_config_map_ref_in_a_file_never_opened(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    write(tmp_path, "config/settings.yaml", CONFIG)
    ktl = await start_ktl()
    app = open_doc(ktl, write(tmp_path, "app.yaml", APP))
    await workspace_checked(ktl)
    found = await definition(ktl, app, position(APP, "configMapRef", "settings"))
    assert brief(found, tmp_path) == [
        ("config/settings.yaml", *place(CONFIG, "name: settings", "settings"))
    ]
    secret = await definition(ktl, app, position(APP, "secretRef", "creds"))
    assert brief(secret, tmp_path) == [
        ("config/settings.yaml", *place(CONFIG, "{name: creds", "creds"))
    ]
    assert await definition(ktl, app, position(APP, "configMap: {name: files}", "files")) == []


async def test_references_of_a_config_map_from_another_file_on_disk(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    write(tmp_path, "apps/app.yaml", APP)
    ktl = await start_ktl()
    config = open_doc(ktl, write(tmp_path, "config.yaml", CONFIG))
    await workspace_checked(ktl)
    user = ("apps/app.yaml", *place(APP, "configMapRef", "settings"))
    declaration = ("config.yaml", *place(CONFIG, "name: settings", "settings"))
    on_kind = await references(ktl, config, lsp.Position(line=1, character=8), False)
    assert brief(on_kind, tmp_path) == [user]
    on_name = await references(ktl, config, position(CONFIG, "name: settings", "settings"), True)
    assert brief(on_name, tmp_path) == [declaration, user]
    # an edit that renames the ConfigMap: its current name has no users
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=config, version=2),
            content_changes=[
                lsp.TextDocumentContentChangeWholeDocument(
                    text=CONFIG.replace("name: settings", "name: renamed")
                )
            ],
        )
    )
    assert await references(ktl, config, lsp.Position(line=3, character=9), False) == []


async def test_a_service_selector_both_ways(start_ktl: StartKtl, tmp_path: Path) -> None:
    ktl = await start_ktl()
    app = open_doc(ktl, write(tmp_path, "app.yaml", APP))
    await workspace_checked(ktl)
    workloads = await definition(ktl, app, position(APP, "selector: {app: web}", "web"))
    assert brief(workloads, tmp_path) == [("app.yaml", 3, 8, 11)]
    services = await references(ktl, app, lsp.Position(line=3, character=9), False)
    assert brief(services, tmp_path) == [("app.yaml", *place(APP, "  selector: {app", "selector"))]


async def test_stack_needs_plan_deps_and_values_paths(start_ktl: StartKtl, tmp_path: Path) -> None:
    write(tmp_path, "charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    write(tmp_path, "values/api.yaml", "replicas: 2\n")
    ktl = await start_ktl()
    stack = open_doc(ktl, write(tmp_path, "stack.yaml", STACK))
    plan = open_doc(ktl, write(tmp_path, "ktl-plan.yaml", PLAN))
    await workspace_checked(ktl)
    db = ("stack.yaml", *place(STACK, "- name: db", "db"))
    need = ("stack.yaml", *place(STACK, "needs: [db]", "db"))
    assert brief(await definition(ktl, stack, position(STACK, "needs", "db")), tmp_path) == [db]
    users = await references(ktl, stack, position(STACK, "- name: db", "db"), True)
    assert brief(users, tmp_path) == [db, need]
    build = ("ktl-plan.yaml", *place(PLAN, "id: build", "build"))
    deps = [
        ("ktl-plan.yaml", *place(PLAN, "deps: [build]", "build")),
        ("ktl-plan.yaml", *place(PLAN, "deps: [build, nowhere]", "build")),
    ]
    assert brief(await definition(ktl, plan, position(PLAN, "deps", "build")), tmp_path) == [build]
    users = await references(ktl, plan, position(PLAN, "id: build", "build"), False)
    assert brief(users, tmp_path) == deps
    values = await definition(ktl, stack, position(STACK, "values/api.yaml", "api.yaml"))
    assert brief(values, tmp_path) == [("values/api.yaml", 0, 0, 0)]
    chart = await definition(ktl, stack, position(STACK, "chart: ./charts", "charts"))
    assert brief(chart, tmp_path) == [("charts/app/Chart.yaml", 0, 0, 0)]


async def test_hover_on_references_needs_and_deps(start_ktl: StartKtl, tmp_path: Path) -> None:
    write(tmp_path, "config/settings.yaml", CONFIG)
    write(tmp_path, "charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    ktl = await start_ktl()
    app = open_doc(ktl, write(tmp_path, "app.yaml", APP))
    stack = open_doc(ktl, write(tmp_path, "stack.yaml", STACK))
    plan = open_doc(ktl, write(tmp_path, "ktl-plan.yaml", PLAN))
    await workspace_checked(ktl)
    where = position(APP, "configMapRef", "settings")
    settings = await hover(ktl, app, where.line, where.character)
    assert markdown(settings) == (
        "**ConfigMap** `settings` · namespace `shop`\n\n"
        "Defined in `config/settings.yaml:4` · 2 keys"
    )
    assert settings is not None and settings.range is not None
    assert settings.range.start.character == where.character - 1
    where = position(APP, "secretRef", "creds")
    creds = markdown(await hover(ktl, app, where.line, where.character))
    assert creds.endswith("`config/settings.yaml:10` · 1 key") and "hunter2" not in creds
    where = position(APP, "configMap: {name: files}", "files")
    assert markdown(await hover(ktl, app, where.line, where.character)) == (
        "**ConfigMap** `files` in namespace `shop`: not found in the workspace"
    )
    where = position(APP, "image: nginx", "image")  # not a reference: the field's description
    assert markdown(await hover(ktl, app, where.line, where.character)).startswith("**image**")
    where = position(STACK, "needs", "db")
    assert markdown(await hover(ktl, stack, where.line, where.character)) == (
        "**release** `db` · namespace `data` · cluster `dev`\n\n"
        "chart: `./charts/app`  \nno needs  \n*stack.yaml:9*"
    )
    where = position(PLAN, "deps", "build")
    assert markdown(await hover(ktl, plan, where.line, where.character)) == (
        "**node** `build` · tool `make`\n\nrun: `make`  \nno deps  \n*ktl-plan.yaml:3*"
    )


async def test_workspace_symbols_find_releases_and_plan_nodes(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    write(tmp_path, "deploy/stack.yaml", STACK)
    write(tmp_path, "ci/ktl-plan.yaml", PLAN)
    write(tmp_path, "config.yaml", CONFIG)
    ktl = await start_ktl()
    open_doc(ktl, write(tmp_path, "app.yaml", APP))
    await workspace_checked(ktl)

    async def query(text: str) -> list[tuple[str, lsp.SymbolKind, str | None, str, int]]:
        found = await ktl.client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query=text))
        assert isinstance(found, list)
        return [
            (
                s.name,
                s.kind,
                s.container_name,
                Path(s.location.uri.removeprefix("file://")).relative_to(tmp_path).as_posix(),
                s.location.range.start.line,
            )
            for s in found
            if isinstance(s, lsp.SymbolInformation)
        ]

    assert await query("release db") == [
        ("release db", lsp.SymbolKind.Module, "deploy/stack.yaml", "deploy/stack.yaml", 8)
    ]
    assert (
        "node build",
        lsp.SymbolKind.Function,
        "ci/ktl-plan.yaml",
        "ci/ktl-plan.yaml",
        2,
    ) in await query("build")
    assert ("ConfigMap/settings", lsp.SymbolKind.Object, "shop", "config.yaml", 3) in await query(
        "settings"
    )


async def test_bad_input_is_an_empty_answer(ktl: Ktl, tmp_path: Path) -> None:
    never = (tmp_path / "never-opened.yaml").as_uri()
    where = lsp.Position(line=0, character=1)
    assert await definition(ktl, never, where) == []
    assert await references(ktl, never, where, True) == []
    binary = open_doc(ktl, tmp_path / "blob.yaml", "apiVersion: v1\x00\x01")
    broken = open_doc(ktl, write(tmp_path, "broken.yaml", "envFrom: [{configMapRef: {name: x\n"))
    huge = open_doc(
        ktl, tmp_path / "huge.yaml", "data: x\n" + "# padding\n" * (17 * 1024 * 1024 // 10)
    )
    for uri in (binary, broken, huge):
        assert await definition(ktl, uri, where) == []
        assert await references(ktl, uri, where, True) == []
        assert await hover(ktl, uri, 0, 1) is None
    app = open_doc(ktl, write(tmp_path, "app.yaml", APP))
    for line, character in ((500, 0), (0, 500)):  # past the end of the text, of a line
        assert await definition(ktl, app, lsp.Position(line=line, character=character)) == []
    # still answering
    found = await definition(ktl, app, position(APP, "configMapRef", "settings"))
    assert found == []  # no ConfigMap settings in this workspace
    assert brief(await definition(ktl, app, position(APP, "selector: {app: web}", "web")), tmp_path)
