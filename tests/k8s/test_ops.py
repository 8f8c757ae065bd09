"""Apply, diff and delete against the loopback API server, through the real kubernetes client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ktl_lsp.k8s import ops
from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from ktl_lsp.k8s.errors import Unauthorized, Unreachable
from ktl_lsp.k8s.manifests import Manifest, load
from tests.k8s.conftest import Out
from tests.k8s_api import FakeApi, write_kubeconfig

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""
NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
"""
CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data: {mode: fast}
"""


def manifests(*docs: str) -> list[Manifest]:
    return load("---\n".join(docs))[1]


async def test_apply_in_dependency_order_then_unchanged(cluster: Cluster, api: FakeApi) -> None:
    out = Out()
    docs = manifests(DEPLOY, NAMESPACE, CONFIG)
    first = await ops.apply(cluster, docs, ops.Options(), out)
    assert [(o.manifest.kind, o.action) for o in first] == [
        ("Deployment", "created"),
        ("Namespace", "created"),
        ("ConfigMap", "created"),
    ]
    sent = [e["resource"] for e in out.events]
    assert sent == ["Namespace/shop", "ConfigMap/settings", "Deployment/web"]  # namespace first
    live = api.get("apps/v1", "Deployment", "web", "shop")
    assert live is not None
    assert live["metadata"]["managedFields"][0]["manager"] == "ktl-lsp"
    again = await ops.apply(cluster, docs, ops.Options(), Out())
    assert {o.action for o in again} == {"unchanged"}
    changed = manifests(DEPLOY.replace("replicas: 2", "replicas: 3"), NAMESPACE)
    third = await ops.apply(cluster, changed, ops.Options(), Out())
    assert [o.action for o in third] == ["configured", "unchanged"]


async def test_invalid_object_maps_causes_to_lines(cluster: Cluster, api: FakeApi) -> None:
    bad = DEPLOY.replace("image: nginx:1.27", "image: ''").replace("replicas: 2", "replicas: -1")
    text = "---\n".join([NAMESPACE, bad])
    _, docs = load(text)
    [ns, dep] = await ops.apply(cluster, docs, ops.Options(), Out())
    assert ns.action == "created" and dep.action == "failed"
    assert dep.message is not None and 'Deployment.apps "web" is invalid' in dep.message
    lines = text.splitlines()
    where = {
        f.message: lines[f.range.start.line][f.range.start.character : f.range.end.character]
        for f in dep.findings
    }
    assert where == {
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0": "replicas",
        "spec.template.spec.containers[0].image: Required value": "image",
    }
    assert all(f.code == "k8s-api-error" for f in dep.findings)
    # a field that is not in the manifest lands on its closest parent that is
    missing = DEPLOY.replace("        image: nginx:1.27\n", "")
    _, docs = load(missing)
    [dep] = await ops.apply(cluster, docs, ops.Options(namespace="shop"), Out())
    [finding] = dep.findings
    assert finding.message.endswith("(at spec.template.spec.containers[0].image)")
    assert missing.splitlines()[finding.range.start.line].strip() == "- name: web"


async def test_conflict_names_the_other_manager_and_force_takes_over(
    cluster: Cluster, api: FakeApi
) -> None:
    await ops.apply(cluster, manifests(NAMESPACE, DEPLOY), ops.Options(), Out())
    other = load(DEPLOY.replace("replicas: 2", "replicas: 4"))[1][0].obj
    await cluster.request(
        "PATCH",
        "/apis/apps/v1/namespaces/shop/deployments/web",
        [("fieldManager", "kubectl"), ("force", "true")],
        body=other,
        content_type="application/apply-patch+yaml",
    )
    text = DEPLOY.replace("replicas: 2", "replicas: 5")
    _, docs = load(text)
    [dep] = await ops.apply(cluster, docs, ops.Options(), Out())
    assert dep.action == "failed"
    assert dep.message is not None and 'conflict with "kubectl"' in dep.message
    [finding] = dep.findings
    assert text.splitlines()[finding.range.start.line].strip() == "replicas: 5"
    assert 'conflict with "kubectl" using apps/v1: .spec.replicas' in finding.message
    [dep] = await ops.apply(cluster, docs, ops.Options(force=True), Out())
    assert dep.action == "configured"
    live = api.get("apps/v1", "Deployment", "web", "shop")
    assert live is not None and live["spec"]["replicas"] == 5


async def test_dry_run_persists_nothing(cluster: Cluster, api: FakeApi) -> None:
    out = Out()
    result = await ops.apply(cluster, manifests(NAMESPACE), ops.Options(dry_run=True), out)
    assert [o.action for o in result] == ["created"]
    assert "(dry run)" in out.text
    assert api.get("v1", "Namespace", "shop") is None


async def test_bad_documents_are_not_sent_and_the_rest_proceed(
    cluster: Cluster, api: FakeApi
) -> None:
    text = "---\n".join(
        [
            NAMESPACE,
            "kind: [unclosed\n",
            "metadata: {name: x}\n",
            "apiVersion: v9\nkind: Gizmo\nmetadata: {name: g}\n",
            CONFIG,
        ]
    )
    _, docs = load(text)
    result = await ops.apply(cluster, docs, ops.Options(), Out())
    assert [o.action for o in result] == ["created", "failed", "failed", "failed", "created"]
    assert result[1].message is not None and result[1].message.startswith("not sent: YAML error")
    assert result[2].message == "not sent: the document has no kind"
    assert result[3].message == "not sent: the cluster does not serve kind Gizmo in v9"
    assert all(o.findings for o in result[1:4])
    # atomic: nothing at all is sent
    api.objects.clear()
    result = await ops.apply(cluster, docs, ops.Options(atomic=True), Out())
    assert [o.action for o in result] == ["skipped", "failed", "failed", "failed", "skipped"]
    assert api.get("v1", "Namespace", "shop") is None


async def test_custom_resource_after_its_crd(cluster: Cluster, api: FakeApi) -> None:
    crd = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true}]
"""
    cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n"
    result = await ops.apply(cluster, manifests(cr, crd), ops.Options(), Out())
    assert [o.action for o in result] == ["created", "created"]
    assert api.get("example.com/v1", "Widget", "w1", "default") is not None


