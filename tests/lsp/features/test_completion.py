"""Completion end to end: schema keys at any depth, values, kinds with their apiVersion, snippets,
documentation on resolve, half-typed documents, and empty answers for bad input."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.checks.test_completion import WORKLOADS
from tests.conftest import Ktl, StartKtl
from tests.lsp.features.test_codelens import open_doc, write
from tests.lsp.features.test_diagnostics import workspace_checked
from tests.lsp.features.test_hover import WIDGET_CRD

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: web
        image: nginx
        imagePullPolicy: Always
"""

SNIPPETS = lsp.TextDocumentClientCapabilities(
    completion=lsp.CompletionClientCapabilities(
        completion_item=lsp.ClientCompletionItemOptions(
            snippet_support=True, documentation_format=[lsp.MarkupKind.Markdown]
        )
    )
)


async def complete(ktl: Ktl, uri: str, line: int, character: int) -> list[lsp.CompletionItem]:
    result = await ktl.client.text_document_completion_async(
        lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=line, character=character),
        )
    )
    if result is None:
        return []
    items = result.items if isinstance(result, lsp.CompletionList) else result
    return sorted(items, key=lambda i: i.sort_text or i.label)


def labels(items: list[lsp.CompletionItem]) -> list[str]:
    return [i.label for i in items]


def edit_of(item: lsp.CompletionItem) -> lsp.TextEdit:
    assert isinstance(item.text_edit, lsp.TextEdit)
    return item.text_edit


def change(ktl: Ktl, uri: str, text: str, version: int = 2) -> None:
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def test_the_capability_is_advertised(ktl: Ktl) -> None:
    result = ktl.server_capabilities
    assert result is not None and result.completion_provider is not None
    assert result.completion_provider.resolve_provider is True
    assert ":" in (result.completion_provider.trigger_characters or [])


async def test_keys_at_depth_without_the_ones_present(ktl: Ktl, tmp_path: Path) -> None:
    text = DEPLOYMENT + "        \n"
    uri = open_doc(ktl, tmp_path / "deploy.yaml", text)
    items = await complete(ktl, uri, 12, 8)
    names = labels(items)
    assert {"ports", "env", "resources", "livenessProbe"} <= set(names)
    assert not {"name", "image", "imagePullPolicy"} & set(names)  # already there
    ports = next(i for i in items if i.label == "ports")
    assert ports.kind == lsp.CompletionItemKind.Property
    assert ports.detail == "[]ContainerPort"
    assert edit_of(ports).new_text == "ports:"  # no snippets declared: plain text
    assert edit_of(ports).range == lsp.Range(
        start=lsp.Position(line=12, character=8), end=lsp.Position(line=12, character=8)
    )
    # Under spec: the Deployment's own fields; required first, and marked.
    spec = await complete(ktl, uri, 5, 2)
    assert labels(spec)[0] == "selector"
    assert spec[0].detail == "LabelSelector · required"
    assert spec[0].label_details is not None and spec[0].label_details.description == "required"
    assert "template" not in labels(spec) and "strategy" in labels(spec)


async def test_required_children_as_a_snippet(start_ktl: StartKtl, tmp_path: Path) -> None:
    ktl = await start_ktl(text_document=SNIPPETS)
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  cont\n"
    uri = open_doc(ktl, write(tmp_path, "pod.yaml", text))
    items = await complete(ktl, uri, 5, 6)
    containers = next(i for i in items if i.label == "containers")
    assert containers.insert_text_format == lsp.InsertTextFormat.Snippet
    assert edit_of(containers).new_text == "containers:\n  - name: $1\n    image: $2"
    assert edit_of(containers).range == lsp.Range(
        start=lsp.Position(line=5, character=2), end=lsp.Position(line=5, character=6)
    )
    policy = next(i for i in items if i.label == "restartPolicy")
    assert edit_of(policy).new_text == "restartPolicy: ${1|Always,OnFailure,Never|}"


async def test_enum_and_boolean_values(ktl: Ktl, tmp_path: Path) -> None:
    service = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: Cl\n"
        "  publishNotReadyAddresses: \n  ports:\n  - port: 80\n    protocol: \n"
    )
    uri = open_doc(ktl, tmp_path / "svc.yaml", service)
    types = await complete(ktl, uri, 4, 10)
    assert labels(types) == ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
    assert edit_of(types[0]).range == lsp.Range(
        start=lsp.Position(line=4, character=8), end=lsp.Position(line=4, character=10)
    )
    assert labels(await complete(ktl, uri, 5, 28)) == ["true", "false"]
    assert labels(await complete(ktl, uri, 8, 14)) == ["TCP", "UDP", "SCTP"]
    pull = DEPLOYMENT.replace("imagePullPolicy: Always", "imagePullPolicy: ")
    pod = open_doc(ktl, write(tmp_path, "deploy.yaml", pull))
    assert labels(await complete(ktl, pod, 11, 25)) == ["Always", "IfNotPresent", "Never"]


