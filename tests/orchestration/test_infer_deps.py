"""Inferred needs from charts written for the tests, rendered with helm-python-sdk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from ktl_lsp.helm.model import RenderRequest
from ktl_lsp.orchestration.infer_deps import (
    InferredNeed,
    Reason,
    ReleaseObjects,
    infer_needs,
    objects_of,
)
from ktl_lsp.orchestration.model import PlanError, waves
from ktl_lsp.orchestration.stack import stack_plan
from ktl_lsp.orchestration.stack_infer import render_release
from ktl_lsp.orchestration.stack_needs import StackNeeds, inferred_needs_of
from tests.orchestration.shop_stack import RELEASES, WAVES, write_charts, write_stack

pytest.importorskip("helm_python")


def _objects(charts: Path, chart: str, name: str, sets: dict[str, str]) -> list[dict[str, Any]]:
    rendered = render_release(
        RenderRequest(
            charts / chart, set_values=tuple(sets.items()), release=name, namespace="shop"
        )
    )
    assert rendered.error is None, rendered.error
    return objects_of(rendered.manifests)


def _shop(tmp_path: Path, api_account: str = "api-sa") -> list[ReleaseObjects]:
    charts = write_charts(tmp_path)
    out = []
    for name, chart, sets in RELEASES:
        extra = {"serviceAccount": api_account} if name == "api" else {}
        out.append(ReleaseObjects(name, "shop", _objects(charts, chart, name, {**sets, **extra})))
    return out


def _brief(found: dict[str, list[InferredNeed]]) -> dict[str, dict[str, list[str]]]:
    return {
        release: {n.name: [f"{r.type} {r.evidence}" for r in n.reasons] for n in needs}
        for release, needs in found.items()
        if needs
    }


def test_what_each_release_creates_and_uses_becomes_its_needs(tmp_path: Path) -> None:
    found = infer_needs(_shop(tmp_path), config_refs=True)
    assert _brief(found) == {
        "rbac": {"namespace": ["namespace ns/shop"]},
        "config": {"namespace": ["namespace ns/shop"]},
        "db": {
            "config": ["secret secret/app-secret in ns/shop"],
            "namespace": ["namespace ns/shop"],
        },
        "api": {
            "config": ["configMap cm/app-config in ns/shop"],
            "crds": ["crd Widget.example.com"],
            "db": ["pvc pvc/data in ns/shop"],
            "namespace": ["namespace ns/shop"],
            "rbac": ["rbac sa/api-sa in ns/shop"],
        },
        "worker": {
            "api": ["annotation:depends-on Deployment shop/worker"],
            "namespace": ["namespace ns/shop"],
        },
        "web": {
            "api": ["annotation:depends-on Deployment shop/web"],
            "namespace": ["namespace ns/shop"],
            "worker": ["annotation:depends-on Deployment shop/web"],
        },
    }
    # The CRD came from the chart's crds/ directory; the hook Job naming worker was left out.
    assert found["namespace"] == [] and found["crds"] == []


def test_config_refs_only_when_asked(tmp_path: Path) -> None:
    found = _brief(infer_needs(_shop(tmp_path), config_refs=False))
    assert found["db"] == {"namespace": ["namespace ns/shop"]}
    assert "config" not in found["api"] and "db" in found["api"]


def test_the_default_service_account_needs_nothing(tmp_path: Path) -> None:
    found = _brief(infer_needs(_shop(tmp_path, api_account="default"), config_refs=True))
    assert "rbac" not in found["api"]


def _obj(kind: str, name: str, api: str = "v1", **rest: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, **rest}


def _pod(account: str, **spec: Any) -> dict[str, Any]:
    return _obj(
        "Deployment",
        "w",
        "apps/v1",
        spec={"template": {"spec": {"serviceAccountName": account, **spec}}},
    )


def test_rbac_bound_to_the_account_wins_over_the_account_itself() -> None:
    binding = _obj(
        "RoleBinding",
        "b",
        "rbac.authorization.k8s.io/v1",
        subjects=[{"kind": "ServiceAccount", "name": "runner"}],
    )
    releases = [
        ReleaseObjects("accounts", "ns", [_obj("ServiceAccount", "runner")]),
        ReleaseObjects("bindings", "ns", [binding]),
        ReleaseObjects("app", "ns", [_pod("runner")]),
    ]
    assert infer_needs(releases)["app"] == [
        InferredNeed("bindings", (Reason("rbac", "sa/runner in ns/ns"),))
    ]
    # Without the binding, the account's release is what the workload needs.
    assert infer_needs([releases[0], releases[2]])["app"] == [
        InferredNeed("accounts", (Reason("serviceAccount", "sa/runner in ns/ns"),))
    ]


def test_namespaces_and_names_are_matched_where_the_objects_live() -> None:
    claim = _obj("PersistentVolumeClaim", "data")
    claim["metadata"]["namespace"] = "other"
    uses = _pod("", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}])
    cron = _obj(
        "CronJob",
        "c",
        "batch/v1",
        spec={
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"volumes": [{"persistentVolumeClaim": {"claimName": "DATA"}}]}
                    }
                }
            }
        },
    )
    releases = [
        ReleaseObjects("storage", "ns", [claim]),
        ReleaseObjects("here", "ns", [uses]),
        ReleaseObjects("there", "other", [cron]),
        ReleaseObjects("self", "x", [_obj("Namespace", "x"), _obj("ConfigMap", "c")]),
    ]
    found = infer_needs(releases)
    assert found["here"] == []  # the claim is in "other", the workload in "ns"
    assert found["there"] == [
        InferredNeed("storage", (Reason("pvc", "pvc/DATA in ns/other"),))
    ]  # names match without regard to case, as ktl matches them
    assert found["self"] == []  # a release never needs itself


def test_depends_on_names_only_releases_of_the_stack() -> None:
    annotated = _obj("ConfigMap", "c")
    annotated["metadata"]["annotations"] = {"ktl.io/depends-on": " a , nope,,self "}
    found = infer_needs([ReleaseObjects("a", "ns"), ReleaseObjects("self", "ns", [annotated])])
    assert found["self"] == [
        InferredNeed("a", (Reason("annotation:depends-on", "ConfigMap ns/c"),))
    ]


def test_objects_without_a_kind_or_a_name_and_hooks_are_not_applied() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: kept}
        ---
        kind: ConfigMap
        metadata: {generateName: x-}
        ---
        # only a comment
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: test
          annotations: {helm.sh/hook: test}
        """
    )
    objects = objects_of({"templates/a.yaml": text, "templates/NOTES.txt": "Thanks: {"})
    assert [o["metadata"]["name"] for o in objects] == ["kept"]


