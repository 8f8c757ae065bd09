"""Completion without a server: keys, values, kinds and snippets from the bundled schemas, on
documents that parse and documents that do not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode

from ktl_lsp.checks.completion import (
    Listed,
    Suggestion,
    Topic,
    complete_at,
    complete_ktl,
    complete_names,
    documentation,
)
from ktl_lsp.checks.crds import CrdVersion
from ktl_lsp.checks.k8s_workspace import PlacedSummary, summarize
from ktl_lsp.documents.file_kinds import FileKind
from ktl_lsp.documents.positions import Position, Range
from ktl_lsp.documents.yaml_parse import parse_text

VERSION = "1.30"

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: nginx
"""


def no_crd(api_version: str, kind: str) -> CrdVersion | None:
    return None


@dataclass
class Known:
    """What a workspace would know: CRDs and objects."""

    versions: tuple[CrdVersion, ...] = ()
    placed: tuple[PlacedSummary, ...] = ()

    def crd(self, api_version: str, kind: str) -> CrdVersion | None:
        return next(
            (c for c in self.versions if (c.api_version, c.kind) == (api_version, kind)), None
        )

    def crds(self) -> list[CrdVersion]:
        return list(self.versions)

    def objects(self, kind: str, group: str = "") -> list[PlacedSummary]:
        return [p for p in self.placed if (p.summary.group, p.summary.kind) == (group, kind)]


def suggest(
    text: str,
    line: int,
    character: int,
    snippets: bool = False,
    crds: tuple[CrdVersion, ...] = (),
    known: Known | None = None,
) -> list[Suggestion]:
    found = complete_at(
        parse_text(text),
        Position(line, character),
        VERSION,
        known or Known(crds),
        "utf-16",
        snippets,
    )
    return sorted(found, key=lambda s: s.sort_text)


def labels(found: list[Suggestion]) -> list[str]:
    return [s.label for s in found]


def test_keys_of_a_list_item_in_a_document_that_parses() -> None:
    found = suggest(POD + "    \n", 8, 4)
    names = labels(found)
    assert {"ports", "env", "command"} <= set(names)
    assert "name" not in names and "image" not in names
    ports = next(s for s in found if s.label == "ports")
    assert (ports.edit.new_text, ports.edit.range) == ("ports:", Range.of(8, 4, 8, 4))
    assert ports.topic == Topic("v1", "Pod", ("spec", "containers", 0, "ports"))
    scalar = next(s for s in found if s.label == "workingDir")
    assert scalar.edit.new_text == "workingDir: "


def test_required_first_and_server_written_keys_left_out() -> None:
    found = suggest("apiVersion: v1\nkind: Pod\n\n", 2, 0)
    assert labels(found) == ["metadata", "spec"]  # not status, not the keys present
    spec = suggest("apiVersion: v1\nkind: Pod\nspec:\n  \n", 3, 2)
    assert spec[0].label == "containers" and spec[0].required
    assert spec[0].detail == "[]Container · required"
    assert not any(s.required for s in spec[1:])


def test_a_word_typed_under_a_value_is_a_key() -> None:
    # `  imag` below `name: c` parses as the rest of the value `c`; it is a key being typed.
    text = POD.replace("    image: nginx\n", "    imag\n")
    found = suggest(text, 7, 8)
    image = next(s for s in found if s.label == "image")
    assert image.edit.range == Range.of(7, 4, 7, 8)
    assert image.required and "name" not in labels(found)


def test_snippets_fill_in_required_children_and_choices() -> None:
    found = suggest("apiVersion: v1\nkind: Pod\nspec:\n  \n", 3, 2, snippets=True)
    by_label = {s.label: s for s in found}
    assert by_label["containers"].snippet
    assert by_label["containers"].edit.new_text == "containers:\n  - name: $1\n    image: $2"
    assert by_label["restartPolicy"].edit.new_text == "restartPolicy: ${1|Always,OnFailure,Never|}"
    assert by_label["hostNetwork"].edit.new_text == "hostNetwork: ${1|true,false|}"
    assert by_label["securityContext"].edit.new_text == "securityContext:\n  $0"
    assert by_label["tolerations"].edit.new_text == "tolerations:\n  - $0"


