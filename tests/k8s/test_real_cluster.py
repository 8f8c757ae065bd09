"""The apply/diff/delete scenarios against a real cluster, when ``KTL_TEST_KUBECONFIG`` is set.

Run with ``KTL_TEST_KUBECONFIG=~/.kube/config pytest -m cluster tests/k8s``. Everything happens in
a fresh namespace ``ktl-lsp-test-<random>`` that is deleted at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ktl_lsp.k8s import ops
from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from ktl_lsp.k8s.manifests import load
from tests.k8s.conftest import Out

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not os.environ.get("KTL_TEST_KUBECONFIG"), reason="KTL_TEST_KUBECONFIG is not set"
    ),
]


@pytest_asyncio.fixture
async def real() -> AsyncIterator[tuple[Cluster, str]]:
    config = load_kubeconfig({"KUBECONFIG": os.environ["KTL_TEST_KUBECONFIG"]})
    cluster = Cluster(config)
    ns = f"ktl-lsp-test-{uuid.uuid4().hex[:8]}"
    yield cluster, ns
    await ops.delete(
        cluster,
        load(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")[1],
        ops.Options(),
        Out(),
    )
    await cluster.close()


async def test_apply_diff_invalid_delete(real: tuple[Cluster, str]) -> None:
    cluster, ns = real
    text = f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{mode: fast}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: ''
"""
    _, docs = load(text)
    result = await ops.apply(cluster, docs, ops.Options(), Out())
    assert [o.action for o in result] == ["created", "created", "failed"]
    assert any("containers[0].image" in f.message for f in result[2].findings)
    again = await ops.apply(cluster, docs[:2], ops.Options(), Out())
    assert [o.action for o in again] == ["unchanged", "unchanged"]
    changed = load(text.replace("mode: fast", "mode: slow"))[1][:2]
    diffs = await ops.diff(cluster, changed, ops.Options(), Out())
    assert "-  mode: fast\n+  mode: slow\n" in diffs[1].diff
    deleted = await ops.delete(cluster, docs[1:2], ops.Options(), Out())
    assert [o.action for o in deleted] == ["deleted"]
