"""Helm templates end to end, through a real server process: completion of `.Values` paths,
builtins, named templates and functions; hover and definition on values paths and includes;
references of a values key; the helm-values-ref diagnostics at their exact ranges; broken
template text answered without error."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp

from tests.conftest import Ktl
from tests.helm.test_values_refs import SHOP, write_chart
from tests.lsp.features.test_completion import change, complete, labels
from tests.lsp.features.test_diagnostics import Publishes, brief, open_doc
from tests.lsp.features.test_hover import hover, markdown, span

WARNING, HINT = lsp.DiagnosticSeverity.Warning, lsp.DiagnosticSeverity.Hint


@pytest.fixture
def pubs(ktl: Ktl) -> Publishes:
    return Publishes(ktl)


def shop(tmp_path: Path) -> Path:
    return write_chart(tmp_path / "shop", SHOP)


def locations(result: object) -> list[tuple[str, int, int, int]]:
    assert isinstance(result, list | tuple)
    out = []
    for location in result:
        assert isinstance(location, lsp.Location)
        rng = location.range
        assert rng.start.line == rng.end.line
        out.append(
            (Path(location.uri[7:]).name, rng.start.line, rng.start.character, rng.end.character)
        )
    return out


async def test_completion_in_templates(ktl: Ktl, tmp_path: Path) -> None:
    deploy = shop(tmp_path) / "templates" / "deploy.yaml"
    typing = deploy.read_text() + (
        "a: {{ .Values.image.r }}\n"
        "b: {{ .Release. }}\n"
        'c: {{ include "sh }}\n'
        "d: {{ toY }}\n"
        "{{- with .Values.image }}{{ .t }}{{ end }}\n"
    )
    uri = open_doc(ktl, deploy, typing)
    top = await complete(ktl, uri, 5, len("  replicas: {{ .Values."))
    assert labels(top) == [
        "config",
        "extra",
        "global",
        "image",
        "name",
        "redis",
        "replicas",
        "unusedKey",
    ]
    details = {i.label: i.detail for i in top}
    assert details["replicas"] == "integer = 2" and details["image"] == "object"
    assert details["extra"] == "object"  # from values-prod.yaml
    image = await complete(ktl, uri, 16, len("a: {{ .Values.image.r"))
    assert labels(image) == ["repository", "tag"]
    edit = image[0].text_edit
    assert isinstance(edit, lsp.TextEdit)
    assert (edit.range.start.character, edit.range.end.character) == (20, 21)
    release = labels(await complete(ktl, uri, 17, len("b: {{ .Release.")))
    assert {"Name", "Namespace", "Revision", "IsInstall"} <= set(release)
    named = await complete(ktl, uri, 18, len('c: {{ include "sh'))
    assert labels(named) == ["shop.name"]
    assert named[0].documentation is not None
    functions = {i.label: i for i in await complete(ktl, uri, 19, len("d: {{ toY"))}
    assert functions["toYaml"].detail == "toYaml VALUE -> string"
    assert functions["toYaml"].kind == lsp.CompletionItemKind.Function
    assert len(functions) > 150
    relative = await complete(ktl, uri, 20, len("{{- with .Values.image }}{{ .t"))
    assert labels(relative) == ["repository", "tag"]
    # Outside actions: plain YAML text gets nothing from the template completion.
    assert await complete(ktl, uri, 0, 3) == []


async def test_hover_on_values_paths_includes_and_functions(ktl: Ktl, tmp_path: Path) -> None:
    deploy = shop(tmp_path) / "templates" / "deploy.yaml"
    text = deploy.read_text().replace(".Values.image.tagg", ".Values.image.tag")
    uri = open_doc(ktl, deploy, text)
    replicas = await hover(ktl, uri, 5, 25)
    assert markdown(replicas).splitlines() == [
        "**.Values.replicas**",
        "",
        "- `values.yaml`: `2` (integer)",
        "- `values-prod.yaml`: `5` (integer)",
    ]
    assert span(replicas) == (5, 23, 31)
    tag_column = text.splitlines()[9].index(".Values.image.tag") + len(".Values.image.")
    tag = markdown(await hover(ktl, uri, 9, tag_column + 1))
    assert '- `values.yaml`: `"1.25"` (string)' in tag
    assert "The image tag to run." in tag and "Schema type: `string`" in tag
    image = markdown(await hover(ktl, uri, 9, 31))  # on `image` of .Values.image.repository
    assert image.startswith("**.Values.image**")
    include = await hover(ktl, uri, 3, 22)
    assert markdown(include).startswith('**define "shop.name"** · templates/_helpers.tpl:1')
    assert "{{ .Chart.Name }}-{{ .Release.Name }}" in markdown(include)
    assert span(include) == (3, 19, 30)
    quote = markdown(await hover(ktl, uri, 13, text.splitlines()[13].index("quote") + 1))
    assert quote.startswith("```\nquote VALUE -> string\n```")
    assert await hover(ktl, uri, 0, 3) is None  # plain YAML between actions


async def test_definition_and_references(ktl: Ktl, tmp_path: Path) -> None:
    chart = shop(tmp_path)
    deploy = chart / "templates" / "deploy.yaml"
    uri = open_doc(ktl, deploy)
    client = ktl.client

    async def definition(line: int, character: int) -> object:
        return await client.text_document_definition_async(
            lsp.DefinitionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=line, character=character),
            )
        )

    assert locations(await definition(5, 25)) == [
        ("values.yaml", 3, 0, 8),
        ("values-prod.yaml", 0, 0, 8),
    ]
    assert locations(await definition(9, 40)) == [("values.yaml", 1, 2, 12)]
    assert locations(await definition(3, 22)) == [("_helpers.tpl", 0, 12, 21)]
    values = chart / "values.yaml"
    values_uri = open_doc(ktl, values)

    async def references(path_uri: str, line: int, character: int, declaration: bool) -> object:
        return await client.text_document_references_async(
            lsp.ReferenceParams(
                text_document=lsp.TextDocumentIdentifier(uri=path_uri),
                position=lsp.Position(line=line, character=character),
                context=lsp.ReferenceContext(include_declaration=declaration),
            )
        )

    assert locations(await references(values_uri, 3, 2, False)) == [("deploy.yaml", 5, 15, 31)]
    assert locations(await references(values_uri, 1, 5, True)) == [
        ("values.yaml", 1, 2, 12),
        ("deploy.yaml", 9, 21, 45),
    ]
    assert locations(await references(values_uri, 4, 3, False)) == []  # unusedKey
    assert locations(await references(uri, 3, 22, True)) == [
        ("_helpers.tpl", 0, 12, 21),
        ("deploy.yaml", 3, 19, 30),
    ]


async def test_values_ref_diagnostics_follow_edits_across_files(
    ktl: Ktl,
    pubs: Publishes,
    tmp_path: Path,
) -> None:
    chart = shop(tmp_path)
    deploy_uri = open_doc(ktl, chart / "templates" / "deploy.yaml")
    values_uri = open_doc(ktl, chart / "values.yaml")
    published = await pubs.until(deploy_uri, lambda p: bool(p.diagnostics))
    assert brief(published.diagnostics) == [("helm-values-ref", 9, 52, 9, 70, WARNING, "ktl")]
    hints = (await pubs.until(values_uri, lambda p: len(p.diagnostics) == 2)).diagnostics
    assert brief(hints) == [
        ("helm-values-ref", 2, 2, 2, 5, HINT, "ktl"),
        ("helm-values-ref", 4, 0, 4, 9, HINT, "ktl"),
    ]
    assert all(list(d.tags or []) == [lsp.DiagnosticTag.Unnecessary] for d in hints)
    # Fix the typo in the template: its warning goes, and so does values.yaml's hint on tag.
    fixed = (chart / "templates" / "deploy.yaml").read_text().replace("image.tagg", "image.tag")
    change(ktl, deploy_uri, fixed)
    await pubs.until(deploy_uri, lambda p: p.version == 2 and not p.diagnostics)
    left = await pubs.until(values_uri, lambda p: len(p.diagnostics) == 1)
    assert brief(left.diagnostics) == [("helm-values-ref", 4, 0, 4, 9, HINT, "ktl")]
    # Define the missing path in values.yaml instead: the template is re-checked too.
    change(ktl, deploy_uri, fixed.replace(".Values.replicas", ".Values.replicaCount"), version=3)
    warned = await pubs.until(deploy_uri, lambda p: p.version == 3 and bool(p.diagnostics))
    assert brief(warned.diagnostics) == [("helm-values-ref", 5, 15, 5, 35, WARNING, "ktl")]
    values_text = (chart / "values.yaml").read_text() + "replicaCount: 1\n"
    change(ktl, values_uri, values_text)
    await pubs.until(deploy_uri, lambda p: not p.diagnostics)


BROKEN = """\
metadata:
  name: {{ include "x
  labels: {{ .Values.image. | }}
{{- if .Values.a }}
{{- with }}{{ end }}{{ end }}{{ end }}
  x: {{ index .Values }} {{ $.Values.. }} {{ /* unclosed
  y: {{ "unterminated
{{- define "d" }}{{ .Values.z
"""


async def test_broken_template_text_is_answered_without_error(
    ktl: Ktl,
    pubs: Publishes,
    tmp_path: Path,
) -> None:
    chart = shop(tmp_path)
    path = chart / "templates" / "broken.yaml"
    path.write_text(BROKEN)
    uri = open_doc(ktl, path)
    client = ktl.client
    lines = BROKEN.splitlines()
    for line, text in enumerate(lines):
        for character in range(0, len(text) + 2, 3):
            position = lsp.Position(line=line, character=character)
            document = lsp.TextDocumentIdentifier(uri=uri)
            await complete(ktl, uri, line, character)
            await hover(ktl, uri, line, character)
            await client.text_document_definition_async(
                lsp.DefinitionParams(text_document=document, position=position)
            )
            await client.text_document_references_async(
                lsp.ReferenceParams(
                    text_document=document,
                    position=position,
                    context=lsp.ReferenceContext(include_declaration=True),
                )
            )
    published = await pubs.until(uri)
    assert all(d.code == "helm-values-ref" for d in published.diagnostics)
    assert labels(await complete(ktl, uri, 2, len("  labels: {{ .Values.image."))) == [
        "repository",
        "tag",
    ]


async def test_named_templates_files_get_the_same_help(
    ktl: Ktl,
    pubs: Publishes,
    tmp_path: Path,
) -> None:
    helpers = shop(tmp_path) / "templates" / "_helpers.tpl"
    text = (
        helpers.read_text() + '{{- define "shop.image" -}}\n{{ .Values.image.repo }}\n{{- end }}\n'
    )
    uri = open_doc(ktl, helpers, text)
    published = await pubs.until(uri, lambda p: bool(p.diagnostics))
    assert brief(published.diagnostics) == [("helm-values-ref", 4, 3, 4, 21, WARNING, "ktl")]
    assert labels(await complete(ktl, uri, 4, len("{{ .Values.image."))) == ["repository", "tag"]
