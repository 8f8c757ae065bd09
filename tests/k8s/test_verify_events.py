"""Verify (rollout + Warning events, ktl's gate) and events, against the loopback API server."""

from __future__ import annotations

import asyncio

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.events import events
from ktl_lsp.k8s.manifests import load
from ktl_lsp.k8s.ops import Options, apply
from ktl_lsp.k8s.verify import ObjectRef, Verdict, VerifyOptions, reason_fails, verify
from ktl_lsp.pty.text import strip_ansi
from tests.k8s.conftest import Out
from tests.k8s_api import FakeApi

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: IMAGE}]
"""


async def deploy(cluster: Cluster, image: str) -> None:
    await apply(cluster, load(WEB.replace("IMAGE", image))[1], Options(), Out())


def fast(**kw: object) -> VerifyOptions:
    return VerifyOptions(poll_s=0.05, **kw)  # type: ignore[arg-type]


async def test_healthy_rollout_passes(cluster: Cluster, api: FakeApi) -> None:
    await deploy(cluster, "nginx:1.27")
    out = Out()
    verdict = await verify(
        cluster, [ObjectRef("Deployment", "web", "default")], fast(timeout_s=5), out
    )
    assert verdict.passed, strip_ansi(out.text)
    assert verdict.findings == []
    assert "Deployment/web: 2 of 2 ready" in strip_ansi(out.text)


async def test_broken_rollout_fails_with_ktl_wording(cluster: Cluster, api: FakeApi) -> None:
    await deploy(cluster, "registry.example/does-not-exist:1")
    out = Out()
    verdict = await verify(
        cluster, [ObjectRef("Deployment", "web", "default")], fast(timeout_s=0.5), out
    )
    assert not verdict.passed
    assert verdict.summary.startswith(
        "verify: not ready (top blockers: Deployment/web status=NotReady reason=NotReady msg=0 of 2 ready)"
    )
    assert "; verify: warning events observed (count=4 since=" in verdict.summary
    assert "latest=default/Pod/web-" in verdict.summary
    reasons = sorted({f.reason for f in verdict.findings})
    assert reasons == ["BackOff", "Failed", "NotReady"]
    # only denied reasons fail; the others are reported as warnings
    verdict = await verify(
        cluster,
        [ObjectRef("Deployment", "web", "default")],
        fast(timeout_s=0.2, deny_reasons=["failedmount"]),
        Out(),
    )
    assert not verdict.passed  # still not ready
    assert "warning events observed" not in verdict.summary
    assert {f.severity for f in verdict.findings if f.reason in ("BackOff", "Failed")} == {
        "warning"
    }


def test_reason_rules() -> None:
    assert reason_fails("BackOff", VerifyOptions())
    assert not reason_fails("BackOff", VerifyOptions(deny_reasons=["Failed"]))
    assert reason_fails("backoff", VerifyOptions(deny_reasons=["BackOff"]))
    assert not reason_fails(
        "Failed", VerifyOptions(deny_reasons=["Failed"], allow_reasons=["BackOff"])
    )
    assert reason_fails(
        "BACKOFF", VerifyOptions(deny_reasons=["Failed"], allow_reasons=["BackOff"])
    )


async def test_missing_resource_blocks(cluster: Cluster, api: FakeApi) -> None:
    verdict = await verify(
        cluster, [ObjectRef("ConfigMap", "nope", "default")], fast(timeout_s=0.1), Out()
    )
    assert not verdict.passed
    assert "ConfigMap/nope status=NotFound reason=NotFound msg=not found" in verdict.summary


async def test_events_list_and_follow(cluster: Cluster, api: FakeApi) -> None:
    pod = api.add_pod("p1")
    api.add_event(pod, "Scheduled", "assigned default/p1 to fake-node", type_="Normal")
    out = Out()
    assert await events(cluster, "default", out, follow=False) == 1
    assert "Scheduled" in out.text and "pod/p1" in out.text
    out = Out()
    task = asyncio.ensure_future(events(cluster, "default", out, follow=True))
    try:
        for _ in range(200):
            if "Scheduled" in out.text:
                break
            await asyncio.sleep(0.01)
        api.add_event(pod, "BackOff", "Back-off restarting failed container")
        for _ in range(200):
            if "BackOff" in out.text:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    text = strip_ansi(out.text)
    assert "Warning BackOff" in text and text.count("Scheduled") == 1


WORKLOADS = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: fluent-bit:3}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: once, image: alpine, command: [sh, -c, "sleep 0.3"]}]
"""


