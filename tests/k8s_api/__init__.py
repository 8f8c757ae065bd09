"""A loopback Kubernetes API server for tests (no kube-apiserver can be installed here).

See ``server.py``: discovery, typed GET/LIST/WATCH, server-side apply, DELETE with propagation,
pod logs with follow, events and ``Status`` errors, shaped after the Kubernetes API reference.
"""

from tests.k8s_api.server import FakeApi, write_kubeconfig

__all__ = ["FakeApi", "write_kubeconfig"]
