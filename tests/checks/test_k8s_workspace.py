"""Checks across files: duplicate resources and Services that select nothing."""

from __future__ import annotations

from pathlib import Path

from ktl_lsp.checks import Workspace, check_paths
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


def test_list_items_are_objects_of_the_workspace(tmp_path: Path) -> None:
    """Each item of a list is an object: symbols, references, duplicates, selected workloads."""
    listed = "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n" + "".join(
        "- " + line + "\n" if i == 0 else "  " + line + "\n"
        for doc in (DEPLOY, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n")
        for i, line in enumerate(doc.splitlines())
    )
    workspace = Workspace()
    lists = workspace.update(tmp_path / "list.yaml", listed)
    assert lists == {(tmp_path / "list.yaml").resolve()}
    workspace.update(tmp_path / "svc.yaml", SERVICES)
    workspace.update(tmp_path / "copy.yaml", DEPLOY)
    objects = {
        (p.summary.kind, p.summary.name, p.name_range.start.line) for p in workspace.all_objects()
    }
    assert {("Deployment", "api", 6), ("ConfigMap", "cfg", 14)} <= objects
    assert [p.summary.name for p in workspace.objects("ConfigMap")] == ["cfg"]
    assert brief(workspace.findings_for(tmp_path / "list.yaml")) == [
        ("k8s-duplicate-resource", 6, 19, 6, 22, "warning")
    ]
    # the Service "api" selects the Deployment of the list; only "ghost" selects nothing
    [no_match] = workspace.findings_for(tmp_path / "svc.yaml")
    assert "app=ghost" in no_match.message


def test_typed_list_items_inherit_their_kind(tmp_path: Path) -> None:
    workspace = Workspace()
    workspace.update(
        tmp_path / "cms.yaml",
        "apiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: a}\n"
        "- metadata: {name: b, namespace: x}\n",
    )
    assert sorted((p.summary.kind, p.summary.name) for p in workspace.all_objects()) == [
        ("ConfigMap", "a"),
        ("ConfigMap", "b"),
    ]
    assert workspace.findings_for(tmp_path / "cms.yaml") == []
