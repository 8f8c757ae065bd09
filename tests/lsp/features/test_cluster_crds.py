"""Custom resources validate against the connected cluster's CRDs (not only the workspace's):
a real server, the real kubernetes client inside it, the loopback API server."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from tests.checks.test_crds import CRD
from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.test_diagnostics import Publishes
from tests.lsp.features.test_k8s import open_doc

WIDGET = textwrap.dedent(
    """\
    apiVersion: example.com/v1
    kind: Widget
    metadata:
      name: w
    spec:
      size: 50
    """
)


async def test_crds_applied_to_the_cluster_validate_workspace_resources(
    k8s: Ktl, api: FakeApi, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    publishes = Publishes(k8s)
    uri = open_doc(k8s, tmp_path / "widget.yaml", WIDGET)
    first = await publishes.until(uri, lambda p: bool(p.diagnostics))
    [hint] = first.diagnostics
    assert hint.code == "k8s-unknown-kind" and "nor on a connected cluster" in hint.message

    # The CRD lives outside the workspace (another repo, a chart's crds/): it reaches the
    # cluster with an apply, and from there the editor learns it.
    elsewhere = tmp_path_factory.mktemp("operator") / "crd.yaml"
    elsewhere.write_text(CRD)
    applied = await k8s.cmd("ktl.apply", {"uri": elsewhere.as_uri()})
    assert applied["state"] == "done"
    checked = await publishes.until(
        uri, lambda p: any(d.code == "k8s-schema" for d in p.diagnostics)
    )
    [error] = checked.diagnostics
    assert error.severity == 1 and "10" in error.message  # size: maximum 10
    assert (error.range.start.line, error.range.start.character) == (5, 8)
    assert (error.range.end.line, error.range.end.character) == (5, 10)

    learned = await k8s.cmd("ktl.k8s.learnCrds", {})
    assert learned["context"] == "fake" and learned["crds"] == ["widgets.example.com"]
    assert learned["versions"] == 3  # v1, v1alpha1 and the unserved v0

    # A cluster that cannot be reached: a clear error on demand, and the learned CRDs stay.
    with pytest.raises(
        JsonRpcException, match="cannot learn the cluster's CRDs: cannot reach"
    ) as info:
        await k8s.cmd("ktl.k8s.learnCrds", {"context": "gone"})
    assert info.value.code == -32803  # RequestFailed: the cluster said no, not the arguments
    assert [d.code for d in publishes.latest(uri).diagnostics] == ["k8s-schema"]  # type: ignore[union-attr]
