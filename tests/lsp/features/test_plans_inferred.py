"""A stack whose workloads declare no needs runs in the order its charts imply: the dry run of
``ktl.plan.run`` and the "needs (inferred)" CodeLens, through a real server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import Ktl
from tests.lsp.features.test_codelens import brief, lenses, open_doc
from tests.orchestration.shop_stack import WAVES, write_stack

pytest.importorskip("helm_python")

STUB = [sys.executable, "-c", "print('apply')", "{name}"]


def _names(order: list[list[str]]) -> list[list[str]]:
    return [[node_id.rsplit("/", 1)[1] for node_id in wave] for wave in order]


async def test_dry_run_orders_the_stack_by_inferred_needs(ktl: Ktl, tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "shop")
    result = await ktl.cmd(
        "ktl.plan.run", {"uri": stack.as_uri(), "dryRun": True, "stackCommand": STUB}
    )
    assert result["state"] == "done" and result["dryRun"] is True
    assert _names(result["order"]) == WAVES
    nodes = {n["id"].rsplit("/", 1)[1]: n for n in result["nodes"]}
    assert "inferredNeeds" not in nodes["namespace"]
    assert nodes["db"]["inferredNeeds"] == [
        {
            "name": "config",
            "reasons": [{"type": "secret", "evidence": "secret/app-secret in ns/shop"}],
        },
        {"name": "namespace", "reasons": [{"type": "namespace", "evidence": "ns/shop"}]},
    ]
    assert [n["name"] for n in nodes["web"]["inferredNeeds"]] == ["api", "namespace", "worker"]
    output = await ktl.cmd("ktl.session.output", {"sessionId": result["sessionId"], "plain": True})
    text = "".join(f["data"] for f in output["frames"] if f["type"] == "output")
    assert "needs rbac (inferred: rbac sa/api-sa in ns/shop)" in text
    # The plan session's record keeps them too (resume, the replay UI, session diffs).
    session = await ktl.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    recorded = {n["id"]: n for n in session["meta"]["plan"]["nodes"]}
    assert recorded[nodes["db"]["id"]]["inferredNeeds"] == nodes["db"]["inferredNeeds"]


async def test_a_release_that_does_not_render_is_planned_without_inferred_needs(
    ktl: Ktl, tmp_path: Path
) -> None:
    stack = write_stack(tmp_path / "shop")
    (stack.parent / "charts" / "rbac" / "templates" / "bad.yaml").write_text("{{ .Values.x.y }}\n")
    result = await ktl.cmd(
        "ktl.plan.run", {"uri": stack.as_uri(), "dryRun": True, "stackCommand": STUB}
    )
    assert result["state"] == "done"
    nodes = {n["id"].rsplit("/", 1)[1]: n for n in result["nodes"]}
    assert "nil pointer" in nodes["rbac"]["inferredNeedsError"]
    # Without rbac's objects, api no longer waits for it (it still waits for the rest).
    assert [n["name"] for n in nodes["api"]["inferredNeeds"]] == [
        "config",
        "crds",
        "db",
        "namespace",
    ]


async def test_codelens_shows_the_inferred_needs_of_each_release(ktl: Ktl, tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "shop")
    uri = open_doc(ktl, stack)
    lines = stack.read_text().splitlines()
    inferred = [
        brief(lens)
        for lens in await lenses(ktl, uri)
        if lens.command and lens.command.title.startswith("needs (inferred)")
    ]
    api_line = lines.index("- name: api")
    assert (
        api_line,
        "needs (inferred): config, crds, db, namespace, rbac",
        "ktl.plan.run",
        [{"uri": uri, "nodes": ["api"], "dryRun": True}],
    ) in inferred
    assert len(inferred) == 6  # namespace and crds need nothing
    # Clicking it dry-runs the release with what it needs.
    result = await ktl.cmd("ktl.plan.run", {**inferred[0][3][0], "stackCommand": STUB})
    assert _names(result["order"])[0] == ["namespace"]
