"""The client over HTTPS: the cluster's CA from the kubeconfig, a client certificate for
authentication, and what a kubeconfig without the CA gets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ktl_lsp.k8s import ops
from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from ktl_lsp.k8s.errors import Unreachable
from ktl_lsp.k8s.manifests import load
from tests.k8s.conftest import Out
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.k8s_api.tls import make_certificates

CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n"


async def test_https_with_the_clusters_ca_and_a_client_certificate(tmp_path: Path) -> None:
    async with FakeApi(make_certificates(tmp_path / "pki")) as api:
        assert api.url.startswith("https://127.0.0.1:")
        config = write_kubeconfig(tmp_path / "kubeconfig", api)
        user = yaml.safe_load(config.read_text())["users"][0]["user"]
        assert set(user) == {"client-certificate-data", "client-key-data"}  # no token
        cluster = Cluster(load_kubeconfig({"KUBECONFIG": str(config)}))
        try:
            [o] = await ops.apply(cluster, load(CONFIG)[1], ops.Options(), Out())
            assert o.action == "created"
            live = api.get("v1", "ConfigMap", "settings", "default")
            assert live is not None and live["metadata"]["managedFields"][0]["manager"] == "ktl-lsp"
            assert api.requests["client-certificate"] >= 2  # discovery, GET, PATCH
        finally:
            await cluster.close()
        # Without the CA the server's certificate is not trusted: nothing is sent.
        bare = yaml.safe_load(config.read_text())
        del bare["clusters"][0]["cluster"]["certificate-authority-data"]
        (tmp_path / "no-ca").write_text(yaml.safe_dump(bare))
        untrusted = Cluster(load_kubeconfig({"KUBECONFIG": str(tmp_path / "no-ca")}))
        try:
            with pytest.raises(Unreachable, match="certificate verify failed"):
                await ops.apply(untrusted, load(CONFIG)[1], ops.Options(), Out())
        finally:
            await untrusted.close()
