"""Kustomize-aware checks, on the layout of Argo CD's `manifests/`: patches are partial objects,
and a duplicate is a warning only where its copies are applied together."""

from __future__ import annotations

from pathlib import Path

from ktl_lsp.checks import Workspace
from tests.checks.conftest import brief

SERVER = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-server
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: argocd-server}
  template:
    metadata:
      labels: {app.kubernetes.io/name: argocd-server}
    spec:
      containers:
      - name: argocd-server
        image: quay.io/argoproj/argocd:latest
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: argocd-server
spec:
  selector: {app.kubernetes.io/name: argocd-server}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""

# manifests/ha/base/overlays/argocd-server-deployment.yaml: no selector, no image.
HA_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-server
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: argocd-server
        env:
        - name: ARGOCD_API_SERVER_REPLICAS
          value: '2'
"""

HA_KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
patches:
- path: overlays/argocd-server-deployment.yaml
patchesStrategicMerge:
- overlays/argocd-cmd-params-cm.yaml
patchesJson6902:
- target: {version: v1, kind: Service, name: argocd-server}
  path: overlays/remove-namespace.yaml
resources:
- ../../base/server
- https://github.com/argoproj/argo-cd//manifests/crds?ref=stable
"""


def layout(tmp_path: Path) -> tuple[Workspace, Path]:
    """The parts of Argo CD's manifests/ that matter here, as editor buffers."""
    m = tmp_path / "manifests"
    workspace = Workspace()
    files = {
        "base/server/kustomization.yaml": "resources:\n- argocd-server-deployment.yaml\n"
        "- argocd-server-service.yaml\n",
        "base/server/argocd-server-deployment.yaml": SERVER,
        "base/server/argocd-server-service.yaml": SERVICE,
        "ha/base/kustomization.yaml": HA_KUSTOMIZATION,
        "ha/base/overlays/argocd-server-deployment.yaml": HA_PATCH,
        "ha/base/overlays/argocd-cmd-params-cm.yaml": "apiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: argocd-cmd-params-cm\n  labels: {bad label: x}\n",
        "ha/base/overlays/remove-namespace.yaml": "- op: remove\n  path: /metadata/namespace\n",
        "install.yaml": SERVER + "---\n" + SERVICE,
        "ha/install.yaml": SERVER + "---\n" + SERVICE,
    }
    for name, text in files.items():
        workspace.update(m / name, text)
    return workspace, m


def test_patches_are_checked_as_partial_objects(tmp_path: Path) -> None:
    workspace, m = layout(tmp_path)
    assert workspace.findings_for(m / "ha/base/overlays/argocd-server-deployment.yaml") == []
    assert workspace.findings_for(m / "ha/base/overlays/remove-namespace.yaml") == []
    [label] = workspace.findings_for(m / "ha/base/overlays/argocd-cmd-params-cm.yaml")
    assert (label.code, label.range.start.line) == ("k8s-schema", 4)  # types still checked

    overlay = m / "ha/base/overlays/argocd-server-deployment.yaml"
    broken = HA_PATCH.replace("replicas: 2", "replicas: two\n  strategy: {type: Sometimes}")
    broken = broken.replace("        env:", "        $patch: merge\n        envv:")
    workspace.update(overlay, broken)
    found = workspace.findings_for(overlay)
    assert brief(found) == [
        ("k8s-schema", 5, 12, 5, 15, "error"),  # replicas: two
        ("k8s-schema", 6, 19, 6, 28, "error"),  # the enum
        ("k8s-schema", 12, 8, 12, 12, "error"),  # unknown field "envv"; $patch is a directive
    ]


def test_a_kustomization_change_rechecks_the_files_it_names(tmp_path: Path) -> None:
    workspace, m = layout(tmp_path)
    kustomization, overlay = m / "ha/base/kustomization.yaml", m / "ha/base/overlays"
    patch = overlay / "argocd-server-deployment.yaml"
    without = HA_KUSTOMIZATION.replace("- path: overlays/argocd-server-deployment.yaml\n", "")
    affected = workspace.update(kustomization, without)
    assert patch.resolve() in affected
    assert (overlay / "remove-namespace.yaml").resolve() not in affected  # still a patch
    messages = [f.message for f in workspace.findings_for(patch)]
    assert 'missing required field "selector" in spec' in messages  # an object now
    assert patch.resolve() in workspace.update(kustomization, HA_KUSTOMIZATION)
    assert workspace.findings_for(patch) == []


def test_duplicates_only_where_applied_together(tmp_path: Path) -> None:
    workspace, m = layout(tmp_path)
    base = m / "base/server/argocd-server-deployment.yaml"
    # Four copies (base, install.yaml, ha/install.yaml; the ha patch is none): never applied
    # together, so one hint on the first copy and nothing elsewhere.
    [hint] = workspace.findings_for(base)
    assert (hint.code, hint.severity) == ("k8s-duplicate-resource", "hint")
    assert "also defined in 2 other place(s)" in hint.message
    assert {r.path for r in hint.related} == {
        str((m / "install.yaml").resolve()),
        str((m / "ha/install.yaml").resolve()),
    }
    assert workspace.findings_for(m / "install.yaml") == []
    assert workspace.findings_for(m / "ha/install.yaml") == []

    # A peer of install.yaml is applied with it (kubectl apply -f manifests/).
    workspace.update(m / "namespace-install.yaml", SERVER)
    [peer] = workspace.findings_for(m / "install.yaml")
    assert peer.severity == "warning"
    assert peer.message == (
        'apps/Deployment "argocd-server" is defined 2 times in this directory '
        "(applied together by kubectl apply -f)"
    )
    # A second copy among one kustomization's resources (through a directory resource).
    extra = m / "ha/base/extra.yaml"
    workspace.update(extra, SERVER)
    assert workspace.findings_for(extra) == []  # ha/base is applied with -k: not in resources
    workspace.update(
        m / "ha/base/kustomization.yaml",
        HA_KUSTOMIZATION.replace("resources:\n", "resources:\n- extra.yaml\n"),
    )
    [together] = workspace.findings_for(extra)
    assert together.severity == "warning"
    assert together.message.endswith("in the resources of base/kustomization.yaml")
    assert together.related[0].path == str(base.resolve())
    [base_warning, base_hint] = workspace.findings_for(base)
    assert (base_warning.severity, base_hint.severity) == ("warning", "hint")


def test_copies_in_one_file_are_duplicates(tmp_path: Path) -> None:
    workspace = Workspace()
    path = tmp_path / "deploy" / "all.yaml"
    workspace.update(path, SERVER + "---\n" + SERVER)
    found = workspace.findings_for(path)
    assert [(f.severity, f.range.start.line) for f in found] == [("warning", 3), ("warning", 18)]
    assert found[0].message.endswith("defined 2 times in this file")


def test_a_patch_is_no_object_of_the_workspace(tmp_path: Path) -> None:
    workspace, m = layout(tmp_path)
    paths = {p.path for p in workspace.objects("Deployment", "apps")}
    assert str((m / "ha/base/overlays/argocd-server-deployment.yaml").resolve()) not in paths
    assert str((m / "base/server/argocd-server-deployment.yaml").resolve()) in paths
