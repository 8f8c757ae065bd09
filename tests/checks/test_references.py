"""Name references and what they point to (ktl_lsp/checks/references.py): the fields that name
objects, namespaces, Service selectors, stack needs, plan deps, stack paths, hover texts."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ktl_lsp.checks import Workspace
from ktl_lsp.checks.references import (
    Location,
    definition_at,
    document_refs,
    reference_hover,
    references_at,
    workspace_items,
)
from ktl_lsp.checks.symbols import workspace_symbols
from ktl_lsp.documents.positions import Position, PositionEncoding
from ktl_lsp.documents.yaml_parse import parse_text

WORKLOAD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {serviceAccountName: not-a-reference}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, tier: front}
    spec:
      serviceAccountName: runner
      imagePullSecrets: [{name: registry}]
      containers:
        - name: web
          image: nginx
          envFrom:
            - configMapRef: {name: settings}
            - secretRef: {name: creds}
          env:
            - name: MODE
              valueFrom: {configMapKeyRef: {name: settings, key: mode}}
            - name: TOKEN
              valueFrom: {secretKeyRef: {name: creds, key: token}}
      volumes:
        - name: config
          configMap: {name: files}
        - name: certs
          secret: {secretName: tls}
        - name: data
          persistentVolumeClaim: {claimName: data}
        - name: all
          projected:
            sources:
              - configMap: {name: extra}
              - secret: {name: more}
"""

CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: fast
  serviceAccountName: not-a-reference
binaryData:
  blob: aGk=
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
data:
  token: c2VjcmV0
stringData:
  token: secret
  password: hunter2
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules:
    - http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
