"""Apply, diff and delete against the loopback API server, through the real kubernetes client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ktl_lsp.k8s import ops
from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from ktl_lsp.k8s.errors import Unauthorized, Unreachable
from ktl_lsp.k8s.manifests import Manifest, load
from tests.k8s.conftest import Out, apply_as
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


CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true}]
"""
WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n"


async def test_custom_resource_waits_for_its_crd_to_be_established(
    cluster: Cluster, api: FakeApi
) -> None:
    api.crd_delay = 0.3  # the kind is served only once the CRD is Established
    result = await ops.apply(cluster, manifests(WIDGET, CRD), ops.Options(), Out())
    assert [o.action for o in result] == ["created", "created"]
    crd = api.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    assert crd is not None
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]} == {
        "NamesAccepted": "True",
        "Established": "True",
    }
    widget = api.get("example.com/v1", "Widget", "w1", "default")
    assert widget is not None
    assert int(widget["metadata"]["resourceVersion"]) > int(crd["metadata"]["resourceVersion"])
    # A deleted CRD takes its kind and its objects with it; the cached discovery is re-read.
    deleted = await ops.delete(cluster, manifests(CRD), ops.Options(), Out())
    assert [o.action for o in deleted] == ["deleted"]
    assert not [k for k in api.objects if k[:2] == ("example.com", "widgets")]
    [again] = await ops.apply(cluster, manifests(WIDGET), ops.Options(), Out())
    assert again.action == "failed"
    assert again.message == "not sent: the cluster does not serve kind Widget in example.com/v1"


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


async def test_unknown_fields_and_wrong_types_fail_at_their_lines(
    cluster: Cluster, api: FakeApi
) -> None:
    await ops.apply(cluster, manifests(NAMESPACE), ops.Options(), Out())
    text = DEPLOY.replace("replicas: 2", "replicas: '2'").replace(
        "image: nginx:1.27", "image: nginx:1.27\n        imagePullPolice: Always"
    )
    _, docs = load(text)
    [dep] = await ops.apply(cluster, docs, ops.Options(), Out())
    assert dep.action == "failed"
    assert dep.message is not None
    assert dep.message.startswith("failed to create typed patch object (shop/web; apps/v1, Kind")
    lines = text.splitlines()
    where = {lines[f.range.start.line].strip(): f.message for f in dep.findings}
    assert where == {
        "replicas: '2'": ".spec.replicas: expected numeric (int or float), got string",
        "imagePullPolice: Always": '.spec.template.spec.containers[name="web"].imagePullPolice: '
        "field not declared in schema",
    }
    assert api.get("apps/v1", "Deployment", "web", "shop") is None
    # The API's default (Warn) would have dropped the field and said so only in a header.
    body = load(DEPLOY.replace("replicas: 2", "replicaz: 2"))[1][0].obj
    response = await cluster.send(
        "PATCH",
        "/apis/apps/v1/namespaces/shop/deployments/web",
        [("fieldManager", "kubectl")],
        body=body,
        content_type="application/apply-patch+yaml",
    )
    response.release()
    assert response.status == 201
    assert response.headers.getall("Warning") == ['299 - "unknown field \\"spec.replicaz\\""']


async def test_what_an_apply_body_may_not_carry(cluster: Cluster, api: FakeApi) -> None:
    await ops.apply(cluster, manifests(NAMESPACE, CONFIG), ops.Options(), Out())
    live = api.get("v1", "ConfigMap", "settings", "shop")
    assert live is not None
    exported = {**live, "data": {"mode": "slow"}}  # as from kubectl get -o yaml
    text = yaml.safe_dump(exported)
    [o] = await ops.apply(cluster, load(text)[1], ops.Options(), Out())
    assert (o.action, o.message) == ("failed", "metadata.managedFields must be nil")
    # resourceVersion is a precondition: a stale one is refused, the current one applies.
    del exported["metadata"]["managedFields"]
    current = exported["metadata"]["resourceVersion"]
    exported["metadata"]["resourceVersion"] = "1"
    [o] = await ops.apply(cluster, load(yaml.safe_dump(exported))[1], ops.Options(), Out())
    assert o.action == "failed" and o.message is not None
    assert o.message.startswith('Operation cannot be fulfilled on configmaps "settings"')
    exported["metadata"]["resourceVersion"] = current
    [o] = await ops.apply(cluster, load(yaml.safe_dump(exported))[1], ops.Options(), Out())
    assert (o.action, o.message) == ("configured", None)
    # status belongs to the status subresource: an apply's is ignored.
    with_status = DEPLOY + "status: {replicas: 7, readyReplicas: 7}\n"
    [o] = await ops.apply(cluster, manifests(with_status), ops.Options(), Out())
    assert o.action == "created"
    dep = api.get("apps/v1", "Deployment", "web", "shop")
    assert dep is not None and dep.get("status", {}).get("readyReplicas") != 7


