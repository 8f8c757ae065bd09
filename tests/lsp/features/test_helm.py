"""Helm charts end to end, through a real server process and real renders (Helm's Go SDK in the
server's render worker): errors at template lines as the user types, the time limit, a worker
that dies, missing dependencies, `ktl.helm.render`, its lenses, and the renderer switch."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest
from lsprotocol import types as lsp

from tests.conftest import Ktl, StartKtl
from tests.lsp.features.helpers import children
from tests.lsp.features.test_codelens import brief as lens_brief
from tests.lsp.features.test_codelens import lenses
from tests.lsp.features.test_diagnostics import Publishes, edit, open_doc, write

pytest.importorskip("helm_python")

FIXTURES = Path(__file__).parents[2] / "helm" / "fixtures"
SLOW = "{{- range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}\n"  # never ends in time


def helm_diagnostics(params: lsp.PublishDiagnosticsParams) -> list[lsp.Diagnostic]:
    return [d for d in params.diagnostics if d.code == "helm-render"]


def worker_pids(server_pid: int) -> list[int]:
    out = []
    for pid, _ in children(server_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"ktl_lsp.helm.worker" in fh.read():
                    out.append(pid)
        except OSError:
            continue
    return out


@pytest.fixture
def web(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "web", tmp_path / "web"))


async def test_render_errors_at_the_template_line_as_the_user_types(ktl: Ktl, web: Path) -> None:
    pubs = Publishes(ktl)
    service = web / "templates" / "service.yaml"
    uri = open_doc(ktl, service)
    # ci/ingress-values.yaml enables the ingress without a host: its `required` fails, on a
    # template that is not even open.
    ingress = (web / "templates" / "ingress.yaml").as_uri()
    params = await pubs.until(ingress, lambda p: bool(helm_diagnostics(p)))
    [required] = helm_diagnostics(params)
    assert (required.range.start.line, required.range.start.character) == (7, 12)
    assert required.severity == lsp.DiagnosticSeverity.Error and required.source == "ktl"
    assert required.message == (
        "ingress.host is required when ingress.enabled (render: ci/ingress-values.yaml)"
    )
    assert [(r.location.uri, r.message) for r in required.related_information or []] == [
        ((web / "ci" / "ingress-values.yaml").as_uri(), "render: ci/ingress-values.yaml")
    ]

    # An unsaved edit: a nil values path on line 9 of the open template.
    edit(ktl, uri, 2, 9, 12, 12, "{{ .Values.nope.port }}")
    params = await pubs.until(uri, lambda p: bool(helm_diagnostics(p)))
    [nil] = helm_diagnostics(params)
    assert (nil.range.start.line, nil.range.start.character, nil.range.end.character) == (9, 12, 35)
    assert nil.message.startswith("at <.Values.nope.port>: nil pointer evaluating")
    assert "(render: values.yaml, ci/daemonset-values.yml" in nil.message
    assert service.read_text() == (FIXTURES / "web" / "templates" / "service.yaml").read_text()

    edit(ktl, uri, 3, 9, 12, 35, "")
    await pubs.until(uri, lambda p: p.version == 3 and not helm_diagnostics(p))


async def test_ci_values_file_is_no_manifest_and_gets_no_false_error(ktl: Ktl, web: Path) -> None:
    pubs = Publishes(ktl)
    uri = open_doc(ktl, web / "ci" / "daemonset-values.yml")
    params = await pubs.until(uri, lambda p: p.version == 1)
    assert list(params.diagnostics) == []
    # The chart rendered with it (and the other renders) meanwhile: still nothing on the file.
    ingress = (web / "templates" / "ingress.yaml").as_uri()
    await pubs.until(ingress, lambda p: bool(helm_diagnostics(p)))
    assert list(pubs.latest(uri).diagnostics) == []  # type: ignore[union-attr]


async def test_missing_dependencies_are_one_note_on_chart_yaml(ktl: Ktl, tmp_path: Path) -> None:
    pubs = Publishes(ktl)
    chart = write(
        tmp_path,
        "app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
        "  - name: postgresql\n    version: 15.5.0\n    repository: https://charts.example.com\n",
    )
    write(
        tmp_path, "app/templates/db.yaml", 'host: {{ include "postgresql.primary.fullname" . }}\n'
    )
    uri = open_doc(ktl, chart)
    params = await pubs.until(uri, lambda p: bool(helm_diagnostics(p)))
    [note] = helm_diagnostics(params)
    assert note.severity == lsp.DiagnosticSeverity.Information and note.range.start.line == 3
    assert "postgresql 15.5.0" in note.message and '"helm dependency build"' in note.message
    # No render, so no storm of "no template postgresql.primary.fullname" errors.
    db = (tmp_path / "app" / "templates" / "db.yaml").as_uri()
    # The chart is checked again (an edit): the first check is long over, and still no render.
    edit(ktl, uri, 2, 0, 0, 0, "# still missing\n")
    params = await pubs.until(uri, lambda p: p.version == 2)
    assert len(helm_diagnostics(params)) == 1
    assert pubs.latest(db) is None


async def test_a_render_that_never_ends_is_cut_short_while_the_server_answers(
    start_ktl: StartKtl, web: Path
) -> None:
    ktl = await start_ktl(options={"helm": {"renderTimeout": 4}})
    pubs = Publishes(ktl)
    slow = write(web, "templates/slow.yaml", SLOW)
    chart_uri = open_doc(ktl, web / "Chart.yaml")
    await asyncio.sleep(0.3)  # the render is under way
    manifest = write(
        web.parent, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
    )
    manifest_uri = open_doc(ktl, manifest)
    symbols = await ktl.client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=manifest_uri))
    )
    # Answered while the render still runs (its cut is not published yet): not waiting for it.
    assert symbols and not any(helm_diagnostics(p) for p in pubs.log if p.uri == chart_uri)
    params = await pubs.until(chart_uri, lambda p: bool(helm_diagnostics(p)))
    [cut] = helm_diagnostics(params)
    assert cut.severity == lsp.DiagnosticSeverity.Warning
    assert cut.message.startswith("rendering stopped after 4 s (setting helm.renderTimeout)")
    # The template fixed in the editor: the next render (a new worker) succeeds.
    slow_uri = open_doc(ktl, slow)
    edit(ktl, slow_uri, 2, 0, 0, len(SLOW) - 1, "a: 1")
    await pubs.until(chart_uri, lambda p: not helm_diagnostics(p), timeout=30)


async def test_a_killed_worker_is_started_again(ktl: Ktl, web: Path) -> None:
    pubs = Publishes(ktl)
    uri = open_doc(ktl, web / "templates" / "service.yaml")
    await pubs.until((web / "templates" / "ingress.yaml").as_uri(), lambda p: bool(p.diagnostics))
    server = ktl.client._server
    assert server is not None
    [pid] = worker_pids(server.pid)
    os.kill(pid, signal.SIGKILL)
    edit(ktl, uri, 2, 9, 12, 12, "{{ .Values.nope.port }}")
    params = await pubs.until(uri, lambda p: bool(helm_diagnostics(p)))
    assert helm_diagnostics(params)[0].range.start.line == 9
    assert [p for p in worker_pids(server.pid) if p != pid]


async def test_render_command_and_lenses(ktl: Ktl, web: Path) -> None:
    template = web / "templates" / "service.yaml"
    answer = await ktl.cmd(
        "ktl.helm.render",
        {
            "uri": template.as_uri(),
            "release": "shop",
            "namespace": "prod",
            "set": {"service.port": 8080},
        },
    )
    assert answer["error"] is None and answer["label"] == "values.yaml"
    assert sorted(answer["manifests"]) == [
        "templates/ingress.yaml",
        "templates/service.yaml",
        "templates/workload.yaml",
    ]
    assert "name: shop-web\n  namespace: prod\n" in answer["manifests"]["templates/service.yaml"]
    assert "- port: 8080" in answer["manifests"]["templates/service.yaml"]

    values = web / "ci" / "ingress-values.yaml"
    answer = await ktl.cmd(
        "ktl.helm.render", {"uri": str(web), "valuesFiles": ["ci/ingress-values.yaml"]}
    )
    assert answer["label"] == "ingress-values.yaml" and answer["manifests"] == {}
    assert answer["error"] == {
        "message": "ingress.host is required when ingress.enabled",
        "uri": (web / "templates" / "ingress.yaml").as_uri(),
        "template": "templates/ingress.yaml",
        "line": 7,
        "character": 15,
    }
    with pytest.raises(Exception, match="not in a Helm chart"):
        await ktl.cmd("ktl.helm.render", {"uri": web.parent.as_uri()})

    chart_uri = open_doc(ktl, web / "Chart.yaml")
    assert [lens_brief(x) for x in await lenses(ktl, chart_uri)] == [
        (0, "Render", "ktl.helm.render", [{"uri": chart_uri}])
    ]
    template_uri = open_doc(ktl, template)
    assert [lens_brief(x) for x in await lenses(ktl, template_uri)] == [
        (0, "Render", "ktl.helm.render", [{"uri": template_uri}])
    ]
    values_uri = open_doc(ktl, values)
    assert [lens_brief(x) for x in await lenses(ktl, values_uri)] == [
        (
            0,
            "Render with this file",
            "ktl.helm.render",
            [{"uri": values_uri, "valuesFiles": [values_uri]}],
        )
    ]
    answer = await ktl.cmd("ktl.helm.render", {"uri": values_uri, "valuesFiles": [values_uri]})
    assert answer["error"]["line"] == 7


async def test_without_a_renderer_the_user_is_told_once(start_ktl: StartKtl, web: Path) -> None:
    ktl = await start_ktl(options={"helm": {"renderer": "none"}})
    pubs = Publishes(ktl)
    open_doc(ktl, web / "Chart.yaml")
    uri = open_doc(ktl, web / "templates" / "service.yaml")
    edit(ktl, uri, 2, 9, 12, 12, "{{ .Values.nope.port }}")
    await pubs.until(uri, lambda p: p.version == 2)
    nope = "{{ .Values.nope.port }}"
    edit(ktl, uri, 3, 9, 12, 12 + len(nope), "{{ .Values.other.port }}")  # checked again: not told
    await pubs.until(uri, lambda p: p.version == 3)
    told = [m for m in ktl.client.messages if "not rendered" in m.message]
    assert [(m.type, m.message) for m in told] == [
        (
            lsp.MessageType.Info,
            'ktl: Helm templates are not rendered (setting helm.renderer is "none")',
        )
    ]
    assert not helm_diagnostics(pubs.latest(uri) or lsp.PublishDiagnosticsParams(uri, []))
    with pytest.raises(Exception, match="not rendered"):
        await ktl.cmd("ktl.helm.render", {"uri": uri})


async def test_a_stack_release_renders_with_its_values_and_follows_their_edits(
    ktl: Ktl, tmp_path: Path
) -> None:
    pubs = Publishes(ktl)
    web = Path(shutil.copytree(FIXTURES / "web", tmp_path / "charts" / "web"))
    shutil.rmtree(web / "ci")
    write(
        tmp_path,
        "stack.yaml",
        "apiVersion: ktl.dev/v1\nkind: Stack\nname: shop\nreleases:\n"
        "  - name: front\n    chart: ./charts/web\n    namespace: shop\n"
        "    values: [front.yaml]\n",
    )
    front = write(tmp_path, "front.yaml", "ingress:\n  enabled: true\n")
    open_doc(ktl, web / "Chart.yaml")
    ingress = (web / "templates" / "ingress.yaml").as_uri()
    params = await pubs.until(ingress, lambda p: bool(helm_diagnostics(p)))
    [required] = helm_diagnostics(params)
    assert required.message.endswith("(render: stack release front)")
    assert [r.location.uri for r in required.related_information or []] == [front.as_uri()]
    # The release's values file is no chart file, yet editing it renders the chart again.
    uri = open_doc(ktl, front)
    edit(ktl, uri, 2, 1, 15, 15, "\n  host: shop.example.com")
    await pubs.until(ingress, lambda p: not helm_diagnostics(p))


SEEDED = Path(__file__).parents[2] / "helm" / "charts" / "seeded"


async def test_rendered_manifests_are_checked_at_the_template_lines(
    ktl: Ktl, tmp_path: Path
) -> None:
    """What the API server would refuse in the chart's render, on the template lines that wrote
    it, for a template the user has open; an unsaved fix clears it."""
    chart = Path(shutil.copytree(SEEDED, tmp_path / "seeded"))
    pubs = Publishes(ktl)
    deployment = chart / "templates" / "deployment.yaml"
    uri = open_doc(ktl, deployment)

    def rendered(p: lsp.PublishDiagnosticsParams) -> list[lsp.Diagnostic]:
        return [d for d in p.diagnostics if d.code != "helm-render"]

    params = await pubs.until(uri, lambda p: bool(rendered(p)))
    lines = deployment.read_text().splitlines()
    by_line = {d.range.start.line: d for d in rendered(params)}
    assert lines[7] == "  replica: {{ .Values.replicaCount }}"
    misspelled = by_line[7]
    assert (misspelled.code, misspelled.severity) == (
        "helm-template-schema",
        lsp.DiagnosticSeverity.Error,
    )
    assert misspelled.message.startswith('unknown field "spec.replica" (did you mean "replicas"?)')
    assert "(values: " in misspelled.message
    assert lines[22].strip() == 'containerPort: "{{ .Values.port }}"'
    assert "expected integer" in by_line[22].message
    edit(ktl, uri, 2, 7, 2, 9, "replicas")
    params = await pubs.until(
        uri, lambda p: p.version == 2 and 7 not in {d.range.start.line for d in rendered(p)}
    )
    assert 22 in {d.range.start.line for d in rendered(params)}