def _plan_nodes(stack: Path) -> dict[str, Any]:
    plan = stack_plan(stack, ["true"])
    return {n.meta["release"]: n for n in plan.nodes}


def test_stack_plan_orders_the_waves_by_declared_and_inferred_needs(tmp_path: Path) -> None:
    stack = write_stack(tmp_path)
    plan = stack_plan(stack, ["true"])
    names = {n.id: n.meta["release"] for n in plan.nodes}
    assert [[names[i] for i in wave] for wave in waves(plan)] == WAVES
    api = {n.meta["release"]: n for n in plan.nodes}["api"]
    assert [need["name"] for need in api.meta["inferredNeeds"]] == [
        "config",
        "crds",
        "db",
        "namespace",
        "rbac",
    ]
    assert api.meta["inferredNeeds"][1] == {
        "name": "crds",
        "reasons": [{"type": "crd", "evidence": "Widget.example.com"}],
    }
    assert plan.info["inferDeps"] is True and plan.info["notes"] == []


def test_ktl_annotations_fill_the_fields_the_stack_file_leaves_unset(tmp_path: Path) -> None:
    nodes = _plan_nodes(write_stack(tmp_path))
    assert nodes["worker"].pools == ["group:apps"]
    assert nodes["web"].pools == ["group:front"]  # set in the stack file
    assert nodes["config"].priority == -2 and nodes["db"].priority == 0  # wave 2: later


def test_infer_deps_false_keeps_the_declared_needs_only(tmp_path: Path) -> None:
    plan = stack_plan(write_stack(tmp_path, {"inferDeps": False}), ["true"])
    assert len(waves(plan)) == 1
    assert all("inferredNeeds" not in n.meta for n in plan.nodes)