async def verified_from_the_start(
    api: FakeApi, cluster: Cluster, targets: list[ObjectRef], out: Out
) -> Verdict:
    """Verify, with the held controllers let go once it has seen every target's first state."""
    task = asyncio.ensure_future(
        verify(cluster, targets, VerifyOptions(poll_s=0.01, timeout_s=10), out)
    )
    async with asyncio.timeout(5):
        while len({e.get("resource") for e in out.events}) < len(targets):
            await asyncio.sleep(0.005)
    api.controllers_running.set()
    return await task


def reasons(out: Out, label: str) -> list[str]:
    """The readiness reasons verify went through for one resource, in order."""
    return [e["reason"] for e in out.events if e.get("resource") == label and "reason" in e]


async def test_verify_follows_each_rollout_through_its_intermediate_states(
    cluster: Cluster, api: FakeApi
) -> None:
    api.rollout_delay = 0.2  # a controller step; verify polls faster and sees each state
    api.controllers_running.clear()  # held until verify has seen where the rollouts start
    text = WEB.replace("IMAGE", "nginx:1.27") + "---\n" + WORKLOADS
    await apply(cluster, load(text)[1], Options(), Out())
    targets = [
        ObjectRef("Deployment", "web", "default"),
        ObjectRef("StatefulSet", "db", "default"),
        ObjectRef("DaemonSet", "agent", "default"),
        ObjectRef("Job", "once", "default", api_version="batch/v1"),
    ]
    out = Out()
    verdict = await verified_from_the_start(api, cluster, targets, out)
    assert verdict.passed, strip_ansi(out.text)
    assert reasons(out, "Deployment/web")[0] == "ObservedGeneration", strip_ansi(out.text)
    assert reasons(out, "Deployment/web")[-1] == "Ready"
    assert "NotReady" in reasons(out, "Deployment/web")
    sts = reasons(out, "StatefulSet/db")
    assert sts[0] == "ObservedGeneration" and sts[-1] == "Ready"
    assert {"Updating", "NotReady"} <= set(sts)  # one pod at a time, each ready in turn
    ds = reasons(out, "DaemonSet/agent")
    assert ds[0] == "ObservedGeneration" and "NotReady" in ds and ds[-1] == "Ready"
    assert reasons(out, "Job/once") == ["Running", "Complete"]
    # An update: observed first, then new pods replace the old ones one at a time.
    api.controllers_running.clear()
    await deploy(cluster, "nginx:1.28")
    out = Out()
    verdict = await verified_from_the_start(api, cluster, targets[:1], out)
    assert verdict.passed, strip_ansi(out.text)
    seen = reasons(out, "Deployment/web")
    assert seen[0] == "ObservedGeneration" and seen[-1] == "Ready"
    details = [e["detail"] for e in out.events if e.get("resource") == "Deployment/web"]
    assert "0 of 2 updated" in details and "1 of 2 updated" in details
    assert "1 old replicas pending termination" in details
    live = api.get("apps/v1", "Deployment", "web", "default")
    assert live is not None
    conditions = {c["type"]: (c["status"], c["reason"]) for c in live["status"]["conditions"]}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    history = [
        (c["type"], c["status"], c["reason"])
        for _, kind, k, obj, _ in api.history
        if kind == "MODIFIED" and k.kind == "Deployment"
        for c in (obj.get("status") or {}).get("conditions") or []
    ]
    assert ("Available", "False", "MinimumReplicasUnavailable") in history
    assert ("Progressing", "True", "ReplicaSetUpdated") in history


async def test_a_deployment_past_its_progress_deadline_fails_without_waiting_it_out(
    cluster: Cluster, api: FakeApi
) -> None:
    api.deadline_scale = 0.2  # progressDeadlineSeconds: 1 passes in 0.2 s
    text = WEB.replace("IMAGE", "registry.example/does-not-exist:1").replace(
        "  replicas: 2\n", "  replicas: 2\n  progressDeadlineSeconds: 1\n"
    )
    await apply(cluster, load(text)[1], Options(), Out())
    out = Out()
    started = asyncio.get_running_loop().time()
    verdict = await verify(
        cluster, [ObjectRef("Deployment", "web", "default")], fast(timeout_s=60), out
    )
    assert asyncio.get_running_loop().time() - started < 30  # not the 60 s timeout
    assert not verdict.passed
    [blocker] = [f for f in verdict.findings if f.reason == "ProgressDeadlineExceeded"]
    assert blocker.message.endswith("has timed out progressing.")
    assert "reason=ProgressDeadlineExceeded" in verdict.summary
