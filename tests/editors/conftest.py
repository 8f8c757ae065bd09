"""A Kubernetes cluster for the editor tests: the loopback API server (tests/k8s_api) in a thread
of its own, and a kubeconfig for it the editors' servers get (KUBECONFIG), so nothing reads the
developer's ~/.kube/config.

The cluster holds what the editors' exec and port-forward checks use: pod ``web-1`` in namespace
``default`` (labels ``app: web``; exec runs a real local process with HOSTNAME=web-1; HTTP on
port 80, ``GET /`` answers with header ``X-Pod: web-1``) and Service ``web`` (selector app=web,
port 80 to the pod's port 80).
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s_api import FakeApi, write_kubeconfig
from tests.k8s_api.server import TOKEN

#: The pod the editors exec into and forward to, and the Service in front of it.
POD, SERVICE, NAMESPACE, PORT = "web-1", "web", "default", 80


def _apply(api: FakeApi, path: str, obj: dict[str, object]) -> None:
    """A server-side apply over HTTP, as kubectl does it (from this thread: the API server's
    own loop handles it, so nothing touches FakeApi from outside that loop)."""
    request = urllib.request.Request(
        f"{api.url}{path}?fieldManager=ktl-editor-tests",
        data=json.dumps(obj).encode(),  # JSON is YAML
        method="PATCH",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/apply-patch+yaml",
        },
    )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no HTTP(S)_PROXY
    with direct.open(request, timeout=10) as answer:
        assert answer.status in (200, 201), answer.status


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Contexts ``fake`` (the current-context) and ``staging``, both on the loopback API server,
    which runs until the module's tests are done (the editors are separate processes)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, FakeApi | BaseException] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        api = FakeApi()
        try:
            loop.run_until_complete(api.start())
        except BaseException as exc:  # pragma: no cover - reported below
            box["error"] = exc
            started.set()
            return
        # On the API server's loop, before it runs: a running pod that serves HTTP on port 80.
        api.add_pod(POD, namespace=NAMESPACE, labels={"app": "web"})
        api.serve(POD, PORT, namespace=NAMESPACE)
        box["api"] = api
        started.set()
        loop.run_forever()
        loop.run_until_complete(api.__aexit__(None, None, None))
        loop.close()

    thread = threading.Thread(target=serve, name="fake-kube-api", daemon=True)
    thread.start()
    assert started.wait(10), "the loopback API server did not start"
    api = box.get("api")
    assert isinstance(api, FakeApi), f"the loopback API server failed: {box.get('error')}"
    try:
        _apply(
            api,
            f"/api/v1/namespaces/{NAMESPACE}/services/{SERVICE}",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": SERVICE, "namespace": NAMESPACE},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": PORT, "targetPort": PORT}]},
            },
        )
        yield write_kubeconfig(
            tmp_path_factory.mktemp("kube") / "kubeconfig", api, extra_contexts={"staging": api.url}
        )
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