async def test_kind_sets_its_api_version(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "new.yaml", "kind: Deploy\nmetadata:\n  name: x\n"))
    items = await complete(ktl, uri, 0, 12)
    deployment = next(i for i in items if i.label == "Deployment")
    assert deployment.detail == "apps/v1"
    assert edit_of(deployment).new_text == "Deployment"
    assert list(deployment.additional_text_edits or []) == [
        lsp.TextEdit(
            range=lsp.Range(
                start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)
            ),
            new_text="apiVersion: apps/v1\n",
        )
    ]
    # An apiVersion that does not serve the chosen kind is replaced; one that does is kept.
    wrong = open_doc(ktl, write(tmp_path, "wrong.yaml", "apiVersion: v1\nkind: \n"))
    kinds = await complete(ktl, wrong, 1, 6)
    deployment = next(i for i in kinds if i.label == "Deployment")
    assert edit_of(deployment).new_text == "Deployment"
    assert [(e.range.start.line, e.new_text) for e in deployment.additional_text_edits or []] == [
        (0, " apps/v1")
    ]
    service = next(i for i in kinds if i.label == "Service")
    assert service.additional_text_edits is None
    # apiVersion values: those serving the kind.
    versions = open_doc(ktl, write(tmp_path, "hpa.yaml", "apiVersion: \nkind: Deployment\n"))
    assert labels(await complete(ktl, versions, 0, 12)) == ["apps/v1"]


async def test_resolve_brings_the_documentation(start_ktl: StartKtl, tmp_path: Path) -> None:
    ktl = await start_ktl(text_document=SNIPPETS)
    uri = open_doc(ktl, tmp_path / "deploy.yaml", DEPLOYMENT + "  \n")
    items = await complete(ktl, uri, 12, 2)
    strategy = next(i for i in items if i.label == "strategy")
    assert strategy.documentation is None
    resolved = await ktl.client.completion_item_resolve_async(strategy)
    assert isinstance(resolved.documentation, lsp.MarkupContent)
    assert resolved.documentation.kind == lsp.MarkupKind.Markdown
    assert resolved.documentation.value.startswith("**strategy** `DeploymentStrategy`")
    assert "apps/v1 Deployment · spec.strategy" in resolved.documentation.value
    # A key of a list's item: described at its place in the list.
    keys = await complete(ktl, uri, 11, 8)
    ports = next(i for i in keys if i.label == "ports")
    described = (await ktl.client.completion_item_resolve_async(ports)).documentation
    assert isinstance(described, lsp.MarkupContent)
    assert "spec.template.spec.containers[0].ports" in described.value
    # An item with nothing to say resolves unchanged.
    plain = lsp.CompletionItem(label="x", data={"apiVersion": "nope/v1", "kind": "X", "path": []})
    assert (await ktl.client.completion_item_resolve_async(plain)).documentation is None