"""

RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
  - {kind: ServiceAccount, name: runner}
  - {kind: ServiceAccount, name: bot, namespace: tools}
  - {kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: viewer}
subjects: [{kind: ServiceAccount, name: runner, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: viewer}
rules: []
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: runner, namespace: shop}
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path.resolve()


def refs_of(text: str) -> list[tuple[str, str, str, str | None, int]]:
    parsed = parse_text(text)
    return [
        (r.group, r.kind, r.name, r.namespace, r.range.start.line + d.start_line)
        for d in parsed.documents
        for r in document_refs(d)
    ]


def at(text: str, line_text: str, word: str) -> Position:
    """The position inside `word` on the first line containing `line_text`."""
    lines = text.splitlines()
    line = next(n for n, t in enumerate(lines) if line_text in t)
    return Position(line, lines[line].index(word, lines[line].index(line_text)) + 1)


def spot(text: str, line_text: str, word: str) -> tuple[int, int, int]:
    """(line, start, end) of `word` on the first line containing `line_text`."""
    where = at(text, line_text, word)
    return where.line, where.character - 1, where.character - 1 + len(word)


def brief(found: list[Location], root: Path) -> list[tuple[str, int, int, int]]:
    return [
        (
            Path(f.path).relative_to(root).as_posix(),
            f.range.start.line,
            f.range.start.character,
            f.range.end.character,
        )
        for f in found
    ]


def test_the_fields_that_name_objects_in_a_workload() -> None:
    found = refs_of(WORKLOAD)
    assert [(kind, name, ns) for _, kind, name, ns, _ in found] == [
        ("ServiceAccount", "runner", "shop"),
        ("Secret", "registry", "shop"),
        ("ConfigMap", "settings", "shop"),
        ("Secret", "creds", "shop"),
        ("ConfigMap", "settings", "shop"),
        ("Secret", "creds", "shop"),
        ("ConfigMap", "files", "shop"),
        ("Secret", "tls", "shop"),
        ("PersistentVolumeClaim", "data", "shop"),
        ("ConfigMap", "extra", "shop"),
        ("Secret", "more", "shop"),
    ]
    # metadata (labels, annotations) and a ConfigMap's data are the user's keys, not fields
    assert refs_of(CONFIG) == []


def test_bindings_an_ingress_and_namespaces_beside_the_name() -> None:
    assert [(g, k, n, ns) for g, k, n, ns, _ in refs_of(RBAC)] == [
        ("rbac.authorization.k8s.io", "Role", "reader", "shop"),
        ("", "ServiceAccount", "runner", "shop"),
        ("", "ServiceAccount", "bot", "tools"),  # the subject's own namespace
        ("rbac.authorization.k8s.io", "ClusterRole", "viewer", None),
        ("", "ServiceAccount", "runner", "shop"),
    ]
    assert [(k, n, ns, line) for _, k, n, ns, line in refs_of(SERVICE)] == [
        ("Service", "web", "shop", 16)
    ]
    webhook = (
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n"
        "metadata: {name: hook}\nwebhooks:\n  - name: a.example.com\n"
        "    clientConfig: {service: {name: hooks, namespace: system}}\n"
    )
    assert [(k, n, ns) for _, k, n, ns, _ in refs_of(webhook)] == [("Service", "hooks", "system")]
    crd = (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: xs.example.com}\nspec:\n  names: {kind: X}\n"
        "  configMap: {name: looks-like-one}\n"
    )
    assert refs_of(crd) == []


def workspace_with(root: Path, files: dict[str, str], opened: dict[str, str]) -> Workspace:
    """Files on disk read as the workspace folder, then buffers opened over them."""
    for name, text in files.items():
        write(root, name, text)
    workspace = Workspace()
    workspace.add_directory(root)
    for name, text in opened.items():
        workspace.update(write(root, name, text), textwrap.dedent(text))
    return workspace


def test_definition_of_a_reference_in_another_file(tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, {"config.yaml": CONFIG}, {"app.yaml": WORKLOAD})
    app = tmp_path / "app.yaml"
    where = at(WORKLOAD, "configMapRef", "settings")
    assert brief(definition_at(ws, app, WORKLOAD, where, "utf-16"), tmp_path) == [
        ("config.yaml", 3, 8, 16)
    ]
    where = at(WORKLOAD, "secretKeyRef", "creds")
    assert brief(definition_at(ws, app, WORKLOAD, where, "utf-16"), tmp_path) == [
        ("config.yaml", *spot(CONFIG, "name: creds", "creds"))
    ]
    # not in the workspace; not a reference; past the end of a line; past the end of the text
    assert definition_at(ws, app, WORKLOAD, at(WORKLOAD, "files", "files"), "utf-16") == []
    assert definition_at(ws, app, WORKLOAD, Position(17, 12), "utf-16") == []
    assert definition_at(ws, app, WORKLOAD, Position(17, 200), "utf-16") == []
    assert definition_at(ws, app, WORKLOAD, Position(500, 0), "utf-16") == []


def test_namespaces_resolve_nearest_first(tmp_path: Path) -> None:
    configs = "---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg{ns}}}\n"
        for ns in (", namespace: a", ", namespace: b", "")
    )
    ws = workspace_with(tmp_path, {"cms.yaml": configs}, {})

    def resolved(namespace: str | None) -> list[int]:
        meta = f"{{name: p, namespace: {namespace}}}" if namespace else "{name: p}"
        pod = (
            f"apiVersion: v1\nkind: Pod\nmetadata: {meta}\nspec:\n"
            "  containers: [{name: c, image: i, envFrom: [{configMapRef: {name: cfg}}]}]\n"
        )
        where = at(pod, "configMapRef", "cfg")
        return [
            f.range.start.line for f in definition_at(ws, tmp_path / "p.yaml", pod, where, "utf-16")
        ]

    assert resolved("a") == [2]
    assert resolved("b") == [6]
    assert resolved("default") == [10]  # unset and `default` are the same namespace
    assert resolved(None) == [10]
    assert resolved("c") == [10]  # only the one without a namespace can land in c


def test_references_of_a_configmap_from_anywhere_in_its_metadata(tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, {"app.yaml": WORKLOAD}, {"config.yaml": CONFIG})
    config = tmp_path / "config.yaml"
    users = [
        ("app.yaml", *spot(WORKLOAD, "configMapRef", "settings")),
        ("app.yaml", *spot(WORKLOAD, "configMapKeyRef", "settings")),
    ]
    for where in (at(CONFIG, "name: settings", "settings"), Position(1, 3), Position(4, 5)):
        found = references_at(ws, config, CONFIG, where, "utf-16", False)
        assert brief(found, tmp_path) == users
    with_declaration = references_at(ws, config, CONFIG, Position(3, 9), "utf-16", True)
    assert brief(with_declaration, tmp_path) == [("config.yaml", 3, 8, 16), *users]
    # from a reference: every reference to the same object
    app = tmp_path / "app.yaml"
    found = references_at(
        ws, app, WORKLOAD, at(WORKLOAD, "configMapRef", "settings"), "utf-16", True
    )
    assert brief(found, tmp_path) == [("config.yaml", 3, 8, 16), *users]
    # data keys are not the object
    assert references_at(ws, config, CONFIG, Position(6, 3), "utf-16", True) == []


def test_bindings_resolve_roles_and_service_accounts(tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, {"rbac.yaml": RBAC, "app.yaml": WORKLOAD}, {})
    rbac = tmp_path / "rbac.yaml"
    viewer = definition_at(
        ws, rbac, RBAC, at(RBAC, "ClusterRole, name: viewer", "viewer"), "utf-16"
    )
    assert brief(viewer, tmp_path) == [("rbac.yaml", *spot(RBAC, "{name: viewer}", "viewer"))]
    account = references_at(ws, rbac, RBAC, at(RBAC, "{name: runner,", "runner"), "utf-16", False)
    assert brief(account, tmp_path) == [
        ("app.yaml", *spot(WORKLOAD, "serviceAccountName: runner", "runner")),
        ("rbac.yaml", *spot(RBAC, "ServiceAccount, name: runner}", "runner")),
        ("rbac.yaml", *spot(RBAC, "subjects: [{kind: ServiceAccount", "runner")),
    ]


def test_a_service_selects_workloads_and_back(tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, {"app.yaml": WORKLOAD}, {"svc.yaml": SERVICE})
    svc, app = tmp_path / "svc.yaml", tmp_path / "app.yaml"
    selected = definition_at(ws, svc, SERVICE, Position(4, 15), "utf-16")
    assert brief(selected, tmp_path) == [("app.yaml", 3, 8, 11)]
    # back: the workload's references are the Services selecting it (from its name or its labels)
    for where in (Position(3, 9), at(WORKLOAD, "tier: front", "tier")):
        found = references_at(ws, app, WORKLOAD, where, "utf-16", False)
        assert brief(found, tmp_path) == [("svc.yaml", 4, 2, 10)]
    # the Service's own references: the Ingress backend
    found = references_at(ws, svc, SERVICE, Position(2, 18), "utf-16", False)
    assert brief(found, tmp_path) == [("svc.yaml", *spot(SERVICE, "backend:", "web"))]
    other = SERVICE.replace("namespace: shop}", "namespace: other}", 1)
    assert definition_at(ws, svc, other, Position(4, 15), "utf-16") == []


def test_the_index_is_built_once_per_change(tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, {"config.yaml": CONFIG}, {"app.yaml": WORKLOAD})
    index = ws.navigation_index()
    assert ws.navigation_index() is index
    ws.update(tmp_path / "config.yaml", CONFIG.replace("name: settings", "name: renamed"))
    assert ws.navigation_index() is not index
    where = at(WORKLOAD, "configMapRef", "settings")
    assert definition_at(ws, tmp_path / "app.yaml", WORKLOAD, where, "utf-16") == []


def test_ranges_in_the_client_s_encoding(tmp_path: Path) -> None:
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: 😀}, name: settings}\n"
    ws = workspace_with(tmp_path, {"config.yaml": config}, {"app.yaml": WORKLOAD})
    where = at(WORKLOAD, "configMapRef", "settings")
    encodings: tuple[PositionEncoding, ...] = ("utf-16", "utf-32", "utf-8")
    starts = [
        definition_at(ws, tmp_path / "app.yaml", WORKLOAD, where, e)[0].range.start.character
        for e in encodings
    ]
    column = config.splitlines()[2].index("settings")
    assert starts == [column + 1, column, column + 3]


STACK = """\
name: shop
defaults:
  cluster: {name: dev}
  values: [common.yaml]