def test_on_an_existing_key_only_its_name_is_replaced() -> None:
    found = suggest(POD, 7, 6)
    image = next(s for s in found if s.label == "imagePullPolicy")
    assert image.edit == image.edit.__class__(Range.of(7, 4, 7, 9), "imagePullPolicy")


def test_enum_values_booleans_and_items_of_an_enum_list() -> None:
    pull = suggest(POD + "    imagePullPolicy: If\n", 8, 23)
    assert labels(pull) == ["Always", "IfNotPresent", "Never"]
    assert pull[1].edit.range == Range.of(8, 21, 8, 23)
    no_space = suggest(POD + "    imagePullPolicy:\n", 8, 20)
    assert no_space[0].edit.new_text == " Always"
    assert labels(suggest(POD + "    tty: \n", 8, 9)) == ["true", "false"]
    pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nspec:\n  accessModes:\n  - \n"
    assert "ReadWriteOnce" in labels(suggest(pvc, 4, 4))
    assert suggest(POD + "    image: \n", 8, 11) == []  # free text: nothing to offer


def test_kinds_carry_their_api_version() -> None:
    found = suggest("kind: \n", 0, 6)
    by_label = {s.label: s for s in found if s.detail in ("apps/v1", "v1")}
    deployment = by_label["Deployment"]
    assert deployment.edit.new_text == "Deployment"
    assert [(e.range, e.new_text) for e in deployment.additional_edits] == [
        (Range.of(0, 0, 0, 0), "apiVersion: apps/v1\n")
    ]
    assert "DeploymentList" not in labels(found) and "APIGroup" not in labels(found)
    # With an apiVersion already there: pairs it serves sort first, others replace it.
    kept = suggest("apiVersion: batch/v1\nkind: \n", 1, 6)
    job = next(s for s in kept if s.label == "Job")
    assert job.additional_edits == () and job.detail == "batch/v1"
    pod = next(s for s in kept if s.label == "Pod")
    assert [(e.range, e.new_text) for e in pod.additional_edits] == [
        (Range.of(0, 11, 0, 20), " v1")
    ]


def test_api_versions_serving_the_kind() -> None:
    assert labels(suggest("apiVersion: \nkind: CronJob\n", 0, 12)) == ["batch/v1"]
    every = labels(suggest("apiVersion: \n", 0, 12))
    assert {"v1", "apps/v1", "batch/v1", "networking.k8s.io/v1"} <= set(every)


def test_custom_resources() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {"size": {"type": "integer"}, "shiny": {"type": "boolean"}},
            }
        },
    }
    widget = CrdVersion("example.com/v1", "Widget", True, True, schema)
    text = "apiVersion: example.com/v1\nkind: Widget\nspec:\n  \n"
    assert labels(suggest(text, 3, 2, crds=(widget,))) == ["size", "shiny"]
    top = labels(suggest("apiVersion: example.com/v1\nkind: Widget\n\n", 2, 0, crds=(widget,)))
    assert {"spec", "metadata"} <= set(top)
    kinds = suggest("kind: Wid\n", 0, 9, crds=(widget,))
    assert [s.detail for s in kinds if s.label == "Widget"] == ["example.com/v1"]


def placed(path: str, text: str) -> tuple[PlacedSummary, ...]:
    out = []
    for document in parse_text(text).documents:
        summary = summarize(document.root) if isinstance(document.root, MappingNode) else None
        assert summary is not None
        out.append(PlacedSummary(path, document.start_line, summary))
    return tuple(out)


