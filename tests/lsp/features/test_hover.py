"""Hover end to end: schema descriptions from a real server process, on parsed and half-typed
documents, in the configured Kubernetes version, and empty answers for bad input."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.conftest import Ktl, StartKtl
from tests.lsp.features.test_codelens import open_doc, write
from tests.lsp.features.test_diagnostics import workspace_checked

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: "web 😀"}, namespace: shop}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        imagePullPolicy: Always
        ports:
          - containerPort: 80
            protocol: TCP
"""


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          description: A widget on the shelf.
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, description: How big the widget is.}
                color: {type: string, enum: [red, blue]}
"""


async def hover(ktl: Ktl, uri: str, line: int, character: int) -> lsp.Hover | None:
    return await ktl.client.text_document_hover_async(
        lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=line, character=character),
        )
    )


def markdown(result: lsp.Hover | None) -> str:
    assert result is not None
    assert isinstance(result.contents, lsp.MarkupContent)
    assert result.contents.kind == lsp.MarkupKind.Markdown
    return result.contents.value


def span(result: lsp.Hover | None) -> tuple[int, int, int]:
    assert result is not None and result.range is not None
    rng = result.range
    assert rng.start.line == rng.end.line
    return rng.start.line, rng.start.character, rng.end.character


async def test_a_field_s_description_type_default_and_range(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", DEPLOYMENT))
    replicas = await hover(ktl, uri, 4, 4)
    text = markdown(replicas)
    assert text.startswith("**replicas** `integer (int32)`")
    assert "Number of desired pods" in text and "Default: `1`" in text
    assert "required" not in text.splitlines()[0]
    assert "apps/v1 Deployment · spec.replicas" in text
    assert span(replicas) == (4, 2, 10)
    # On the value: the same field, the key's range.
    assert span(await hover(ktl, uri, 4, 13)) == (4, 2, 10)


async def test_required_fields_enums_and_items_of_lists(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", DEPLOYMENT))
    name = markdown(await hover(ktl, uri, 12, 9))
    assert name.startswith("**name** `string` · required")
    assert "spec.template.spec.containers[0].name" in name
    policy = markdown(await hover(ktl, uri, 14, 10))
    assert "Values: `Always`, `IfNotPresent`, `Never`" in policy
    protocol = markdown(await hover(ktl, uri, 17, 14))
    assert "Default: `TCP`" in protocol and "`SCTP`" in protocol
    containers = markdown(await hover(ktl, uri, 11, 8))
    assert containers.startswith("**containers** `[]Container` · required")


async def test_ranges_count_utf16_code_units(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", DEPLOYMENT))
    line = DEPLOYMENT.splitlines()[2]
    column = line.index("namespace") + 1  # one UTF-16 unit more than the code points
    result = await hover(ktl, uri, 2, column + 1)
    assert "**namespace** `string`" in markdown(result)
    assert span(result) == (2, column, column + len("namespace"))


async def test_api_version_and_kind_describe_the_resource(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", DEPLOYMENT))
    for line, character in ((0, 3), (0, 14), (1, 2), (1, 9)):
        text = markdown(await hover(ktl, uri, line, character))
        assert text.startswith("**Deployment** `apps/v1`")
        assert "declarative updates for Pods" in text and "Not served" not in text


async def test_an_api_version_the_configured_version_does_not_serve(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    pdb = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: p\n"
    old = (
        "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nspec:\n  maxReplicas: 3\n"
    )
    ktl = await start_ktl(options={"k8sVersion": "1.30"})
    uri = open_doc(ktl, write(tmp_path, "pdb.yaml", pdb + "---\n" + old))
    text = markdown(await hover(ktl, uri, 0, 3))
    assert "**Not served in Kubernetes 1.30**" in text
    assert "Use `apiVersion: policy/v1`" in text
    assert "max disruption" in text  # described from the version that replaces it
    hpa = markdown(await hover(ktl, uri, 5, 2))
    assert "(served in 1.25)" in hpa and "Use `apiVersion: autoscaling/v2`" in hpa
    # Fields of an apiVersion the configured version dropped: from the last version serving it.
    most = markdown(await hover(ktl, uri, 8, 4))
    assert most.startswith("**maxReplicas** `integer (int32)` · required")


async def test_a_half_typed_document_still_answers_on_its_current_text(
    ktl: Ktl, tmp_path: Path
) -> None:
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", DEPLOYMENT))
    edited = DEPLOYMENT.replace(
        "        image: nginx\n", "        image: nginx\n        imagePul\n"
    )
    edited += "  strategy: {type: [\n"
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=edited)],
        )
    )
    # At once, before the check of the edit has published: the answer is about the edited text.
    image = await hover(ktl, uri, 13, 9)
    assert markdown(image).startswith("**image** `string`")
    policy = markdown(await hover(ktl, uri, 15, 10))
    assert policy.startswith("**imagePullPolicy**")
    assert await hover(ktl, uri, 14, 10) is None  # `imagePul`: no such field


async def test_custom_resources_from_a_workspace_crd(ktl: Ktl, tmp_path: Path) -> None:
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n"
    open_doc(ktl, write(tmp_path, "crd.yaml", WIDGET_CRD))
    uri = open_doc(ktl, write(tmp_path, "widget.yaml", widget))
    await workspace_checked(ktl)  # the CRD is known once its folder has been read
    size = markdown(await hover(ktl, uri, 5, 3))
    assert size.startswith("**size** `integer` · required") and "How big the widget is." in size
    kind = markdown(await hover(ktl, uri, 1, 8))
    assert "custom resource" in kind and "A widget on the shelf." in kind
    name = markdown(await hover(ktl, uri, 3, 3))
    assert name.startswith("**name** `string`")


async def test_bad_input_is_an_empty_answer(ktl: Ktl, tmp_path: Path) -> None:
    uri = open_doc(ktl, write(tmp_path, "deploy.yaml", DEPLOYMENT))
    assert await hover(ktl, uri, 400, 0) is None  # past the end
    assert await hover(ktl, uri, 0, 400) is None  # past the line's end
    assert await hover(ktl, uri, 5, 0) is None  # in the indentation before a key
    never = (tmp_path / "never-opened.yaml").as_uri()
    assert await hover(ktl, never, 0, 0) is None
    binary = open_doc(ktl, tmp_path / "blob.yaml", "apiVersion: v1\x00\x01\x02")
    assert await hover(ktl, binary, 0, 2) is None
    unknown = open_doc(
        ktl,
        write(
            tmp_path, "unknown.yaml", "apiVersion: nope.example/v9\nkind: Thing\nspec:\n  a: 1\n"
        ),
    )
    assert await hover(ktl, unknown, 0, 2) is None
    assert await hover(ktl, unknown, 3, 2) is None
    stack = open_doc(ktl, write(tmp_path, "stack.yaml", "name: s\nreleases: []\n"))
    assert await hover(ktl, stack, 0, 1) is None
    # The server is still answering.
    assert markdown(await hover(ktl, uri, 4, 4)).startswith("**replicas**")


async def test_the_versions_where_a_field_exists_and_deprecated_api_versions(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    ktl = await start_ktl(options={"k8sVersion": "1.29"})
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  schedulingGates: []\n"
        "  serviceAccount: x\n  containers: []\n"
    )
    flow = "apiVersion: flowcontrol.apiserver.k8s.io/v1beta3\nkind: FlowSchema\n"
    uri = open_doc(ktl, write(tmp_path, "pod.yaml", pod + "---\n" + flow))
    gates = markdown(await hover(ktl, uri, 4, 4))
    assert "Kubernetes: 1.26..1.37 (since 1.26)" in gates
    alias = markdown(await hover(ktl, uri, 5, 4))
    assert "Kubernetes: 1.25..1.37 (every bundled version); deprecated" in alias
    schema = markdown(await hover(ktl, uri, 9, 3))
    assert (
        "**Deprecated**: `flowcontrol.apiserver.k8s.io/v1beta3` FlowSchema is removed in " in schema
    )
    assert "Kubernetes 1.32; use `apiVersion: flowcontrol.apiserver.k8s.io/v1`." in schema