async def test_diff_is_normalized(cluster: Cluster, api: FakeApi) -> None:
    await ops.apply(cluster, manifests(NAMESPACE, DEPLOY), ops.Options(), Out())
    out = Out()
    result = await ops.diff(
        cluster,
        manifests(NAMESPACE, DEPLOY.replace("nginx:1.27", "nginx:1.28"), CONFIG),
        ops.Options(),
        out,
    )
    assert [o.action for o in result] == ["unchanged", "configured", "created"]
    dep = result[1].diff
    assert dep.startswith(
        "--- live/apps.v1.Deployment.shop.web\n+++ merged/apps.v1.Deployment.shop.web\n"
    )
    assert "\n-      - image: nginx:1.27\n+      - image: nginx:1.28\n" in dep
    for noise in (
        "managedFields",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "status",
        "uid",
    ):
        assert noise not in dep
    assert "+data:\n+  mode: fast\n" in result[2].diff
    assert result[0].diff == ""
    assert api.get("v1", "ConfigMap", "settings", "shop") is None  # diff never persists


async def test_delete_with_propagation(cluster: Cluster, api: FakeApi) -> None:
    await ops.apply(cluster, manifests(NAMESPACE, DEPLOY), ops.Options(), Out())
    for _ in range(100):
        if len([k for k in api.objects if k[1] == "pods"]) == 2:
            break
        await asyncio.sleep(0.02)
    assert len([k for k in api.objects if k[1] == "pods"]) == 2
    dry = await ops.delete(cluster, manifests(DEPLOY), ops.Options(dry_run=True), Out())
    assert [o.action for o in dry] == ["deleted"]
    assert api.get("apps/v1", "Deployment", "web", "shop") is not None
    result = await ops.delete(
        cluster, manifests(NAMESPACE, DEPLOY), ops.Options(propagation="Foreground"), Out()
    )
    assert [o.action for o in result] == ["deleted", "deleted"]
    for _ in range(100):
        if not [k for k in api.objects if k[1] in ("pods", "deployments")]:
            break
        await asyncio.sleep(0.02)
    assert not [k for k in api.objects if k[1] in ("pods", "deployments")]
    again = await ops.delete(cluster, manifests(DEPLOY), ops.Options(), Out())
    assert [o.action for o in again] == ["absent"]


async def test_forbidden_fails_that_object_only(cluster: Cluster, api: FakeApi) -> None:
    api.forbid("patch", "configmaps")
    result = await ops.apply(cluster, manifests(NAMESPACE, CONFIG), ops.Options(), Out())
    assert [o.action for o in result] == ["created", "failed"]
    assert result[1].message is not None
    assert result[1].message.startswith(
        'forbidden by the cluster\'s RBAC: configmaps "settings" is forbidden: User "admin" cannot patch'
    )


async def test_expired_credentials_and_unreachable(api: FakeApi, tmp_path: Path) -> None:
    bad = Cluster(
        load_kubeconfig(
            {"KUBECONFIG": str(write_kubeconfig(tmp_path / "bad", api, token="expired"))}
        )
    )
    with pytest.raises(Unauthorized, match="credentials"):
        await ops.apply(bad, manifests(NAMESPACE), ops.Options(), Out())
    await bad.close()
    config = write_kubeconfig(tmp_path / "kc", api)
    await api.stop()
    gone = Cluster(load_kubeconfig({"KUBECONFIG": str(config)}))
    with pytest.raises(
        Unreachable, match=r"cannot reach the cluster of context fake \(http://127\.0\.0\.1:\d+\)"
    ):
        await ops.apply(gone, manifests(NAMESPACE), ops.Options(), Out())
    await gone.close()


def test_normalize_follows_ktl() -> None:
    obj = {
        "metadata": {
            "name": "x",
            "uid": "u",
            "finalizers": ["f"],
            "annotations": {"helm.sh/chart": "c", "checksum/config": "1", "keep": "k"},
        },
        "spec": {"clusterIP": "", "ports": [{"name": "b"}, {"name": "a"}]},
        "status": {"phase": "x"},
    }
    assert ops.normalize(obj) == {
        "metadata": {"name": "x", "annotations": {"keep": "k"}},
        "spec": {"ports": [{"name": "a"}, {"name": "b"}]},
    }