def test_a_release_that_does_not_render_gets_no_needs_and_the_plan_says_so(
    tmp_path: Path,
) -> None:
    stack = write_stack(tmp_path)
    (tmp_path / "charts" / "db" / "templates" / "broken.yaml").write_text(
        'x: {{ required "db.size is required" .Values.size }}\n'
    )
    nodes = _plan_nodes(stack)
    assert "inferredNeeds" not in nodes["db"].meta
    assert "db.size is required" in nodes["db"].meta["inferredNeedsError"]
    # api still needs everything else it uses; only the claim's creator is unknown now.
    assert [n["name"] for n in nodes["api"].meta["inferredNeeds"]] == [
        "config",
        "crds",
        "namespace",
        "rbac",
    ]
    notes = stack_plan(stack, ["true"]).info["notes"]
    assert [n for n in notes if n.startswith("release c1/shop/db: needs not inferred (")]


def test_a_cycle_closed_by_an_inferred_edge_is_refused_in_ktls_words(tmp_path: Path) -> None:
    stack = write_stack(tmp_path)
    data = yaml.safe_load(stack.read_text())
    for release in data["releases"]:
        if release["name"] == "crds":
            release["needs"] = ["web"]
    stack.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PlanError) as refused:
        stack_plan(stack, ["true"])
    assert refused.value.problems == [
        "dependency cycle detected: [c1/shop/api(api) c1/shop/crds(crds) c1/shop/web(web) "
        "c1/shop/api(api)] edges=[api -> crds (crd) crds -> web (declared) "
        "web -> api (annotation:depends-on)]"
    ]


def test_inferred_needs_of_a_release_with_the_reasons_in_words(tmp_path: Path) -> None:
    plan = stack_plan(write_stack(tmp_path), ["true"])
    needs = inferred_needs_of(plan, "db")
    assert needs == [
        ("config", "config creates a Secret it reads (secret/app-secret in ns/shop)"),
        ("namespace", "namespace creates the namespace its objects live in (ns/shop)"),
    ]
    assert inferred_needs_of(plan, "c1/shop/db") == needs
    assert inferred_needs_of(plan, "namespace") == [] and inferred_needs_of(plan, "nope") == []


def test_stack_needs_plans_again_only_when_a_chart_or_stack_file_changed(tmp_path: Path) -> None:
    stack = write_stack(tmp_path)
    cache = StackNeeds()
    first = cache.plan(stack)
    assert first is not None and cache.plan(stack) is first
    values = tmp_path / "charts" / "api" / "values.yaml"
    values.write_text(values.read_text().replace("claim: data", "claim: elsewhere"))
    again = cache.plan(stack)
    assert again is not None and again is not first
    assert "db" not in [name for name, _ in inferred_needs_of(again, "api")]
    stack.write_text(stack.read_text() + "  - {name: broken\n")
    assert cache.plan(stack) is None  # the diagnostics say why; the editor shows no needs


def test_without_the_helm_extra_the_plan_says_once_why_nothing_was_inferred(
    tmp_path: Path,
) -> None:
    stack = write_stack(tmp_path)
    script = (
        "import json, sys; sys.modules['helm_python'] = None  # as if the extra were absent\n"
        "from pathlib import Path\n"
        "from ktl_lsp.orchestration.model import waves\n"
        "from ktl_lsp.orchestration.stack import stack_plan\n"
        f"plan = stack_plan(Path({str(stack)!r}), ['true'])\n"
        "print(json.dumps([plan.info['notes'], len(waves(plan))]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    notes, wave_count = json.loads(done.stdout)
    assert notes == [
        "needs are not inferred: rendering charts needs the helm extra "
        "(pip install 'ktl-lsp[helm]') or a helm binary"
    ]
    assert wave_count == 1


def test_releases_render_in_the_worker_process_with_their_crds(tmp_path: Path) -> None:
    from ktl_lsp.helm.render import Renderer

    charts = write_charts(tmp_path)
    renderer = Renderer("library")
    try:
        rendered = render_release(RenderRequest(charts / "crds", release="crds"), renderer)
        assert rendered.error is None, rendered.error
        assert list(rendered.manifests) == ["crds/widgets.yaml"]
        assert renderer.worker_pid is not None and renderer.worker_pid != os.getpid()
    finally:
        renderer.close()