async def test_list_items_merge_by_their_own_keys(cluster: Cluster, api: FakeApi) -> None:
    """Container ports are keyed by containerPort and protocol, env by name: another manager's
    port and variable join ours instead of conflicting or replacing them."""
    ported = DEPLOY.replace(
        "image: nginx:1.27",
        "image: nginx:1.27\n        ports: [{containerPort: 80}]\n        env: [{name: A, value: a}]",
    )
    await ops.apply(cluster, manifests(NAMESPACE, ported), ops.Options(), Out())
    sidecar = load(
        DEPLOY.replace(
            "image: nginx:1.27",
            "image: nginx:1.27\n        ports: [{containerPort: 9090, protocol: UDP}]"
            "\n        env: [{name: B, value: b}]",
        )
    )[1][0].obj
    await apply_as(cluster, "kubectl", "/apis/apps/v1/namespaces/shop/deployments/web", sidecar)
    [o] = await ops.apply(
        cluster, manifests(ported.replace("value: a", "value: a2")), ops.Options(), Out()
    )
    assert o.action == "configured"
    live = api.get("apps/v1", "Deployment", "web", "shop")
    assert live is not None
    [container] = live["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 9090, "protocol": "UDP"},
    ]
    assert container["env"] == [{"name": "A", "value": "a2"}, {"name": "B", "value": "b"}]
    fields = next(m for m in live["metadata"]["managedFields"] if m["manager"] == "ktl-lsp")
    ports = fields["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"web"}'
    ]["f:ports"]
    assert list(ports) == ['k:{"containerPort":80,"protocol":"TCP"}']
    # Taking a keyed item's field from its manager: the conflict lands on that item's line.
    text = ported.replace("[{name: A, value: a}]", "[{name: A, value: a}, {name: B, value: c}]")
    [o] = await ops.apply(cluster, load(text)[1], ops.Options(), Out())
    assert o.action == "failed"
    [finding] = o.findings
    assert 'conflict with "kubectl"' in finding.message
    assert '.env[name="B"].value' in finding.message


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


async def _until(check: Callable[[], bool], timeout: float = 5) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def _pods(api: FakeApi, namespace: str = "shop") -> list[dict[str, Any]]:
    return [r.obj for k, r in api.objects.items() if k[1] == "pods" and k[2] == namespace]


async def test_deletion_takes_its_time_as_on_a_real_cluster(cluster: Cluster, api: FakeApi) -> None:
    api.pod_grace = 0.3
    await ops.apply(cluster, manifests(NAMESPACE, DEPLOY, CONFIG), ops.Options(), Out())
    await _until(lambda: len(_pods(api)) == 2)
    # Background: the owner goes at once, its pods a moment later (the garbage collector),
    # each through its grace period with a deletionTimestamp.
    [o] = await ops.delete(cluster, manifests(DEPLOY), ops.Options(), Out())
    assert o.action == "deleted" and api.get("apps/v1", "Deployment", "web", "shop") is None
    assert len(_pods(api)) == 2 and not any(
        p["metadata"].get("deletionTimestamp") for p in _pods(api)
    )
    await _until(lambda: all(p["metadata"].get("deletionTimestamp") for p in _pods(api)))
    assert {p["metadata"]["deletionGracePeriodSeconds"] for p in _pods(api)} == {30}
    await _until(lambda: not _pods(api))
    # Foreground: 200 with the owner still there until its dependents are gone.
    await ops.apply(cluster, manifests(DEPLOY), ops.Options(), Out())
    await _until(lambda: len(_pods(api)) == 2)
    [o] = await ops.delete(cluster, manifests(DEPLOY), ops.Options(propagation="Foreground"), Out())
    assert o.action == "deleted"
    held = api.get("apps/v1", "Deployment", "web", "shop")
    assert held is not None and held["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert held["metadata"]["deletionTimestamp"]
    await _until(lambda: not _pods(api))
    await _until(lambda: api.get("apps/v1", "Deployment", "web", "shop") is None)
    # A namespace is Terminating until its contents are gone; nothing new may be created in it.
    await ops.apply(cluster, manifests(DEPLOY), ops.Options(), Out())
    await _until(lambda: len(_pods(api)) == 2)
    [o] = await ops.delete(cluster, manifests(NAMESPACE), ops.Options(), Out())
    assert o.action == "deleted"
    ns = api.get("v1", "Namespace", "shop")
    assert ns is not None and ns["status"]["phase"] == "Terminating"
    [o] = await ops.apply(
        cluster, manifests(CONFIG.replace("settings", "late")), ops.Options(), Out()
    )
    assert o.action == "failed" and o.message is not None
    assert (
        "unable to create new content in namespace shop because it is being terminated" in o.message
    )
    assert o.findings[0].message.startswith("metadata.namespace: ")
    await _until(lambda: api.get("v1", "Namespace", "shop") is None)
    assert not [k for k in api.objects if k[2] == "shop"]


async def test_a_conflict_inside_a_port_lands_on_its_line(cluster: Cluster, api: FakeApi) -> None:
    """A container port is named by two keys in the API's path
    (``ports[containerPort=80,protocol="TCP"]``), the protocol often left to its default."""
    named = DEPLOY.replace(
        "image: nginx:1.27", "image: nginx:1.27\n        ports: [{containerPort: 80, name: http}]"
    )
    await ops.apply(cluster, manifests(NAMESPACE, named), ops.Options(), Out())
    theirs = load(named.replace("name: http", "name: web"))[1][0].obj
    path = "/apis/apps/v1/namespaces/shop/deployments/web"
    await cluster.request(
        "PATCH",
        path,
        [("fieldManager", "kubectl"), ("force", "true")],
        body=theirs,
        content_type="application/apply-patch+yaml",
    )
    [o] = await ops.apply(cluster, manifests(named), ops.Options(), Out())
    assert o.action == "failed"
    [finding] = o.findings
    assert '.ports[containerPort=80,protocol="TCP"].name' in finding.message
    line = named.splitlines()[finding.range.start.line]
    assert line[finding.range.start.character : finding.range.end.character] == "name"
    assert line.strip() == "ports: [{containerPort: 80, name: http}]"
