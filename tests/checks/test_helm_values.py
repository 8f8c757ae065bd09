"""Helm values files against values.schema.json, merged over the chart defaults."""

from __future__ import annotations

import json
from pathlib import Path

from ktl_lsp.checks import check_paths
from tests.checks.conftest import brief

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {
            "type": "object",
            "required": ["repository"],
            "properties": {"repository": {"type": "string"}, "tag": {"type": "string"}},
            "additionalProperties": False,
        },
        "replicas": {"type": "integer", "minimum": 1},
    },
}


def _chart(tmp_path: Path) -> Path:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "values.schema.json").write_text(json.dumps(SCHEMA))
    (chart / "templates" / "d.yaml").write_text(
        "replicas: {{ .Values.replicas }}\nimage: {{- toYaml .Values.image | nindent 2 }}\n"
    )
    return chart


def test_values_against_schema(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    (chart / "values.yaml").write_text(
        "image:\n  repository: nginx\n  tag: 1\n  pull: Always\nreplicas: 0\n"
    )
    findings = check_paths([chart])[(chart / "values.yaml").resolve()]
    assert brief(findings) == [
        ("helm-values-schema", 2, 7, 2, 8, "error"),  # tag: 1 is not a string
        ("helm-values-schema", 3, 2, 3, 6, "error"),  # additional property
        ("helm-values-schema", 4, 10, 4, 11, "error"),  # minimum
    ]


def test_override_file_is_merged_over_the_defaults(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    (chart / "values.yaml").write_text("image:\n  repository: nginx\n")
    (chart / "values-prod.yaml").write_text("replicas: 3\n")
    (chart / "values-bad.yaml").write_text("replicas: many\n")
    results = check_paths([chart])
    assert results[(chart / "values-prod.yaml").resolve()] == []
    assert brief(results[(chart / "values-bad.yaml").resolve()]) == [
        ("helm-values-schema", 0, 10, 0, 14, "error")
    ]


def test_missing_required_value_points_at_the_parent_key(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    (chart / "values.yaml").write_text("replicas: 1\nimage:\n  tag: x\n")
    findings = check_paths([chart])[(chart / "values.yaml").resolve()]
    assert brief(findings) == [("helm-values-schema", 1, 0, 1, 5, "error")]
    assert "'repository' is a required property" in findings[0].message


def test_ci_values_files_are_checked_as_values_of_the_chart(tmp_path: Path) -> None:
    """chart-testing's `ci/*-values.yaml`: no manifest errors for a `kind:` key, and the chart's
    schema (merged over its values.yaml) applies."""
    chart = _chart(tmp_path)
    (chart / "values.yaml").write_text("image:\n  repository: nginx\n")
    (chart / "ci").mkdir()
    (chart / "ci" / "daemonset-values.yml").write_text("kind: DaemonSet\n")
    (chart / "ci" / "bad-values.yaml").write_text("replicas: many\n")
    results = check_paths([chart])
    assert results[(chart / "ci" / "daemonset-values.yml").resolve()] == []
    assert brief(results[(chart / "ci" / "bad-values.yaml").resolve()]) == [
        ("helm-values-schema", 0, 10, 0, 14, "error")
    ]
