"""The loopback API server's LIST as metadata only, shaped as the real API server answers
``Accept: application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io``."""

from __future__ import annotations

import aiohttp

from tests.k8s_api import FakeApi
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
