"""Big answers are decoded off the event loop and arrive whole."""

from __future__ import annotations

from ktl_lsp.k8s import client as client_module
from ktl_lsp.k8s.client import Cluster
from tests.k8s_api import FakeApi


async def test_a_big_list_is_decoded_whole(api: FakeApi, cluster: Cluster) -> None:
    for i in range(400):
        api.add_pod(f"pod-{i:03d}", labels={"app": "many", "filler": "x" * 60})
    _, small = await cluster.request("GET", "/api/v1/namespaces/default/pods/pod-000")
    assert small["metadata"]["name"] == "pod-000"
    status, data = await cluster.request("GET", "/api/v1/namespaces/default/pods")
    assert status == 200
    names = sorted(p["metadata"]["name"] for p in data["items"])
    assert names == [f"pod-{i:03d}" for i in range(400)]
    # The list is big enough to take the worker-thread path.
    response = await cluster.send("GET", "/api/v1/namespaces/default/pods")
    raw = await response.read()
    response.release()
    assert len(raw) > client_module.DECODE_OFF_LOOP_BYTES
