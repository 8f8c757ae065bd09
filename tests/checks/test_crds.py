"""Custom resources validate against CRDs found in the workspace (all served versions)."""

from __future__ import annotations

from pathlib import Path

from ktl_lsp.checks import check_paths
from tests.checks.conftest import brief

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1, maximum: 10}
                color: {type: string, enum: [red, blue]}
                port: {x-kubernetes-int-or-string: true}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
    - name: v1alpha1
      served: true
      storage: false
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    - name: v0
      served: false
      storage: false
      schema:
        openAPIV3Schema: {type: object}
"""

RESOURCES = """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: good}
spec: {size: 3, color: red, port: http, extra: {anything: [1, 2]}}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: bad}
spec:
  size: 11
  color: green
  colour: red
---
apiVersion: example.com/v1alpha1
kind: Widget
metadata: {name: loose}
spec: {whatever: true}
---
apiVersion: example.com/v0
kind: Widget
metadata: {name: old}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: nope}
"""


def test_custom_resources_validate_against_their_crd(tmp_path: Path) -> None:
    (tmp_path / "crd.yaml").write_text(CRD)
    (tmp_path / "widgets.yaml").write_text(RESOURCES)
    results = check_paths([tmp_path])
    assert results[(tmp_path / "crd.yaml").resolve()] == []
    findings = results[(tmp_path / "widgets.yaml").resolve()]
    assert brief(findings) == [
        ("k8s-schema", 9, 8, 9, 10, "error"),  # size > 10
        ("k8s-schema", 10, 9, 10, 14, "error"),  # enum
        ("k8s-schema", 11, 2, 11, 8, "error"),  # unknown field (strict from 1.27)
        ("k8s-schema", 18, 12, 18, 26, "error"),  # served: false
        ("k8s-unknown-kind", 23, 6, 23, 12, "error"),  # no Gadget in example.com
    ]
    assert 'did you mean "color"' in findings[2].message


def test_without_the_crd_a_custom_resource_gets_only_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "widgets.yaml"
    path.write_text(RESOURCES.split("---")[0])
    [finding] = check_paths([path])[path.resolve()]
    assert finding.severity == "hint" and finding.code == "k8s-unknown-kind"


def test_crds_as_the_api_server_returns_them() -> None:
    from ktl_lsp.checks.crds import crd_versions_of_object

    obj = {
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"kind": "Gizmo"},
            "versions": [
                {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v0", "served": False},
                {"served": True},  # no name: ignored
            ],
        }
    }
    [v1, v0] = crd_versions_of_object(obj)
    assert (v1.api_version, v1.kind, v1.served, v1.namespaced) == (
        "example.com/v1",
        "Gizmo",
        True,
        False,
    )
    assert v1.schema == {"type": "object"} and v0.served is False and v0.schema is None
    for broken in (None, [], {"spec": []}, {"spec": {"group": "x"}}, {"spec": {"names": "Gizmo"}}):
        assert crd_versions_of_object(broken) == []
