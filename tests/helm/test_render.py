"""Rendering through the real worker process (Helm's Go SDK): manifests, errors at template
lines, the time limit, a worker that dies, unsaved buffers, and the backend switch."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from ktl_lsp.helm.model import RenderRequest, TemplateSpot
from ktl_lsp.helm.render import Renderer, parse_helm_error, split_template_output

pytest.importorskip("helm_python")

FIXTURES = Path(__file__).parent / "fixtures"

#: 10^8 iterations of an empty loop: far longer than any time limit in these tests.
SLOW = "{{- range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}\n"  # never ends in time


@pytest.fixture
def web(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "web", tmp_path / "web"))


@pytest.fixture
def renderer() -> Renderer:
    r = Renderer(timeout_s=10)
    yield r  # type: ignore[misc]
    r.close()


def test_renders_the_chart_as_helm_template_would(web: Path, renderer: Renderer) -> None:
    request = RenderRequest(web, release="shop", namespace="prod", kube_version="1.29")
    out = renderer.render_sync(request)
    assert out.error is None and not out.cut_short
    assert sorted(out.manifests) == [
        "templates/ingress.yaml",
        "templates/service.yaml",
        "templates/workload.yaml",
    ]  # NOTES.txt is not a manifest; the prefix "web/" is gone
    assert "name: shop-web\n  namespace: prod\n" in out.manifests["templates/service.yaml"]
    assert "kind: Deployment\n" in out.manifests["templates/workload.yaml"]


def test_capabilities_follow_the_configured_kubernetes_version(
    web: Path, renderer: Renderer
) -> None:
    (web / "templates" / "version.yaml").write_text("v: {{ .Capabilities.KubeVersion.Version }}\n")
    out = renderer.render_sync(RenderRequest(web, kube_version="1.29"))
    assert out.manifests["templates/version.yaml"] == "v: v1.29.0\n"


def test_values_files_and_set_are_merged_in_helms_order(web: Path, renderer: Renderer) -> None:
    (web / "a.yaml").write_text("image:\n  tag: a\nreplicaCount: 2\n")
    (web / "b.yaml").write_text("image:\n  tag: b\n")
    request = RenderRequest(web, (web / "a.yaml", web / "b.yaml"), (("replicaCount", "5"),))
    workload = renderer.render_sync(request).manifests["templates/workload.yaml"]
    assert 'image: "nginx:b"' in workload  # the later file wins, the repository stays
    assert "replicas: 5" in workload  # --set last


def test_required_fails_at_its_call_with_the_values_file(web: Path, renderer: Renderer) -> None:
    values = web / "ci" / "ingress-values.yaml"
    out = renderer.render_sync(RenderRequest(web, (values,), label="ci/ingress-values.yaml"))
    assert out.error is not None
    assert (out.error.template, out.error.line, out.error.column) == (
        "templates/ingress.yaml",
        7,
        15,
    )  # at `required`
    assert out.error.message == "ingress.host is required when ingress.enabled"
    assert out.error.values_file == values


def test_an_error_in_a_helper_names_the_include_on_the_way(web: Path, renderer: Renderer) -> None:
    helpers = web / "templates" / "_helpers.tpl"
    helpers.write_text(
        helpers.read_text() + '{{- define "web.bad" }}x: {{ .Values.no.key }}{{ end }}\n'
    )
    (web / "templates" / "bad.yaml").write_text('a: 1\nb: {{ include "web.bad" . }}\n')
    error = renderer.render_sync(RenderRequest(web)).error
    assert error is not None
    assert (error.template, error.line) == ("templates/_helpers.tpl", 8)
    assert error.via == (TemplateSpot("templates/bad.yaml", 1, 6),)
    assert error.message == "at <.Values.no.key>: nil pointer evaluating interface {}.key"


def test_unsaved_buffers_are_rendered_instead_of_the_files(web: Path, renderer: Renderer) -> None:
    service = web / "templates" / "service.yaml"
    edited = service.read_text().replace("port: {{", "port: {{ .Values.nope.port }}{{")
    new = web / "templates" / "extra.yaml"
    out = renderer.render_sync(
        RenderRequest(web), {service: edited, new: "x: é{{ .Values.a.b }}\n"}
    )
    assert out.error is not None and out.error.template in (
        "templates/service.yaml",
        "templates/extra.yaml",
    )
    assert service.read_text() != edited and not new.exists()  # the disk is untouched
    out = renderer.render_sync(RenderRequest(web), {new: "x: é{{ .Values.a.b }}\n"})
    assert out.error is not None
    # Helm says byte 15 (`.a`; é is two bytes); the column is in code points.
    assert (out.error.template, out.error.line, out.error.column) == ("templates/extra.yaml", 0, 14)
    # The buffer of the new file closed unsaved, another edited: the mirror follows.
    out = renderer.render_sync(RenderRequest(web), {service: service.read_text() + "# edited\n"})
    assert out.error is None and "templates/extra.yaml" not in out.manifests
    assert out.manifests["templates/service.yaml"].endswith("# edited\n")


def test_a_render_that_never_ends_is_cut_short_and_the_next_one_works(web: Path) -> None:
    renderer = Renderer(timeout_s=1)
    try:
        (web / "templates" / "slow.yaml").write_text(SLOW)
        started = time.monotonic()
        out = renderer.render_sync(RenderRequest(web))
        assert out.cut_short and out.error is not None
        assert out.error.message == "rendering stopped after 1 s (setting helm.renderTimeout)"
        assert time.monotonic() - started < 8
        assert renderer.worker_pid is None  # killed with its render
        (web / "templates" / "slow.yaml").unlink()
        out = renderer.render_sync(RenderRequest(web))
        assert out.error is None and "templates/service.yaml" in out.manifests
        assert renderer.starts == 2
    finally:
        renderer.close()


def test_a_worker_that_is_killed_is_started_again(web: Path, renderer: Renderer) -> None:
    assert renderer.render_sync(RenderRequest(web)).error is None
    pid = renderer.worker_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):
        if renderer.worker_pid is None:
            break
        time.sleep(0.01)
    out = renderer.render_sync(RenderRequest(web))
    assert out.error is None and out.manifests
    assert renderer.worker_pid not in (None, pid) and renderer.starts == 2


def test_output_past_the_size_cap_is_cut_short(web: Path) -> None:
    renderer = Renderer(max_bytes=64 * 1024)
    try:
        (web / "templates" / "huge.yaml").write_text('data: {{ repeat 200000 "x" }}\n')
        out = renderer.render_sync(RenderRequest(web))
        assert out.cut_short and "templates/huge.yaml" not in out.manifests
        assert "templates/service.yaml" in out.manifests  # the rest is still checked
        assert out.error is not None and "larger than" in out.error.message
    finally:
        renderer.close()


def test_the_none_backend_renders_nothing_and_says_why(web: Path) -> None:
    renderer = Renderer("none")
    assert not renderer.available()
    out = renderer.render_sync(RenderRequest(web))
    assert out.error is not None and 'helm.renderer is "none"' in out.error.message
    assert renderer.worker_pid is None


def test_helms_error_formats() -> None:
    assert parse_helm_error('parse error at (c/templates/x.yaml:2): function "b" not defined') == (
        'function "b" not defined',
        [TemplateSpot("templates/x.yaml", 1, None)],
    )
    message, spots = parse_helm_error(
        'template: c/templates/x.yaml:6:15: executing "c/templates/x.yaml" at <.Values.a.b>: '
        "nil pointer evaluating interface {}.b"
    )
    assert message == "at <.Values.a.b>: nil pointer evaluating interface {}.b"
    assert spots == [TemplateSpot("templates/x.yaml", 5, 15)]
    recursion = (
        'template: c/templates/x.yaml:2:6: executing "c/templates/x.yaml" at <include "l" .>: '
        + (
            'error calling include: template: c/templates/x.yaml:1:23: executing "l" at <include "l" .>: '
            * 500
        )
        + "error calling include: rendering template has a nested reference name: l"
    )
    message, spots = parse_helm_error(recursion)
    assert spots == [
        TemplateSpot("templates/x.yaml", 1, 6),
        TemplateSpot("templates/x.yaml", 0, 23),
    ]
    assert message.endswith("nested reference name: l") and len(message) < 1000


def test_helm_template_output_is_split_by_source() -> None:
    text = (
        "---\n# Source: c/templates/a.yaml\nkind: A\n"
        "---\n# Source: c/templates/b.yaml\nkind: B1\n---\n# Source: c/templates/b.yaml\nkind: B2\n"
    )
    assert split_template_output(text) == {
        "c/templates/a.yaml": "kind: A\n",
        "c/templates/b.yaml": "kind: B1\n---\nkind: B2\n",
    }


def test_a_schema_with_a_remote_ref_is_never_fetched(web: Path, renderer: Renderer) -> None:
    import json
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        schema = {"$ref": f"http://127.0.0.1:{port}/schema.json"}
        (web / "values.schema.json").write_text(json.dumps(schema))
        out = renderer.render_sync(RenderRequest(web))
        assert out.error is None and out.manifests  # rendered, without that schema
        # the same in an editor buffer
        buffer = {web / "values.schema.json": json.dumps({**schema, "type": "object"})}
        assert renderer.render_sync(RenderRequest(web), buffer).error is None
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    # a schema of its own is still Helm's to check
    (web / "values.schema.json").write_text(json.dumps({"required": ["nope"]}))
    out = renderer.render_sync(RenderRequest(web))
    assert out.error is not None and "nope" in out.error.message
