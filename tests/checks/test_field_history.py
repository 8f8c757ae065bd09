"""The bundled Kubernetes versions where a field exists, from the schemas of 1.25..1.37."""

from __future__ import annotations

from ktl_lsp.checks.field_history import _index, field_history
from ktl_lsp.checks.hover import describe
from ktl_lsp.checks.k8s_schemas import available_versions


def test_since_removed_every_version_and_deprecated() -> None:
    assert available_versions()[0] == "1.25" and available_versions()[-1] == "1.37"
    image = ("spec", "template", "spec", "containers", 0, "image")
    assert field_history("apps/v1", "Deployment", image) == "1.25..1.37 (every bundled version)"
    gates = ("spec", "schedulingGates")
    assert field_history("v1", "Pod", gates) == "1.26..1.37 (since 1.26)"
    spec = ("spec",)
    flow = "flowcontrol.apiserver.k8s.io/v1beta3"
    assert field_history(flow, "FlowSchema", spec) == "1.26..1.31 (since 1.26, removed in 1.32)"
    alias = field_history("v1", "Pod", ("spec", "serviceAccount"))
    assert alias == "1.25..1.37 (every bundled version); deprecated"
    # Keys of a map (labels) are the map's field; unknown fields and kinds have no history.
    assert field_history("v1", "Pod", ("metadata", "labels", "app")) is not None
    assert field_history("v1", "Pod", ("spec", "nope")) is None
    assert field_history("extensions/v1beta1", "Ingress", ("spec",)) is None


def test_hover_says_it_and_reuses_the_indexes_once_built() -> None:
    def no_crd(api_version: str, kind: str) -> None:
        return None

    path = ("spec", "containers", 0, "resizePolicy")
    text = describe("v1", "Pod", path, "1.30", no_crd)
    assert text is not None and "Kubernetes: 1.27..1.37 (since 1.27)" in text
    built = _index.cache_info().currsize
    for field in ("image", "ports", "env", "command", "args", "volumeMounts"):
        describe("v1", "Pod", ("spec", "containers", 0, field), "1.30", no_crd)
    assert _index.cache_info().currsize == built  # the indexes are built once: no reload
