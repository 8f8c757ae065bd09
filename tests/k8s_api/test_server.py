"""The loopback API server where it is strict as a real one: LIST as metadata only (``Accept:
application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io``), field selectors, POST/PUT."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from ktl_lsp.k8s.errors import ApiError
from ktl_lsp.k8s.watch import watch
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.k8s_api.server import TOKEN

METADATA_ONLY = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"


async def test_a_list_as_metadata_only_carries_no_data(api: FakeApi) -> None:
    secret = {"name": "db", "namespace": "default", "labels": {"app": "db"}}
    api.add({"apiVersion": "v1", "kind": "Secret", "metadata": secret, "data": {"p": "eA=="}})
    url = f"{api.url}/api/v1/namespaces/default/secrets"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.get(url, headers={"Accept": METADATA_ONLY}) as resp:
            listed = await resp.json()
        async with http.get(url) as resp:
            full = await resp.json()
    assert (listed["kind"], listed["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    [item] = listed["items"]
    assert set(item) == {"kind", "apiVersion", "metadata"}
    assert (item["kind"], item["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
    assert item["metadata"]["name"] == "db" and item["metadata"]["labels"] == {"app": "db"}
    assert listed["metadata"]["resourceVersion"] == full["metadata"]["resourceVersion"]
    # Without the header: the typed list, data included, items without kind/apiVersion.
    assert full["kind"] == "SecretList" and full["items"][0]["data"] == {"p": "eA=="}
    assert api.requests["PartialObjectMetadataList"] == 1


async def test_field_selectors_take_only_the_kinds_field_labels(
    api: FakeApi, tmp_path: Path
) -> None:
    api.add_pod("web-1")
    cluster = Cluster(load_kubeconfig({"KUBECONFIG": str(write_kubeconfig(tmp_path / "kc", api))}))
    try:
        path = "/api/v1/namespaces/default/pods"
        _, running = await cluster.request("GET", path, [("fieldSelector", "status.phase=Running")])
        assert [p["metadata"]["name"] for p in running["items"]] == ["web-1"]
        _, named = await cluster.request("GET", path, [("fieldSelector", "metadata.name!=web-1")])
        assert named["items"] == []
        with pytest.raises(ApiError, match=r"field label not supported: spec\.containers"):
            await cluster.request("GET", path, [("fieldSelector", "spec.containers=app")])
        events = "/api/v1/namespaces/default/events"
        await cluster.request("GET", events, [("fieldSelector", "type=Warning,source=kubelet")])
        with pytest.raises(ApiError, match=r"field label not supported: status\.phase"):
            await cluster.request("GET", events, [("fieldSelector", "status.phase=x")])
        # A watch refused for its selector is an error to report, not a stream to retry.
        pods = await cluster.resource_for("v1", "Pod")
        assert pods is not None
        with pytest.raises(ApiError, match=r"field label not supported: spec\.image"):
            async for _ in watch(cluster, pods, "default", field_selector="spec.image=x"):
                pass
    finally:
        await cluster.close()


async def test_post_and_put_where_discovery_lists_create_and_update(
    api: FakeApi, tmp_path: Path
) -> None:
    cluster = Cluster(load_kubeconfig({"KUBECONFIG": str(write_kubeconfig(tmp_path / "kc", api))}))
    _, listed = await cluster.request("GET", "/api/v1")
    verbs = {r["name"]: r["verbs"] for r in listed["resources"]}
    assert {"create", "update"} <= set(verbs["configmaps"])
    assert "configmaps/status" not in verbs  # a ConfigMap has no status subresource
    path = "/api/v1/namespaces/default/configmaps"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    try:
        status, created = await cluster.request("POST", path, body=cm)
        assert status == 201 and created["metadata"]["resourceVersion"]
        with pytest.raises(ApiError, match='configmaps "c" already exists') as exists:
            await cluster.request("POST", path, body=cm)
        assert (exists.value.code, exists.value.reason) == (409, "AlreadyExists")
        stale = {**cm, "metadata": {"name": "c", "resourceVersion": "1"}, "data": {"a": "2"}}
        with pytest.raises(ApiError, match="the object has been modified") as modified:
            await cluster.request("PUT", f"{path}/c", body=stale)
        assert modified.value.code == 409
        stale["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
        status, replaced = await cluster.request("PUT", f"{path}/c", body=stale)
        assert status == 200 and replaced["data"] == {"a": "2"}
        assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
        typo = {**cm, "metadata": {"name": "d"}, "dataa": {}}
        with pytest.raises(ApiError, match='strict decoding error: unknown field "dataa"'):
            await cluster.request("POST", path, [("fieldValidation", "Strict")], body=typo)
        with pytest.raises(ApiError) as not_allowed:
            await cluster.request("PUT", path, body=cm)
        assert not_allowed.value.code == 405
    finally:
        await cluster.close()
