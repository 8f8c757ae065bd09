"""``runner: kubernetes``: a plan node run as a Kubernetes Job on the current cluster.

The cluster does the distributed part (scheduling, image pulls, resource limits); this runner
creates the Job by server-side apply, follows its pod's log into the node's session and takes
the node's exit code from the container's ``terminated.exitCode``. The Job gets
``backoffLimit: 0``: retries belong to the plan (``retries:``), where they are visible and
recorded as attempts. Cancelling the node (or its timeout) deletes the Job in the foreground,
so the pod is gone before the node is reported cancelled.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.errors import ApiError, K8sError, Unauthorized
from ktl_lsp.k8s.guard import Mutation, ReadOnlyContext
from ktl_lsp.k8s.logs import format_since, parse_stamp
from ktl_lsp.k8s.ops import STRICT
from ktl_lsp.k8s.sessions import K8sSessions
from ktl_lsp.k8s.style import DIM, RED, RESET
from ktl_lsp.k8s.watch import Backoff, transient
from ktl_lsp.orchestration.model import PlanNode
from ktl_lsp.orchestration.runners import LaunchContext, NodeHandle, SessionHandle
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, TaskOutcome
from ktl_lsp.sessions.model import State

FIELD_MANAGER = "ktl-lsp"
CONTAINER = "node"
#: Waiting reasons after which a pod will not start without someone changing something.
STUCK = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}
POLL_FIRST_S = 0.1
POLL_MAX_S = 1.0
#: A terminated container's final status can trail the end of its log stream a little.
EXIT_WAIT_S = 30.0
#: How long a cancelled node waits for its Job (and pod) to be gone before it reports.
DELETE_WAIT_S = 30.0


def job_name(plan: str, node: str, session_id: str) -> str:
    """A DNS-1123 name (63 chars at most) that says which plan and node, unique per attempt."""
    stem = re.sub(r"[^a-z0-9-]+", "-", f"ktl-{plan}-{node}".lower()).strip("-")
    suffix = session_id[-8:].lower()
    return f"{stem[: 62 - len(suffix)].rstrip('-')}-{suffix}"


def job_manifest(
    node: PlanNode, name: str, namespace: str, session_id: str, plan: str
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": CONTAINER, "image": node.extra["image"]}
    if node.command is not None:
        container["command"] = ["sh", "-c", node.command]
    elif node.argv:
        container["command"] = list(node.argv)
    if node.env:
        container["env"] = [{"name": k, "value": v} for k, v in node.env.items()]
    if node.extra.get("resources"):
        container["resources"] = node.extra["resources"]
    labels = {
        "app.kubernetes.io/managed-by": "ktl-lsp",
        "ktl.dev/session": session_id.lower(),
        "ktl.dev/node": re.sub(r"[^A-Za-z0-9_.-]+", "-", node.id)[:63].strip("-._") or "node",
    }
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": 3600,
        "template": {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [container]},
        },
    }
    if node.timeout_s:
        # The cluster enforces it too, should this server go away mid-run.
        spec["activeDeadlineSeconds"] = max(1, int(node.timeout_s) + 30)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {"ktl.dev/plan": plan},
        },
        "spec": spec,
    }


class JobRunner:
    """Runs nodes as Jobs on the cluster of ``context`` (None: the kubeconfig's current one)."""

    def __init__(self, manager: SessionManager, k8s: K8sSessions, context: str | None = None):
        self.manager = manager
        self.k8s = k8s
        self.context = context

    async def preflight(self, node: PlanNode, cwd: str | None) -> str | None:
        if not node.extra.get("image"):
            return f'runner kubernetes needs an "image" for node "{node.id}"'
        if node.interactive:
            return "runner kubernetes cannot run an interactive node (no terminal in a Job)"
        cluster, problem = await self.k8s.cluster(self.context)
        try:
            self.k8s.refuse_read_only(cluster, Mutation("Run a Job", f"for node {node.id}"))
        except ReadOnlyContext as exc:
            return str(exc)
        return problem

    def start(self, node: PlanNode, ctx: LaunchContext) -> NodeHandle:
        spec = RunSpec(
            argv=[],
            command=node.display,
            kind="k8s",
            title=ctx.title,
            meta={**ctx.meta, "runner": "kubernetes", "image": node.extra.get("image")},
            tags=dict(ctx.tags),
            parent_id=ctx.parent_id,
            timeout_s=node.timeout_s,
        )

        async def work(live: LiveSession) -> TaskOutcome:
            return await self._run(live, node, ctx)

        return SessionHandle(self.manager, self.manager.start_task(spec, work))

    async def _run(self, live: LiveSession, node: PlanNode, ctx: LaunchContext) -> TaskOutcome:
        cluster, problem = await self.k8s.cluster(self.context)
        if cluster is None:
            return self.k8s.fail(live, problem or "no cluster")
        async with cluster.using():
            given = node.extra.get("namespace")
            namespace = self.k8s.namespace(cluster, str(given) if given else None)
            target = K8sSessions.meta(cluster, node.display, namespace)
            target.pop("command")  # the node's own stays
            await self.manager.update_meta(live.id, **target)
            name = job_name(ctx.plan_name, node.id, live.id)
            job = _Job(cluster, live, namespace, name)
            try:
                mutation = Mutation("Run a Job", f"for node {node.id}", "on")
                refused = await self.k8s.approved(live, cluster, namespace, mutation)
                if refused is not None:
                    return K8sSessions.refuse(live, refused)
                return await job.run(job_manifest(node, name, namespace, live.id, ctx.plan_name))
            except asyncio.CancelledError:
                await asyncio.shield(job.delete())
                raise
            except (K8sError, ReadOnlyContext) as exc:
                return K8sSessions.fail(live, f"job {namespace}/{name}: {exc}")


class _Job:
    def __init__(self, cluster: Cluster, live: LiveSession, namespace: str, name: str) -> None:
        self.cluster = cluster
        self.live = live
        self.namespace = namespace
        self.name = name
        self.created = False
        self.last_stamp: tuple[int, int] | None = None

    @property
    def _path(self) -> str:
        return f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{self.name}"

    async def run(self, manifest: dict[str, Any]) -> TaskOutcome:
        image = manifest["spec"]["template"]["spec"]["containers"][0]["image"]
        await self.cluster.request(
            "PATCH",
            self._path,
            [("fieldManager", FIELD_MANAGER), ("force", "true"), STRICT],
            body=manifest,
            content_type="application/apply-patch+yaml",
        )
        self.created = True
        self.live.event(kind="k8s.job", namespace=self.namespace, name=self.name, image=image)
        self.live.write(
            f"{DIM}job {self.namespace}/{self.name} on {self.cluster.name} (image {image}){RESET}\r\n"
        )
        pod, problem = await self._started_pod()
        if problem is not None:
            await self.delete()
            return K8sSessions.fail(self.live, problem)
        self.live.write(f"{DIM}pod {pod}{RESET}\r\n")
        await self._follow(pod)
        code = await self._exit_code(pod)
        if code is None:
            return K8sSessions.fail(self.live, f"pod {pod} ended without a container exit code")
        if code == 0:
            return TaskOutcome(State.DONE, 0)
        return TaskOutcome(State.ERROR, code, f"exit {code}")

    async def _pods(self) -> list[dict[str, Any]]:
        _, body = await self.cluster.request(
            "GET",
            f"/api/v1/namespaces/{self.namespace}/pods",
            [("labelSelector", f"ktl.dev/session={self.live.id.lower()}")],
        )
        return list((body or {}).get("items") or [])

    async def _started_pod(self) -> tuple[str, str | None]:
        """The Job's pod once its container runs (or ran); a reason string if it never will."""
        delay = POLL_FIRST_S
        shown = ""
        while True:
            for pod in await self._pods():
                name = str(pod["metadata"]["name"])
                for cs in pod.get("status", {}).get("containerStatuses") or []:
                    state = cs.get("state") or {}
                    if "running" in state or "terminated" in state:
                        return name, None
                    waiting = state.get("waiting") or {}
                    reason = waiting.get("reason", "")
                    if reason in STUCK:
                        detail = f"{reason}: {waiting.get('message', '')}".rstrip(": ")
                        return name, f"pod {name} cannot start: {detail}"
                    if reason and reason != shown:
                        shown = reason
                        self.live.write(f"{DIM}pod {name}: {reason}{RESET}\r\n")
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)

    async def _follow(self, pod: str) -> None:
        """The container's log into the session, until the container ends."""
        path = f"/api/v1/namespaces/{self.namespace}/pods/{pod}/log"
        backoff = Backoff()
        while True:
            query: list[tuple[str, Any]] = [
                ("container", CONTAINER),
                ("follow", "true"),
                ("timestamps", "true"),
            ]
            if self.last_stamp is not None:
                query.append(("sinceTime", format_since(self.last_stamp)))
            try:
                response = await self.cluster.stream(path, query, accept="*/*", idle_s=300)
                try:
                    carry = b""
                    async for chunk in response.content.iter_any():
                        carry += chunk
                        cut = carry.rfind(b"\n")
                        if cut >= 0:
                            self._emit(carry[: cut + 1])
                            carry = carry[cut + 1 :]
                    if carry:
                        self._emit(carry + b"\n")
                finally:
                    response.close()
            except Unauthorized:
                raise
            except ApiError as exc:
                if exc.code == 404:
                    return
                waiting = exc.code == 400 and "waiting to start" in exc.message
                if not waiting and not transient(exc):
                    raise
                await asyncio.sleep(backoff.next_delay())
                continue
            except Exception as exc:
                if not transient(exc):
                    raise
                await asyncio.sleep(backoff.next_delay())
                continue
            if await self._exit_code(pod, wait=False) is not None:
                return
            # The stream ended while the container runs (the API server's timeout): resume.
            await asyncio.sleep(min(backoff.next_delay(), POLL_MAX_S))

    def _emit(self, data: bytes) -> None:
        out: list[str] = []
        for raw in data.decode("utf-8", "replace").splitlines():
            stamp_text, _, line = raw.partition(" ")
            try:
                stamp = parse_stamp(stamp_text)
            except ValueError:
                stamp, line = None, raw
            if stamp is not None:
                if self.last_stamp is not None and stamp <= self.last_stamp:
                    continue  # already shown before a resumed stream
                self.last_stamp = stamp
            out.append(line + "\r\n")
        if out:
            self.live.write("".join(out))

    async def _exit_code(self, pod: str, wait: bool = True) -> int | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (EXIT_WAIT_S if wait else 0)
        delay = POLL_FIRST_S
        while True:
            _, body = await self.cluster.request(
                "GET", f"/api/v1/namespaces/{self.namespace}/pods/{pod}"
            )
            for cs in (body or {}).get("status", {}).get("containerStatuses") or []:
                if cs.get("name") == CONTAINER and "terminated" in (cs.get("state") or {}):
                    return int(cs["state"]["terminated"].get("exitCode", 1))
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)

    async def delete(self) -> None:
        """Removes the Job and waits until it is gone: with foreground propagation the pod (and
        so the container) goes first, and only then the Job."""
        if not self.created:
            return
        try:
            await self.cluster.request(
                "DELETE", self._path, [("propagationPolicy", "Foreground")], timeout=10
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DELETE_WAIT_S
            while loop.time() < deadline:
                await asyncio.sleep(POLL_FIRST_S)
                await self.cluster.request("GET", self._path, timeout=10)
            self.live.write(f"\r\n{DIM}job {self.name} is still being deleted{RESET}\r\n")
        except K8sError as exc:
            if isinstance(exc, ApiError) and exc.code == 404:
                self.live.write(f"\r\n{DIM}job {self.namespace}/{self.name} deleted{RESET}\r\n")
            else:
                self.live.write(f"\r\n{RED}could not delete job {self.name}: {exc}{RESET}\r\n")