def test_names_of_the_workspace_s_objects() -> None:
    objects = placed(
        str(Path("/w/config.yaml")),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: elsewhere}\n---\n"
        "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\n---\n"
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: runner}\n",
    )
    known = Known(placed=objects)
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n"
        "  serviceAccountName: \n"
        "  containers:\n  - name: c\n    envFrom:\n    - configMapRef:\n        name: \n"
        "    env:\n    - name: T\n      valueFrom:\n        secretKeyRef: {name: }\n"
        "  volumes:\n  - name: v\n    configMap:\n      name: se\n"
    )
    maps = suggest(pod, 9, 14, known=known)
    assert labels(maps) == ["settings", "other"]  # the document's namespace first
    assert maps[0].detail == "ConfigMap in shop · config.yaml"
    assert maps[0].kind == "reference"
    assert labels(suggest(pod, 4, 22, known=known)) == ["runner"]
    token = suggest(pod, 13, 29, known=known)  # inside `{name: }`
    assert labels(token) == ["token"] and token[0].edit.range == Range.of(13, 29, 13, 29)
    volume = suggest(pod, 17, 14, known=known)
    assert labels(volume) == ["settings", "other"]
    assert volume[0].edit.range == Range.of(17, 12, 17, 14)
    assert suggest(pod, 9, 14) == []  # an empty workspace: nothing
    services = placed("/w/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n")
    ingress = (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec:\n"
        "  defaultBackend:\n    service:\n      name: \n"
    )
    assert labels(suggest(ingress, 6, 12, known=Known(placed=services))) == ["web"]
    secrets = Known(placed=objects[2:3])
    projected = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n  - name: v\n"
        "    projected:\n      sources:\n      - secret:\n          name: \n"
    )
    assert labels(suggest(projected, 9, 16, known=secrets)) == ["token"]


