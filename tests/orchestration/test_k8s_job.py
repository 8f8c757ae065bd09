"""``runner: kubernetes`` end to end: ``ktl.plan.run`` in a real server, the real kubernetes
client inside it, and the loopback API server (whose kubelet stand-in runs the Job's command)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from ktl_lsp.k8s.client import Clusters
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.orchestration import k8s_job
from ktl_lsp.orchestration.model import PlanNode
from ktl_lsp.orchestration.runners import LaunchContext
from ktl_lsp.sessions.manager import SessionManager
from tests.conftest import Ktl, StartKtl
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.lsp.features.helpers import output_text
from tests.orchestration.conftest import pid_alive


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeApi]:
    async with FakeApi() as server:
        yield server


@pytest_asyncio.fixture
async def k8s(start_ktl: StartKtl, api: FakeApi, tmp_path: Path) -> Ktl:
    config = write_kubeconfig(tmp_path / "kubeconfig", api)
    return await start_ktl(env={"KUBECONFIG": str(config)})


def _plan(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "ci.plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path.as_uri()


def _jobs(api: FakeApi) -> dict[str, dict[str, Any]]:
    return {
        name: rec.obj
        for (group, plural, _ns, name), rec in api.objects.items()
        if (group, plural) == ("batch", "jobs")
    }


async def test_nodes_run_as_jobs_with_logs_and_exit_codes(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    uri = _plan(
        tmp_path,
        {
            "name": "ci",
            "concurrency": 2,
            "nodes": [
                {
                    "id": "migrate",
                    "runner": "kubernetes",
                    "image": "alpine:3.20",
                    "run": 'echo "migrating $DB"; echo done',
                    "env": {"DB": "orders"},
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                },
                {
                    "id": "smoke",
                    "runner": "kubernetes",
                    "image": "alpine:3.20",
                    "run": ["sh", "-c", "echo checking; exit 3"],
                    "deps": ["migrate"],
                },
                {"id": "announce", "run": "echo shipped", "deps": ["smoke"]},
            ],
        },
    )
    result = await k8s.cmd("ktl.plan.run", {"uri": uri})
    by_id = {n["id"]: n for n in result["nodes"]}
    assert by_id["migrate"]["state"] == "done", (
        by_id["migrate"],
        await output_text(k8s, by_id["migrate"]["sessionId"], plain=True),
    )
    assert by_id["migrate"]["exitCode"] == 0
    # The exit code is the container's, taken from the pod's terminated state.
    assert by_id["smoke"]["state"] == "failed" and by_id["smoke"]["exitCode"] == 3
    assert by_id["announce"]["state"] == "skipped"

    migrate = await k8s.cmd("ktl.session.get", {"sessionId": by_id["migrate"]["sessionId"]})
    assert migrate["kind"] == "k8s" and migrate["parentId"] == result["sessionId"]
    # against what, for the audit trail
    assert migrate["meta"]["kubeContext"] == "fake" and migrate["meta"]["server"] == api.url
    assert migrate["meta"]["namespace"] == "default" and migrate["meta"]["node"] == "migrate"
    text = await output_text(k8s, by_id["migrate"]["sessionId"], plain=True)
    assert "migrating orders\r\ndone\r\n" in text  # the pod's log, in order, as terminal lines
    assert "image alpine:3.20" in text

    # What the cluster was asked for: a Job the plan owns retries for, with env and resources.
    jobs = _jobs(api)
    assert len(jobs) == 2
    job = next(j for name, j in jobs.items() if name.startswith("ktl-ci-migrate-"))
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "alpine:3.20"
    assert container["command"] == ["sh", "-c", 'echo "migrating $DB"; echo done']
    assert container["env"] == [{"name": "DB", "value": "orders"}]
    assert container["resources"] == {"limits": {"cpu": "500m", "memory": "128Mi"}}
    assert job["status"]["conditions"][0]["type"] == "Complete"
    assert job["metadata"]["labels"]["ktl.dev/session"] == by_id["migrate"]["sessionId"].lower()


async def test_image_that_cannot_be_pulled_fails_the_node_and_cleans_up(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    uri = _plan(
        tmp_path,
        {
            "name": "ci",
            "nodes": [
                {
                    "id": "build",
                    "runner": "kubernetes",
                    "image": "registry.example/does-not-exist:1",
                    "run": "make",
                },
                {"id": "noimage", "runner": "kubernetes", "run": "make"},
            ],
        },
    )
    result = await k8s.cmd("ktl.plan.run", {"uri": uri})
    by_id = {n["id"]: n for n in result["nodes"]}
    assert by_id["build"]["state"] == "failed"
    assert "cannot start: ImagePullBackOff" in by_id["build"]["reason"]
    assert by_id["noimage"]["reason"] == 'runner kubernetes needs an "image" for node "noimage"'
    for _ in range(50):  # foreground deletion finishes just after the answer
        if not _jobs(api):
            break
        await asyncio.sleep(0.1)
    assert _jobs(api) == {}


async def test_cancel_deletes_the_job_and_stops_its_container(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    marker = tmp_path / "still-running"
    uri = _plan(
        tmp_path,
        {
            "name": "ci",
            "nodes": [
                {
                    "id": "soak",
                    "runner": "kubernetes",
                    "image": "alpine",
                    "run": (
                        f"echo $$ > {marker}.pid; echo started; "
                        f"while true; do touch {marker}; sleep 0.1; done"
                    ),
                }
            ],
        },
    )
    started = await k8s.cmd("ktl.plan.run", {"uri": uri, "detach": True})
    plan_id = started["sessionId"]
    for _ in range(100):
        if marker.exists():
            break
        await asyncio.sleep(0.1)
    assert marker.exists() and len(_jobs(api)) == 1
    await k8s.cmd("ktl.session.cancel", {"sessionId": plan_id})
    for _ in range(100):
        state = await k8s.cmd("ktl.session.get", {"sessionId": plan_id})
        if state["state"] != "running":
            break
        await asyncio.sleep(0.1)
    assert state["state"] == "cancelled"
    assert _jobs(api) == {}  # deleted (foreground) before the node was reported cancelled
    container = int(Path(f"{marker}.pid").read_text())
    for _ in range(100):  # its process ends with the Job (a zombie until reaped counts as ended)
        if not pid_alive(container):
            break
        await asyncio.sleep(0.02)
    assert not pid_alive(container), "the container kept running after its Job was deleted"


async def test_a_job_held_by_a_finalizer_is_reported_still_being_deleted(
    api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled, the node deletes its Job in the foreground: the pod goes, but a finalizer
    (someone else's controller) holds the Job past the runner's wait, which says so."""
    monkeypatch.setattr(k8s_job, "DELETE_WAIT_S", 0.5)
    api.admission_finalizers["jobs"] = ["example.com/hold"]
    config = write_kubeconfig(tmp_path / "kubeconfig", api)
    manager = SessionManager.open(tmp_path / "sessions.db")
    runner = k8s_job.JobRunner(
        manager, K8sSessions(lambda: manager, Clusters({"KUBECONFIG": str(config)}))
    )
    node = PlanNode("soak", command="echo started; sleep 30", runner="kubernetes")
    node.extra["image"] = "alpine"
    handle = runner.start(node, LaunchContext("ci", None, 1, None))
    for _ in range(200):
        pods = [k for k in api.objects if k[1] == "pods"]
        if pods and "running" in str(api.objects[pods[0]].obj["status"]):
            break
        await asyncio.sleep(0.02)
    handle.cancel()
    exit_ = await asyncio.wait_for(handle.wait(), 10)
    assert exit_.state == "cancelled"
    [job] = _jobs(api).values()
    assert job["metadata"]["finalizers"] == ["example.com/hold"]  # foregroundDeletion is done
    assert job["metadata"]["deletionTimestamp"]
    assert not [k for k in api.objects if k[1] == "pods"]  # its pod went first
    lines = await manager.output_lines(handle.session_id)
    assert f"job {job['metadata']['name']} is still being deleted" in lines
    api.finalize("batch/v1", "Job", job["metadata"]["name"], "default")
    assert _jobs(api) == {}
    manager.close()