releases:
  - name: api
    chart: ./charts/app
    values: [values/api.yaml, missing.yaml]
    needs: [db, cache]
  - name: db
    chart: oci://registry.example.com/charts/db
    namespace: data
    needs: [cache]
"""

RELEASE = """\
name: cache
chart: ./charts/app
needs: [db]
"""

PLAN = """\
name: ci
nodes:
  - id: build
    run: make
    tool: make
  - id: test
    run: [make, test]
    deps: [build]
  - id: lint
    run: ruff
    deps: [build, nowhere]
"""


def ktl_workspace(root: Path) -> Workspace:
    write(root, "charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    write(root, "values/api.yaml", "replicas: 2\n")
    write(root, "common.yaml", "a: 1\n")
    return workspace_with(
        root, {"cache/release.yaml": RELEASE, "ktl-plan.yaml": PLAN}, {"stack.yaml": STACK}
    )


def test_stack_needs_lead_to_releases_and_back(tmp_path: Path) -> None:
    ws = ktl_workspace(tmp_path)
    stack, release = tmp_path / "stack.yaml", tmp_path / "cache" / "release.yaml"
    found = definition_at(ws, stack, STACK, Position(8, 17), "utf-16")
    assert brief(found, tmp_path) == [("cache/release.yaml", 0, 6, 11)]
    found = definition_at(ws, release, RELEASE, Position(2, 9), "utf-16")
    assert brief(found, tmp_path) == [("stack.yaml", 9, 10, 12)]
    # who needs db: the stack's api and the release file; with db's own name first
    users = references_at(ws, stack, STACK, Position(9, 11), "utf-16", True)
    assert brief(users, tmp_path) == [
        ("stack.yaml", 9, 10, 12),
        ("stack.yaml", 8, 12, 14),
        ("cache/release.yaml", 2, 8, 10),
    ]
    from_a_need = references_at(ws, release, RELEASE, Position(2, 9), "utf-16", False)
    assert brief(from_a_need, tmp_path) == brief(users[1:], tmp_path)


def test_another_cluster_s_release_is_not_the_one_needed(tmp_path: Path) -> None:
    stack = STACK + "  - name: cache\n    chart: ./charts/app\n    cluster: {name: prod}\n"
    ws = ktl_workspace(tmp_path)
    ws.update(tmp_path / "stack.yaml", stack)
    found = definition_at(ws, tmp_path / "stack.yaml", stack, Position(8, 17), "utf-16")
    assert brief(found, tmp_path) == [("cache/release.yaml", 0, 6, 11)]


def test_chart_and_values_paths_lead_to_the_files(tmp_path: Path) -> None:
    ws = ktl_workspace(tmp_path)
    stack = tmp_path / "stack.yaml"

    def target(line: int, character: int) -> list[tuple[str, int, int, int]]:
        return brief(definition_at(ws, stack, STACK, Position(line, character), "utf-16"), tmp_path)

    assert target(6, 14) == [("charts/app/Chart.yaml", 0, 0, 0)]
    assert target(7, 17) == [("values/api.yaml", 0, 0, 0)]
    assert target(3, 15) == [("common.yaml", 0, 0, 0)]
    assert target(7, 35) == []  # missing.yaml does not exist
    assert target(10, 20) == []  # a chart from a registry


def test_plan_deps_lead_to_nodes_and_back(tmp_path: Path) -> None:
    ws = ktl_workspace(tmp_path)
    plan = tmp_path / "ktl-plan.yaml"
    assert brief(definition_at(ws, plan, PLAN, Position(7, 13), "utf-16"), tmp_path) == [
        ("ktl-plan.yaml", 2, 8, 13)
    ]
    assert definition_at(ws, plan, PLAN, Position(10, 20), "utf-16") == []  # names no node
    users = [("ktl-plan.yaml", 7, 11, 16), ("ktl-plan.yaml", 10, 11, 16)]
    assert brief(references_at(ws, plan, PLAN, Position(2, 10), "utf-16", False), tmp_path) == users
    assert brief(references_at(ws, plan, PLAN, Position(7, 12), "utf-16", True), tmp_path) == [
        ("ktl-plan.yaml", 2, 8, 13),
        *users,
    ]


def test_hover_on_references(tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, {"conf/config.yaml": CONFIG}, {"app.yaml": WORKLOAD})
    app = tmp_path / "app.yaml"

    def hover(line_text: str, word: str) -> str:
        found = reference_hover(
            ws, app, WORKLOAD, at(WORKLOAD, line_text, word), "utf-16", [tmp_path]
        )
        assert found is not None
        return found.markdown

    config = hover("configMapRef", "settings")
    assert config == (
        "**ConfigMap** `settings` · namespace `shop`\n\nDefined in `conf/config.yaml:4` · 3 keys"
    )
    secret = hover("secretRef", "creds")
    assert secret.startswith("**Secret** `creds` · namespace `shop`")
    assert "`conf/config.yaml:15` · 2 keys" in secret  # data and stringData: token, password
    assert "hunter2" not in secret and "c2VjcmV0" not in secret
    assert hover("claimName", "data") == (
        "**PersistentVolumeClaim** `data` in namespace `shop`: not found in the workspace"
    )
    found = reference_hover(
        ws, app, WORKLOAD, at(WORKLOAD, "configMapRef", "settings"), "utf-16", []
    )
    assert found is not None and "`conf/config.yaml:4`" in found.markdown  # near the file
    assert found.range is not None and found.range.start == Position(19, 35)
    # not a reference: no answer here (the field's hover answers)
    assert reference_hover(ws, app, WORKLOAD, Position(17, 12), "utf-16", []) is None


def test_hover_on_needs_and_deps(tmp_path: Path) -> None:
    ws = ktl_workspace(tmp_path)
    stack, plan = tmp_path / "stack.yaml", tmp_path / "ktl-plan.yaml"
    db = reference_hover(ws, stack, STACK, Position(8, 13), "utf-16", [tmp_path])
    assert db is not None and db.markdown == (
        "**release** `db` · namespace `data` · cluster `dev`\n\n"
        "chart: `oci://registry.example.com/charts/db`  \nneeds: `cache`  \n*stack.yaml:10*"
    )
    cache = reference_hover(ws, stack, STACK, Position(8, 17), "utf-16", [tmp_path])
    assert cache is not None
    assert cache.markdown.startswith("**release** `cache` · namespace `default` · cluster `dev`")
    assert "*cache/release.yaml:1*" in cache.markdown
    build = reference_hover(ws, plan, PLAN, Position(7, 13), "utf-16", [tmp_path])
    assert build is not None and build.markdown == (
        "**node** `build` · tool `make`\n\nrun: `make`  \nno deps  \n*ktl-plan.yaml:3*"
    )
    nowhere = reference_hover(ws, plan, PLAN, Position(10, 20), "utf-16", [tmp_path])
    assert nowhere is not None and nowhere.markdown == "**node** `nowhere`: not found in the plan"
    missing = STACK.replace("needs: [db, cache]", "needs: [db, cahce]")
    typo = reference_hover(ws, stack, missing, Position(8, 17), "utf-16", [tmp_path])
    assert typo is not None and typo.markdown == "**release** `cahce`: not found in the stack"


def test_bad_input_is_an_empty_answer(tmp_path: Path) -> None:
    ws = ktl_workspace(tmp_path)
    stack = tmp_path / "stack.yaml"
    for text in ("\x00\x01binary", "releases: [\n", "", "a" * 10):
        assert definition_at(ws, stack, text, Position(0, 1), "utf-16") == []
        assert references_at(ws, stack, text, Position(0, 1), "utf-16", True) == []
        assert reference_hover(ws, stack, text, Position(0, 1), "utf-16", []) is None
    for where in (Position(-1, 0), Position(0, -1), Position(99, 0), Position(0, 99)):
        assert definition_at(ws, stack, STACK, where, "utf-16") == []
    notes = tmp_path / "notes.txt"
    assert definition_at(ws, notes, "configMapRef: {name: x}\n", Position(0, 22), "utf-16") == []


def test_workspace_symbols_find_releases_and_nodes(tmp_path: Path) -> None:
    ws = ktl_workspace(tmp_path)
    items = workspace_items(ws)
    assert sorted((i.kind, i.name) for i in items) == [
        ("node", "build"),
        ("node", "lint"),
        ("node", "test"),
        ("release", "api"),
        ("release", "cache"),
        ("release", "db"),
    ]
    found = workspace_symbols([], "cache", items=items, roots=[tmp_path])
    assert [(s.name, s.kind, s.container, s.range.start.line) for s in found] == [
        ("release cache", "release", "cache/release.yaml", 0)
    ]
    build = workspace_symbols([], "bld", items=items, roots=[tmp_path])
    assert [(s.name, s.container) for s in build] == [("node build", "ktl-plan.yaml")]