def test_names_from_the_cluster_after_the_workspace_s() -> None:
    known = Known(
        placed=placed("/w/c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    )
    asked: list[tuple[str, str | None]] = []

    def cluster(kind: str, namespace: str | None) -> Listed | None:
        asked.append((kind, namespace))
        return (
            Listed("kind-dev", namespace or "default", ("a", "b")) if kind == "ConfigMap" else None
        )

    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n"
        "  containers:\n  - name: c\n    envFrom:\n    - configMapRef: {name: }\n"
        "    - secretRef: {name: }\n"
    )
    found = complete_at(parse_text(pod), Position(7, 27), VERSION, known, cluster=cluster)
    assert sorted((s.label, s.detail) for s in found) == [
        ("a", "ConfigMap · c.yaml"),  # the workspace's own copy wins
        ("b", "ConfigMap in shop · cluster: kind-dev"),
    ]
    assert complete_at(parse_text(pod), Position(8, 24), VERSION, known, cluster=cluster) == []
    assert asked == [("ConfigMap", "shop"), ("Secret", "shop")]


WORKLOADS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        ports:
        - {name: http, containerPort: 8080}
        - {containerPort: 9090}
        - {name: metrics, containerPort: 9100}
---
apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers:
  - name: c
    ports: [{name: grpc, containerPort: 50051}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: elsewhere, namespace: other}
spec:
  template:
    spec:
      containers: [{name: c, ports: [{name: admin, containerPort: 1}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80}, {port: 81}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  ports: [{name: sql, port: 5432}]
"""


def test_target_ports_are_the_named_ports_of_the_selected_pods() -> None:
    known = Known(placed=placed("/w/app.yaml", WORKLOADS))
    service = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n"
        "  selector: {app: web}\n  ports:\n  - port: 80\n    targetPort: \n"
    )
    found = suggest(service, 7, 16, known=known)
    assert [(s.label, s.detail) for s in found] == [
        ("http", "containerPort 8080 · Deployment/web"),
        ("metrics", "containerPort 9100 · Deployment/web"),
    ]
    assert found[0].kind == "reference" and found[0].edit.range == Range.of(7, 16, 7, 16)
    # No selector: every named port of the namespace (a Pod without one goes anywhere).
    unselected = service.replace("  selector: {app: web}\n", "")
    assert labels(suggest(unselected, 6, 16, known=known)) == ["http", "metrics", "grpc"]
    # A selector that matches no pod: nothing.
    assert suggest(service.replace("app: web", "app: nope"), 7, 16, known=known) == []


def test_ingress_backend_ports_are_the_chosen_service_s_ports() -> None:
    known = Known(placed=placed("/w/app.yaml", WORKLOADS))
    ingress = (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, namespace: shop}\n"
        "spec:\n  rules:\n  - http:\n      paths:\n      - path: /\n        backend:\n"
        "          service:\n            name: web\n            port:\n              number: \n"
    )
    numbers = suggest(ingress, 12, 22, known=known)
    assert [(s.label, s.detail) for s in numbers] == [
        ("80", "port 80 (http) · Service/web"),
        ("81", "port 81 · Service/web"),
    ]
    named = ingress.replace("number: ", "name: ")
    assert [(s.label, s.detail) for s in suggest(named, 12, 20, known=known)] == [
        ("http", "port 80 · Service/web")
    ]
    # No Service chosen yet: the ports of every Service of the namespace.
    unchosen = named.replace("            name: web\n", "")
    assert labels(suggest(unchosen, 11, 20, known=known)) == ["http", "sql"]
    # The Service's name itself: the Services of the workspace.
    assert labels(suggest(ingress, 10, 18, known=known)) == ["db", "web"]


def test_documentation_is_what_hover_says() -> None:
    text = documentation(Topic("apps/v1", "Deployment", ("spec", "replicas")), VERSION, no_crd)
    assert text is not None and text.startswith("**replicas** `integer (int32)`")
    pull = Topic("v1", "Pod", ("spec", "containers", 0, "imagePullPolicy"))
    policy = documentation(pull, VERSION, no_crd)
    assert policy is not None and "spec.containers[0].imagePullPolicy" in policy
    listed = documentation(Topic("v1", "Pod", ("spec", "containers", 0)), VERSION, no_crd)
    assert listed is not None and listed.startswith("**containers** `[]Container`")
    kind = documentation(Topic("apps/v1", "Deployment", ("kind",)), VERSION, no_crd)
    assert kind is not None and kind.startswith("**Deployment** `apps/v1`")
    assert documentation(Topic("nope/v1", "X", ("spec",)), VERSION, no_crd) is None


def test_bad_input_is_an_empty_list() -> None:
    assert suggest(POD, 99, 0) == []
    assert suggest(POD, 0, 99) == []
    assert suggest(POD, -1, 0) == []
    assert suggest("apiVersion: nope/v9\nkind: Thing\nspec:\n  \n", 3, 2) == []
    assert suggest("# only a comment\n", 0, 5) == []
    assert suggest("apiVersion: v1\x00\x01", 0, 3) == []


def names(text: str, line: int, character: int, kind: FileKind) -> list[Suggestion]:
    releases = [("/apps/db", "db", "/s/stack.yaml"), ("/apps/web", "web", "/s/web/release.yaml")]
    return complete_names(
        parse_text(text), Position(line, character), kind, lambda: releases, "utf-16"
    )


def test_plan_deps_are_the_plan_s_other_node_ids() -> None:
    plan = "nodes:\n  - id: lint\n    run: x\n  - id: test\n    run: y\n  - id: docs\n    deps: [lint, ]\n"
    found = names(plan, 6, 17, FileKind.PLAN)
    assert labels(found) == ["test"]  # not docs itself, not lint already listed
    assert found[0].edit.range == Range.of(6, 17, 6, 17) and found[0].detail == "plan node"
    # A block list being typed, the plan not parsing yet.
    broken = plan.replace("    deps: [lint, ]\n", "    deps:\n      - te\n    run: [\n")
    typed = names(broken, 7, 10, FileKind.PLAN)
    assert labels(typed) == ["lint", "test"]
    assert typed[1].edit.range == Range.of(7, 8, 7, 10)
    assert names(plan, 1, 9, FileKind.PLAN) == []  # an id is not a reference


def test_stack_needs_are_the_stack_s_release_names() -> None:
    stack = (
        "name: s\nreleases:\n  - name: db\n    chart: ./db\n  - name: api\n    needs:\n      - \n"
    )
    found = names(stack, 6, 8, FileKind.KTL_STACK)
    assert labels(found) == ["db", "web"]
    assert found[1].detail == "release /apps/web · release.yaml"
    release = "name: web\nchart: ./web\nneeds: [db, ]\n"
    assert labels(names(release, 2, 12, FileKind.KTL_RELEASE)) == []  # db listed, web itself
    assert labels(names("name: x\nneeds: []\n", 1, 8, FileKind.KTL_RELEASE)) == ["db", "web"]
    assert names(stack, 0, 7, FileKind.KTL_STACK) == []
    assert names(stack, 2, 12, FileKind.HELM_VALUES) == []


PIECES = [
    "apiVersion: v1", "kind: Pod", "kind: ", "apiVersion: ", "spec:", "  containers:",
    "  - name: c", "    image: x", "    imagePul", "  - ", "---", "# c", "", "  a: [b, ",
    "    ports: {", "nodes:", "  - id: a", "    deps: [", "needs:", "- x", "\t", "key: |", "é😀: v",
]  # fmt: skip


@given(
    st.lists(st.sampled_from(PIECES), max_size=12),
    st.integers(-1, 14),
    st.integers(-1, 30),
    st.sampled_from(["utf-16", "utf-8", "utf-32"]),
)
@settings(max_examples=300, deadline=None)
def test_never_raises(pieces: list[str], line: int, character: int, encoding: str) -> None:
    parsed = parse_text("\n".join(pieces))
    where = Position(line, character)
    found = complete_at(parsed, where, VERSION, Known(), encoding, True)  # type: ignore[arg-type]
    for kind in (FileKind.PLAN, FileKind.KTL_STACK, FileKind.KTL_RELEASE):
        found += complete_names(parsed, where, kind, lambda: [("/a/x", "x", "/s.yaml")])
    for suggestion in found:
        assert suggestion.edit.range.start.line == line


def plan_at(text: str, line: int, character: int) -> list[Suggestion]:
    return sorted(
        complete_ktl(parse_text(text), Position(line, character), FileKind.PLAN),
        key=lambda s: s.sort_text,
    )


def test_plan_keys_values_and_tools() -> None:
    plan = "name: p\nnodes:\n  - id: a\n    run: x\n    tool: claude\n    \n"
    keys = plan_at(plan, 5, 4)
    assert not {"id", "run", "tool"} & set(labels(keys))  # present
    assert {"deps", "claims", "retries", "worktree"} <= set(labels(keys))
    deps = next(s for s in keys if s.label == "deps")
    assert deps.documentation is not None and deps.topic is None
    top = labels(plan_at(plan + "\n", 6, 0))
    assert "concurrency" in top and "nodes" not in top and "name" not in top
    runner = plan_at(plan.replace("    \n", "    runner: \n"), 5, 12)
    assert labels(runner) == ["local", "kubernetes"]
    mode = "nodes:\n  - id: a\n    claims:\n      - path: x\n        mode: \n"
    assert labels(plan_at(mode, 4, 14)) == ["exclusive", "shared"]
    tools = "toolLimits:\n  \nnodes:\n  - id: a\n    tool: claude\n  - id: b\n    tool: codex\n"
    assert labels(plan_at(tools, 1, 2)) == ["claude", "codex"]
    assert labels(plan_at(plan + "    deps: [\n", 6, 11)) == []  # only a: itself


def ktl_at(text: str, line: int, character: int, kind: FileKind) -> list[Suggestion]:
    found = complete_ktl(parse_text(text), Position(line, character), kind)
    return sorted(found, key=lambda s: s.sort_text)


def test_stack_release_and_ktl_config_keys_and_values() -> None:
    stack = "name: shop\nreleases:\n  - name: db\n    \n"
    release_keys = ktl_at(stack, 3, 4, FileKind.KTL_STACK)
    assert labels(release_keys)[0] == "chart" and release_keys[0].required  # name is there
    assert {"needs", "wave", "values", "verify"} <= set(labels(release_keys))
    top = labels(ktl_at(stack + "\n", 4, 0, FileKind.KTL_STACK))
    assert {"defaults", "profiles", "runner"} <= set(top) and "releases" not in top
    atomic = ktl_at("defaults:\n  apply:\n    atomic: \n", 2, 12, FileKind.KTL_STACK)
    assert labels(atomic) == ["true", "false"]
    output = ktl_at("cli:\n  output: \n", 1, 10, FileKind.KTL_STACK)
    assert labels(output) == ["table", "json"]
    profile = ktl_at("profiles:\n  prod:\n    \n", 2, 4, FileKind.KTL_STACK)
    assert {"defaults", "runner", "hooks"} <= set(labels(profile))
    release = labels(ktl_at("name: web\n\n", 1, 0, FileKind.KTL_RELEASE))
    assert release[:1] == ["chart"] and "name" not in release and "hooks" in release
    config = ktl_at("\n", 0, 0, FileKind.KTL_CONFIG)
    assert config and all(s.kind == "key" for s in config)
    assert ktl_at("a: 1\n", 0, 1, FileKind.HELM_VALUES) == []
