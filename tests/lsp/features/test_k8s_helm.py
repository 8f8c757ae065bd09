"""`ktl.diff` and `ktl.apply` of a chart: rendered in the Helm worker (CRDs included), then the
same server-side diff and apply as a manifest file, as a session, against the loopback API
server (tests/k8s_api)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.helpers import output_text
from tests.lsp.features.test_k8s import APP
from tests.orchestration.shop_stack import CHARTS

pytest.importorskip("helm_python")

CRD = textwrap.dedent(CHARTS["crds"]["crds/widgets.yaml"])
DEPLOYMENT = (
    APP.split("---\n")[1]
    .replace("name: web\n  namespace: shop\n", "name: {{ .Release.Name }}-web\n")
    .replace("replicas: 2", "replicas: {{ .Values.replicas }}")
    .replace("image: IMAGE", 'image: "nginx:{{ .Values.tag }}"')
)


def _chart(root: Path) -> Path:
    chart = root / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "crds").mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\ntag: '1.27'\n")
    (chart / "prod.yaml").write_text("replicas: 3\n")
    (chart / "templates" / "deployment.yaml").write_text(DEPLOYMENT)
    (chart / "templates" / "NOTES.txt").write_text("Thanks for installing {{ .Release.Name }}\n")
    (chart / "crds" / "widgets.yaml").write_text(CRD)
    return chart


async def test_apply_and_diff_a_chart(k8s: Ktl, api: FakeApi, tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    uri = (chart / "Chart.yaml").as_uri()
    result = await k8s.cmd(
        "ktl.apply",
        {"uri": uri, "release": "shop", "namespace": "default", "valuesFiles": ["prod.yaml"]},
    )
    assert result["state"] == "done", result
    assert [(r["kind"], r["name"], r["action"]) for r in result["resources"]] == [
        ("CustomResourceDefinition", "widgets.example.com", "created"),
        ("Deployment", "shop-web", "created"),
    ]
    deployment = api.get("apps/v1", "Deployment", "shop-web", "default")
    assert deployment is not None and deployment["spec"]["replicas"] == 3
    session = await k8s.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    assert session["kind"] == "k8s"
    assert session["meta"]["chart"] == str(chart) and session["meta"]["release"] == "shop"
    text = await output_text(k8s, result["sessionId"], plain=True)
    assert "ktl apply --chart web shop -f prod.yaml" in text

    # a template's uri names the chart too; `set` wins over the values files
    template = (chart / "templates" / "deployment.yaml").as_uri()
    result = await k8s.cmd(
        "ktl.diff",
        {"uri": template, "release": "shop", "valuesFiles": ["prod.yaml"], "set": {"tag": "1.28"}},
    )
    assert result["state"] == "done" and result["changed"] == 1
    assert "\n-      - image: nginx:1.27\n+      - image: nginx:1.28\n" in result["diff"]


async def test_a_chart_that_does_not_render_starts_no_session(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    chart = _chart(tmp_path)
    (chart / "templates" / "deployment.yaml").write_text(
        DEPLOYMENT.replace(".Values.replicas", 'required "replicas, please" .Values.nope')
    )
    with pytest.raises(JsonRpcException, match="replicas, please"):
        await k8s.cmd("ktl.apply", {"uri": (chart / "Chart.yaml").as_uri()})
    assert api.get("apps/v1", "Deployment", "release-name-web", "default") is None
