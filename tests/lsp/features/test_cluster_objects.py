"""Names of the connected cluster's objects in completion: a real server, the real kubernetes
client inside it, the loopback API server; cached, refreshed in the background, metadata only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types as lsp

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.test_completion import complete
from tests.lsp.features.test_k8s import open_doc

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    envFrom:
    - configMapRef: {name: }
    - secretRef: {name: }
"""


async def completed(
    ktl: Ktl,
    uri: str,
    line: int,
    character: int,
    until: Callable[[list[lsp.CompletionItem]], bool],
) -> list[lsp.CompletionItem]:
    """Asks again until the answer is what `until` wants (the cache fills in the background)."""
    for _ in range(200):
        items = await complete(ktl, uri, line, character)
        if until(items):
            return items
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {[(i.label, i.detail) for i in items]}")


def named(items: list[lsp.CompletionItem]) -> dict[str, str | None]:
    return {i.label: i.detail for i in items}


async def test_cluster_names_once_a_context_is_active(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    for name, namespace in (("settings", "default"), ("far", "other")):
        meta = {"name": name, "namespace": namespace}
        api.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})
    api.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-password", "namespace": "default"},
            "data": {"password": "c2VjcmV0"},
        }
    )
    (tmp_path / "local.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: local}\n"
    )
    uri = open_doc(k8s, tmp_path / "pod.yaml", POD)
    # No context picked: the workspace's names only, and the cluster is not asked.
    assert named(await completed(k8s, uri, 7, 27, bool)) == {"local": "ConfigMap · local.yaml"}
    assert api.requests["PartialObjectMetadataList"] == 0

    await k8s.cmd("ktl.k8s.use", {"context": "fake"})
    maps = await completed(k8s, uri, 7, 27, lambda items: "settings" in named(items))
    assert named(maps) == {
        "local": "ConfigMap · local.yaml",
        "settings": "ConfigMap in default · cluster: fake",
    }
    assert maps[1].kind == lsp.CompletionItemKind.Reference
    secrets = await completed(k8s, uri, 8, 24, bool)
    assert named(secrets) == {"db-password": "Secret in default · cluster: fake"}
    # Lists asked for metadata only: no Secret's data crossed the wire.
    assert api.requests["PartialObjectMetadataList"] >= 2

    # Another namespace: the first answer has no cluster names, a later one has them.
    elsewhere = POD.replace("{name: p}", "{name: p, namespace: other}")
    other = open_doc(k8s, tmp_path / "other.yaml", elsewhere)
    first = await complete(k8s, other, 7, 27)
    assert "far" not in named(first)
    later = await completed(k8s, other, 7, 27, lambda items: "far" in named(items))
    assert named(later)["far"] == "ConfigMap in other · cluster: fake"

    # The cluster goes away: completion still answers from the cache, at once.
    await api.stop()
    assert "settings" in named(await asyncio.wait_for(complete(k8s, uri, 7, 27), 2))
