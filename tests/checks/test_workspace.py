"""The server-facing Workspace: incremental updates, affected files, encodings, outline."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktl_lsp.checks import Workspace
from ktl_lsp.documents import LineIndex

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm{i}}}\ndata: {{k: v}}\n"


def test_update_reparses_only_touched_documents_and_shifts_findings(tmp_path: Path) -> None:
    workspace = Workspace()
    path = tmp_path / "many.yaml"
    docs = [CM.format(i=i) for i in range(100)]
    workspace.update(path, "---\n".join(docs))
    assert workspace.findings_for(path) == []
    misses = workspace._cache.misses
    docs[50] = docs[50].replace("data: {k: v}", "data: {k: 1}")
    workspace.update(path, "# header\n" + "---\n".join(docs))
    assert workspace._cache.misses == misses + 2  # document 50, and document 0 (new header)
    [finding] = workspace.findings_for(path)
    assert finding.code == "k8s-schema"
    assert finding.range.start.line == 1 + 50 * 5 + 3
    # the same edit again moves the finding without re-checking anything
    workspace.update(path, "# header\n# more\n" + "---\n".join(docs))
    [moved] = workspace.findings_for(path)
    assert moved.range.start.line == finding.range.start.line + 1


def test_update_reports_affected_files(tmp_path: Path) -> None:
    workspace = Workspace()
    a, b, crd = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "crd.yaml"
    workspace.update(a, CM.format(i=1))
    workspace.update(b, CM.format(i=2))
    assert workspace.update(b, CM.format(i=2) + "# comment\n") == {b.resolve()}
    assert workspace.update(b, CM.format(i=1)) == {a.resolve(), b.resolve()}  # now duplicates
    assert [f.code for f in workspace.findings_for(a)] == ["k8s-duplicate-resource"]
    crd_text = (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: xs.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n"
        "  names: {kind: X, plural: xs}\n  versions: [{name: v1, served: true, storage: true,"
        " schema: {openAPIV3Schema: {type: object}}}]\n"
    )
    assert workspace.update(crd, crd_text) == {a.resolve(), b.resolve(), crd.resolve()}


def test_utf16_ranges(tmp_path: Path) -> None:
    workspace = Workspace()
    path = tmp_path / "u.yaml"
    workspace.update(
        path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {😀: x}}\n"
    )
    [finding] = workspace.findings_for(path)
    assert finding.range.start.character == 29
    [utf32] = workspace.findings_for(path, "utf-32")
    assert utf32.range.start.character == 29
    workspace.update(
        path,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {n: 😀}, labels: {a: b c}}\n",
    )
    [finding] = workspace.findings_for(path)
    [utf32] = workspace.findings_for(path, "utf-32")
    assert finding.range.start.character == utf32.range.start.character + 1


def test_outline_for_code_lens(tmp_path: Path) -> None:
    workspace = Workspace()
    path = tmp_path / "app.yaml"
    workspace.update(
        path,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
    )
    items = workspace.outline(path)
    assert [(i.label, i.document, i.range.start.line, i.is_workload) for i in items] == [
        ("Deployment/web", 0, 0, True),
        ("Service/web", 1, 5, False),
    ]


def test_close_falls_back_to_disk(tmp_path: Path) -> None:
    workspace = Workspace()
    path = tmp_path / "x.yaml"
    path.write_text(CM.format(i=1))
    workspace.load(path)
    workspace.update(path, "a: [\n")
    assert [f.code for f in workspace.findings_for(path)] == ["yaml-syntax"]
    workspace.close(path)
    assert workspace.findings_for(path) == []


def test_a_closed_buffer_keeps_no_parse_and_disk_files_live_in_the_cache(tmp_path: Path) -> None:
    workspace = Workspace()
    workspace._cache.max_bytes = 0  # nothing stays cached: parses live only in open buffers
    disk, buffer = tmp_path / "disk.yaml", tmp_path / "buffer.yaml"
    disk.write_text(CM.format(i=1).replace("{k: v}", "{k: 1}"))
    workspace.load(disk)
    assert workspace.parse_stats()["openBytes"] == 0
    workspace.update(buffer, CM.format(i=2))
    held = workspace.parse_stats()["openBytes"]
    assert held > 0 and workspace.parse_stats()["openFiles"] == 1
    # A file read from disk is parsed again when its findings are asked for.
    assert [f.code for f in workspace.findings_for(disk)] == ["k8s-schema"]
    workspace.close(buffer)
    assert workspace.parse_stats() == {
        "cacheBytes": 0,
        "cacheEntries": 0,
        "cacheLimitBytes": 0,
        "openBytes": 0,
        "openFiles": 0,
    }


def test_a_binary_buffer_is_binary_even_in_a_chart(tmp_path: Path) -> None:
    workspace = Workspace()
    text = "kind: {{ .Values.kind }}\n\x00\x01\x02"
    for path in (tmp_path / "chart/templates/x.yaml", tmp_path / "x.yaml"):
        workspace.update(path, text)
        assert [f.code for f in workspace.findings_for(path)] == ["file-binary"]


YAMLISH = st.lists(
    st.sampled_from(
        [
            "apiVersion: v1", "apiVersion: apps/v1", "kind: ConfigMap", "kind: Deployment",
            "metadata:", "  name: a😀", "  name: ok", "  labels: {a: b c}", "spec:",
            "  replicas: x", "  selector: {matchLabels: {a: b}}", "data: {k: 1}", "---",
            "  - é", "a: &x [*x]", "b: [", "key: value", "key: value", "\t", "# c",
        ]
    ),
    max_size=30,
)  # fmt: skip


@given(YAMLISH)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_finding_lies_inside_the_document(tmp_path: Path, lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    workspace = Workspace()
    path = tmp_path / "h.yaml"
    workspace.update(path, text)
    index = LineIndex(text)
    for finding in workspace.findings_for(path, "utf-32"):
        for pos in (finding.range.start, finding.range.end):
            assert 0 <= pos.line <= index.line_count()
            assert 0 <= pos.character <= len(index.line_text(pos.line)) + 1
        assert finding.range.start <= finding.range.end


def test_a_release_deleted_before_the_folder_scan_reached_it(tmp_path: Path) -> None:
    """The stack analysis read b from disk though the workspace never loaded it: deleting b
    must still make a's need missing."""
    (tmp_path / "charts/app").mkdir(parents=True)
    (tmp_path / "charts/app/Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 0.1.0\n")
    (tmp_path / "stack.yaml").write_text("defaults:\n  cluster: {name: c1}\n")
    for name, extra in (("a", "needs: [b]\n"), ("b", "")):
        (tmp_path / f"svc/{name}").mkdir(parents=True)
        (tmp_path / f"svc/{name}/release.yaml").write_text(
            f"name: {name}\nchart: ../../charts/app\n{extra}"
        )
    a, b = tmp_path / "svc/a/release.yaml", tmp_path / "svc/b/release.yaml"
    workspace = Workspace()
    workspace.update(a, a.read_text())
    assert workspace.findings_for(a) == []
    b.unlink()
    assert a.resolve() in workspace.remove(b)
    assert [f.code for f in workspace.findings_for(a)] == ["stack-missing-need"]