async def test_a_half_typed_document_answers_on_its_current_text(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", DEPLOYMENT))
    # A word under `imagePullPolicy: Always` parses as the rest of that value: it is a key.
    change(ktl, uri, DEPLOYMENT + "        live\n  strategy: {type: [\n")
    items = await complete(ktl, uri, 12, 12)  # at once, before the check of the edit has published
    assert "livenessProbe" in labels(items) and "image" not in labels(items)
    assert edit_of(items[0]).range.start == lsp.Position(line=12, character=8)
    # A new item of a list of objects, in a document that does not parse.
    broken = DEPLOYMENT.replace("image: nginx", "image: a: b") + "      - \n"
    change(ktl, uri, broken, 3)
    item = await complete(ktl, uri, 12, 8)
    assert labels(item)[:2] == ["image", "name"]
    # Keys of a block read from indentation, not offered again.
    change(ktl, uri, "apiVersion: v1\nkind: Pod\nspec:\n  hostname: {\n  \n  dnsPolicy: x\n", 4)
    keys = labels(await complete(ktl, uri, 4, 2))
    assert "containers" in keys and "hostname" not in keys and "dnsPolicy" not in keys


async def test_custom_resources_from_a_workspace_crd(ktl: Ktl, tmp_path: Path) -> None:
    open_doc(ktl, write(tmp_path, "crd.yaml", WIDGET_CRD))
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  \n"
    uri = open_doc(ktl, tmp_path / "widget.yaml", widget)
    await workspace_checked(ktl)
    assert labels(await complete(ktl, uri, 5, 2)) == ["size", "color"]
    change(ktl, uri, widget.replace("spec:\n  \n", "spec:\n  color: \n"))
    assert labels(await complete(ktl, uri, 5, 9)) == ["red", "blue"]
    fresh = open_doc(ktl, write(tmp_path, "fresh.yaml", "kind: Widg\n"))
    widgets = [i for i in await complete(ktl, fresh, 0, 10) if i.label == "Widget"]
    assert [(i.detail, (i.additional_text_edits or [])[0].new_text) for i in widgets] == [
        ("example.com/v1", "apiVersion: example.com/v1\n")
    ]


async def test_names_of_objects_in_the_workspace(ktl: Ktl, tmp_path: Path) -> None:
    write(
        tmp_path,
        "config/maps.yaml",
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: token}
        """,
    )
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n"
        "    envFrom:\n    - configMapRef:\n        name: \n    - secretRef: {name: }\n"
    )
    uri = open_doc(ktl, tmp_path / "pod.yaml", pod)
    await workspace_checked(ktl)  # the other file is known once its folder has been read
    items = await complete(ktl, uri, 8, 14)
    assert labels(items) == ["settings"]
    assert items[0].kind == lsp.CompletionItemKind.Reference
    assert items[0].detail == "ConfigMap · maps.yaml"
    assert labels(await complete(ktl, uri, 9, 23)) == ["token"]


async def test_service_target_ports_and_ingress_backend_ports(ktl: Ktl, tmp_path: Path) -> None:
    write(tmp_path, "app.yaml", WORKLOADS)
    service = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n"
        "  selector: {app: web}\n  ports:\n  - port: 80\n    targetPort: \n"
    )
    uri = open_doc(ktl, tmp_path / "svc.yaml", service)
    await workspace_checked(ktl)
    ports = await complete(ktl, uri, 7, 16)
    assert [(i.label, i.detail) for i in ports] == [
        ("http", "containerPort 8080 · Deployment/web"),
        ("metrics", "containerPort 9100 · Deployment/web"),
    ]
    assert ports[0].kind == lsp.CompletionItemKind.Reference
    ingress = (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, namespace: shop}\n"
        "spec:\n  defaultBackend:\n    service:\n      name: web\n      port: {number: }\n"
    )
    backend = open_doc(ktl, tmp_path / "ingress.yaml", ingress)
    numbers = await complete(ktl, backend, 7, 21)
    assert [(i.label, edit_of(i).new_text) for i in numbers] == [("80", "80"), ("81", "81")]
    assert labels(await complete(ktl, backend, 6, 12)) == ["db", "s", "web"]


async def test_stack_needs_and_plan_deps(ktl: Ktl, tmp_path: Path) -> None:
    write(tmp_path, "stack/web/release.yaml", "name: web\nchart: ./chart\n")
    stack = (
        "name: shop\nreleases:\n  - name: db\n    chart: ./db\n"
        "  - name: api\n    chart: ./api\n    needs: [db, ]\n"
    )
    uri = open_doc(ktl, write(tmp_path, "stack/stack.yaml", stack))
    await workspace_checked(ktl)
    items = await complete(ktl, uri, 6, 16)
    assert labels(items) == ["web"]  # not api itself, not db already listed
    assert items[0].detail is not None and items[0].detail.endswith("· release.yaml")
    # The stack format's keys for a new release: the required chart first.
    change(ktl, uri, stack + "  - name: cache\n    \n")
    keys = await complete(ktl, uri, 8, 4)
    assert keys[0].label == "chart" and "needs" in labels(keys)
    plan = "nodes:\n  - id: lint\n    run: x\n  - id: test\n    run: y\n    deps:\n      - \n"
    planned = open_doc(ktl, tmp_path / "ci.plan.yaml", plan)
    assert labels(await complete(ktl, planned, 6, 8)) == ["lint"]
    # The plan format's keys, with their description at once.
    change(ktl, planned, plan.replace("    deps:\n      - \n", "    \n"))
    keys = await complete(ktl, planned, 5, 4)
    retries = next(i for i in keys if i.label == "retries")
    assert isinstance(retries.documentation, str) and "Attempts after" in retries.documentation
    assert "run" not in labels(keys) and "id" not in labels(keys)


async def test_bad_input_is_an_empty_answer(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", DEPLOYMENT))
    assert await complete(ktl, uri, 400, 0) == []  # past the end
    assert await complete(ktl, uri, 0, 400) == []  # past the line's end
    never = (tmp_path / "never-opened.yaml").as_uri()
    assert await complete(ktl, never, 0, 0) == []
    binary = open_doc(ktl, tmp_path / "blob.yaml", "apiVersion: v1\x00\x01\x02")
    assert await complete(ktl, binary, 0, 2) == []
    large = open_doc(ktl, tmp_path / "large.yaml", "kind: Pod\n" + "# x\n" * 4_500_000)
    assert await complete(ktl, large, 0, 6) == []
    unknown = "apiVersion: nope.example/v9\nkind: Thing\nspec:\n  \n"
    other = open_doc(ktl, tmp_path / "unknown.yaml", unknown)
    assert await complete(ktl, other, 3, 2) == []
    notes = open_doc(ktl, tmp_path / "notes.txt", "kind: \n")
    assert await complete(ktl, notes, 0, 6) == []  # not a file the server checks
    # A new file with nothing in it yet: the keys every object starts with.
    empty = open_doc(ktl, tmp_path / "empty.yaml", "\n")
    assert labels(await complete(ktl, empty, 0, 0)) == ["apiVersion", "kind", "metadata"]
    # The server is still answering.
    assert "strategy" in labels(await complete(ktl, uri, 5, 2))
