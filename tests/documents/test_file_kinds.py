"""File-kind detection: the editor and `ktl-lsp check` classify files the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktl_lsp.documents import FileKind, detect_file_kind
from ktl_lsp.documents.file_kinds import is_checkable_name


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    (tmp_path / "chart" / "templates").mkdir(parents=True)
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    return tmp_path / "chart"


def test_kinds_by_path(chart: Path, tmp_path: Path) -> None:
    assert detect_file_kind(chart / "templates" / "deploy.yaml", "a: 1\n") == FileKind.HELM_TEMPLATE
    assert detect_file_kind(chart / "values.yaml", "a: 1\n") == FileKind.HELM_VALUES
    assert detect_file_kind(chart / "values-prod.yaml", "a: 1\n") == FileKind.HELM_VALUES
    assert detect_file_kind(tmp_path / "values.yaml", "a: 1\n") == FileKind.K8S_MANIFEST
    helpers = chart / "templates" / "_helpers.tpl"
    assert detect_file_kind(helpers, '{{- define "x" }}{{ end }}') == FileKind.HELM_TEMPLATE
    assert is_checkable_name(helpers) and not is_checkable_name(chart / "notes.tpl")
    tpl = 'greeting: "hello {{ .Values.name }}"\n'  # rendered by `tpl`, still values
    assert detect_file_kind(chart / "values.yaml", tpl) == FileKind.HELM_VALUES
    assert detect_file_kind(chart / "Chart.yaml") == FileKind.HELM_CHART
    assert detect_file_kind(tmp_path / "stack.yaml", "name: s\n") == FileKind.KTL_STACK
    assert detect_file_kind(tmp_path / "release.yaml", "kind: Release\n") == FileKind.KTL_RELEASE
    assert detect_file_kind(tmp_path / ".ktl.yaml") == FileKind.KTL_CONFIG
    assert detect_file_kind(tmp_path / "build.plan.yaml") == FileKind.PLAN
    assert detect_file_kind(tmp_path / "build.plan.json") == FileKind.PLAN
    assert detect_file_kind(tmp_path / "ktl-plan.yaml") == FileKind.PLAN
    assert detect_file_kind(tmp_path / "kustomization.yaml") == FileKind.OTHER
    assert detect_file_kind(tmp_path / "notes.txt") == FileKind.OTHER


def test_release_yaml_of_another_project_is_a_manifest(tmp_path: Path) -> None:
    text = "apiVersion: apps/v1\nkind: Deployment\n"
    assert detect_file_kind(tmp_path / "release.yaml", text) == FileKind.K8S_MANIFEST


def test_helm_syntax_outside_templates_but_not_quoted_placeholders(tmp_path: Path) -> None:
    helm = "metadata:\n  name: {{ .Release.Name }}\n"
    assert detect_file_kind(tmp_path / "x.yaml", helm) == FileKind.HELM_TEMPLATE
    prometheus = 'annotations:\n  summary: "{{ $labels.instance }} is down"\n'
    assert detect_file_kind(tmp_path / "x.yaml", prometheus) == FileKind.K8S_MANIFEST
    argo = "args: ['{{inputs.parameters.message}}']\n"
    assert detect_file_kind(tmp_path / "x.yaml", argo) == FileKind.K8S_MANIFEST


def test_chart_testing_ci_values_are_values_not_manifests(chart: Path, tmp_path: Path) -> None:
    """`ci/daemonset-values.yml` of a public chart has a `kind: DaemonSet` key: values still."""
    text = "kind: DaemonSet\nreplicaCount: 2\n"
    assert detect_file_kind(chart / "ci" / "daemonset-values.yml", text) == FileKind.HELM_VALUES
    assert detect_file_kind(chart / "ci" / "ha-values.yaml", text) == FileKind.HELM_VALUES
    # Outside a chart, or not named *-values, a ci/ file is what its content says.
    assert detect_file_kind(tmp_path / "ci" / "ha-values.yaml", text) == FileKind.K8S_MANIFEST
    assert detect_file_kind(chart / "ci" / "job.yaml", text) == FileKind.K8S_MANIFEST