def test_editing_ktl_yaml_rechecks_values_files(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    config = tmp_path / ".ktl.yaml"
    config.write_text("secrets:\n  providers:\n    vault: {type: vault}\n")
    values = tmp_path / "chart" / "values.yaml"
    values.parent.mkdir()
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    values.write_text("password: secret://prod/db/password\n")
    workspace = Workspace()
    workspace.load(values)
    workspace.update(config, config.read_text())
    [finding] = workspace.findings_for(values)
    assert finding.message == 'secret provider "prod" is not configured'
    fixed = "secrets:\n  providers:\n    prod: {type: vault}\n"
    assert values.resolve() in workspace.update(config, fixed)  # an unsaved edit counts
    assert workspace.findings_for(values) == []


def test_a_file_read_from_disk_is_parsed_on_demand_for_a_position(tmp_path: Path) -> None:
    """The folder scan can hold an open buffer's text as a disk file (no parse kept) before the
    buffer's own check runs: hover and completion must still get a parse."""
    from ktl_lsp.checks import Workspace

    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n"
    path = tmp_path / "cm.yaml"
    path.write_text(text)
    ws = Workspace()
    ws.add_directory(tmp_path)
    kind, parsed = ws.parsed_for(path, text)
    assert parsed is not None and len(parsed.documents) == 1
    kind2, parsed2, first = ws.parsed_around(path, text, 1)
    assert kind2 == kind and parsed2 is not None and first == 0
