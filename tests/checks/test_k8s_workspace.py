"""Checks across files: duplicate resources and Services that select nothing."""

from __future__ import annotations

from pathlib import Path

from ktl_lsp.checks import check_paths
from tests.checks.conftest import brief

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: prod}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api, tier: web}}
    spec: {containers: [{name: api, image: api:1}]}
"""

SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: api, namespace: prod}
spec:
  selector: {app: api}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ghost, namespace: prod}
spec:
  selector: {app: ghost}
  ports: [{port: 80}]
"""


def test_duplicates_across_files_and_service_without_workload(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DEPLOY)
    (tmp_path / "b.yaml").write_text("# copy\n" + DEPLOY)
    (tmp_path / "svc.yaml").write_text(SERVICES)
    results = check_paths([tmp_path])
    a, b, svc = (results[(tmp_path / n).resolve()] for n in ("a.yaml", "b.yaml", "svc.yaml"))
    assert brief(a) == [("k8s-duplicate-resource", 2, 17, 2, 20, "warning")]
    assert brief(b) == [("k8s-duplicate-resource", 3, 17, 3, 20, "warning")]
    assert a[0].related[0].path == str((tmp_path / "b.yaml").resolve())
    assert a[0].related[0].range.start.line == 3
    assert brief(svc) == [("k8s-service-no-match", 11, 2, 11, 10, "information")]
    assert "app=ghost" in svc[0].message


def test_same_name_in_other_namespaces_is_no_duplicate(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DEPLOY)
    (tmp_path / "b.yaml").write_text(DEPLOY.replace("namespace: prod", "namespace: dev"))
    results = check_paths([tmp_path])
    assert all(findings == [] for findings in results.values())
