"""Verify: wait for workloads to roll out, then judge the Warning events of a window, the way
ktl's stack verify gate does (ktl's stack ``verify`` settings).

- Rollout: Deployments, StatefulSets, DaemonSets and Jobs must be ready within ``timeout_s``
  (status read every ``poll_s``); other kinds only need to exist. A Deployment past its
  ``progressDeadlineSeconds`` fails at once (``ProgressDeadlineExceeded``), as with kubectl.
- Events: Warning events about the resources (or their pods) newer than ``events_window_s``.
  ``allow_reasons`` non-empty: only those reasons count (``deny_reasons`` is then ignored);
  otherwise ``deny_reasons`` non-empty: only those fail; both empty: every Warning fails.
  Reasons match case-insensitively.
- Messages follow ktl's wording: ``verify: not ready (top blockers: Kind/name status=...
  reason=... msg=...)`` and ``verify: warning events observed (count=N since=<RFC3339>
  latest=<ns>/<Kind>/<name> <Reason>: <msg>)``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.errors import ApiError
from ktl_lsp.k8s.ops import Output
from ktl_lsp.k8s.style import DIM, GREEN, RED, RESET, YELLOW
from ktl_lsp.sessions.manager import TaskOutcome
from ktl_lsp.sessions.model import State

ROLLOUT_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
#: A Deployment's controller gave up waiting for progress: no point waiting longer either.
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class ObjectRef:
    """One object to verify (or watch events of), and the document that declares it."""

    kind: str
    name: str
    namespace: str | None
    api_version: str = ""
    document: int | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Finding:
    target: ObjectRef
    severity: str  #: "error" fails the gate, "warning" is reported only
    reason: str
    message: str

    def to_lsp(self) -> dict[str, Any]:
        t = self.target
        return {
            "resource": {"kind": t.kind, "name": t.name, "namespace": t.namespace},
            "severity": self.severity,
            "reason": self.reason,
            "message": self.message,
            **({"document": t.document} if t.document is not None else {}),
        }


@dataclass
class VerifyOptions:
    timeout_s: float = 120.0
    events_window_s: float = 900.0
    deny_reasons: list[str] = field(default_factory=list)
    allow_reasons: list[str] = field(default_factory=list)
    poll_s: float = 1.0


@dataclass
class Verdict:
    passed: bool
    findings: list[Finding]
    summary: str

    def outcome(self) -> TaskOutcome:
        """How a verify session ends: done when passed, else error with the summary; its
        findings are the result (the command's answer, and what the session records)."""
        extra = {"findings": [f.to_lsp() for f in self.findings], "passed": self.passed}
        if self.passed:
            return TaskOutcome(State.DONE, 0, None, extra)
        return TaskOutcome(State.ERROR, 1, self.summary, extra)


def readiness(kind: str, obj: dict[str, Any]) -> tuple[bool, str, str]:
    """(ready, reason, detail) of one workload's status."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    gen = int((obj.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if kind != "Job" and observed < gen:
        return False, "ObservedGeneration", f"observed generation {observed} < {gen}"
    for c in status.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == DEADLINE_EXCEEDED:
            return False, DEADLINE_EXCEEDED, str(c.get("message") or "progress deadline exceeded")
    if kind in ("Deployment", "StatefulSet"):
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        updated = int(status.get("updatedReplicas") or 0)
        ready = int(status.get("readyReplicas") or 0)
        available = int(status.get("availableReplicas") or ready)
        if updated < want:
            return False, "Updating", f"{updated} of {want} updated"
        replicas = int(status.get("replicas") or 0)
        if kind == "Deployment" and replicas > updated:
            # As kubectl rollout status: the old pods still serve until they are gone.
            return False, "Updating", f"{replicas - updated} old replicas pending termination"
        if ready < want or (kind == "Deployment" and available < want):
            return False, "NotReady", f"{ready} of {want} ready"
        return True, "Ready", f"{ready} of {want} ready"
    if kind == "DaemonSet":
        want = int(status.get("desiredNumberScheduled") or 0)
        ready = int(status.get("numberReady") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        if updated < want or ready < want:
            return False, "NotReady", f"{ready} of {want} ready"
        return True, "Ready", f"{ready} of {want} ready"
    if kind == "Job":
        for c in status.get("conditions") or []:
            if c.get("type") == "Failed" and c.get("status") == "True":
                return (
                    False,
                    str(c.get("reason") or "Failed"),
                    str(c.get("message") or "job failed"),
                )
            if c.get("type") == "Complete" and c.get("status") == "True":
                return True, "Complete", "complete"
        want = int(spec.get("completions") or 1)
        done = int(status.get("succeeded") or 0)
        return done >= want, "Running" if done < want else "Complete", f"{done} of {want} succeeded"
    return True, "Exists", "exists"


def reason_fails(reason: str, opts: VerifyOptions) -> bool:
    r = reason.lower()
    if opts.allow_reasons:
        return r in {a.lower() for a in opts.allow_reasons}
    if opts.deny_reasons:
        return r in {d.lower() for d in opts.deny_reasons}
    return True


def _stamp(ev: dict[str, Any]) -> float:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        value = ev.get(key)
        if value:
            try:
                return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    created = (ev.get("metadata") or {}).get("creationTimestamp")
    return (
        datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp() if created else 0.0
    )


def about(ev: dict[str, Any], targets: list[ObjectRef]) -> ObjectRef | None:
    """The target an event concerns: itself, or one of its pods (named after it)."""
    inv = ev.get("involvedObject") or {}
    kind, name = inv.get("kind"), str(inv.get("name") or "")
    ns = inv.get("namespace")
    for t in targets:
        if t.namespace not in (None, ns) and ns:
            continue
        if kind == t.kind and name == t.name:
            return t
        if kind == "Pod" and t.kind in ROLLOUT_KINDS and name.startswith(t.name + "-"):
            return t
    return None


async def verify(
    cluster: Cluster, targets: list[ObjectRef], opts: VerifyOptions, out: Output
) -> Verdict:
    started = time.monotonic()
    started_wall = time.time()
    resolved = {}
    findings: list[Finding] = []
    for t in targets:
        res = await cluster.resource_for(t.api_version or _default_api(t.kind), t.kind)
        if res is None:
            findings.append(
                Finding(t, "error", "UnknownKind", f"the cluster does not serve {t.kind}")
            )
        else:
            resolved[t] = res
    out.write(
        f"{DIM}waiting up to {opts.timeout_s:g}s for {len(resolved)} resource(s) to be ready{RESET}\r\n"
    )
    state: dict[ObjectRef, tuple[bool, str, str]] = {}
    while True:
        for t, res in resolved.items():
            ns = t.namespace or cluster.default_namespace if res.namespaced else None
            try:
                _, obj = await cluster.request("GET", res.path(ns, t.name))
                now = (
                    readiness(t.kind, obj or {})
                    if t.kind in ROLLOUT_KINDS
                    else (True, "Exists", "exists")
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
                now = (False, "NotFound", "not found")
            if state.get(t) != now:
                colour = GREEN if now[0] else YELLOW
                out.write(
                    f"{colour}{'ready' if now[0] else 'waiting':<8}{RESET} {t.label}: {now[2]}\r\n"
                )
                out.event(resource=t.label, ready=now[0], reason=now[1], detail=now[2])
            state[t] = now
        settled = all(s[0] or s[1] == DEADLINE_EXCEEDED for s in state.values())
        if settled or time.monotonic() - started >= opts.timeout_s:
            break
        await asyncio.sleep(
            min(opts.poll_s, max(0.0, opts.timeout_s - (time.monotonic() - started)))
        )
    blockers = [(t, s) for t, s in state.items() if not s[0]]
    for t, (_, reason, detail) in blockers:
        waited = f"{time.monotonic() - started:.0f}s" if reason == DEADLINE_EXCEEDED else None
        findings.append(
            Finding(
                t, "error", reason, f"not ready after {waited or f'{opts.timeout_s:g}s'}: {detail}"
            )
        )
    # -- events -------------------------------------------------------------------------------
    since = started_wall - opts.events_window_s
    events_res = await cluster.resource_for("v1", "Event")
    failing: list[tuple[float, dict[str, Any], ObjectRef]] = []
    namespaces = sorted({t.namespace or cluster.default_namespace for t in targets})
    if events_res is not None:
        for ns in namespaces:
            _, data = await cluster.request(
                "GET", events_res.path(ns), [("fieldSelector", "type=Warning")]
            )
            for ev in (data or {}).get("items") or []:
                if ev.get("type") != "Warning" or _stamp(ev) < since:
                    continue
                concerned = about(ev, targets)
                if concerned is None:
                    continue
                t = concerned
                reason = str(ev.get("reason") or "")
                fails = reason_fails(reason, opts)
                msg = str(ev.get("message") or "")
                count = int(ev.get("count") or 1)
                findings.append(
                    Finding(
                        t,
                        "error" if fails else "warning",
                        reason,
                        f"{msg} (x{count})" if count > 1 else msg,
                    )
                )
                if fails:
                    failing.append((_stamp(ev), ev, t))
    parts = []
    if blockers:
        top = " ".join(
            f"{t.label} status={'NotFound' if r == 'NotFound' else 'NotReady'} reason={r} msg={d}"
            for t, (_, r, d) in blockers[:3]
        )
        parts.append(f"verify: not ready (top blockers: {top})")
    if failing:
        failing.sort(key=lambda x: x[0])
        _, ev, t = failing[-1]
        inv = ev.get("involvedObject") or {}
        since_text = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts.append(
            f"verify: warning events observed (count={len(failing)} since={since_text} "
            f"latest={inv.get('namespace')}/{inv.get('kind')}/{inv.get('name')} {ev.get('reason')}: {ev.get('message')})"
        )
    unknown = [f for f in findings if f.reason == "UnknownKind"]
    passed = not blockers and not failing and not unknown
    for f in findings:
        colour = RED if f.severity == "error" else YELLOW
        out.write(f"{colour}{f.severity:<8}{RESET} {f.target.label} {f.reason}: {f.message}\r\n")
    summary = "; ".join(parts) or ("verify: passed" if passed else "verify: failed")
    out.write(f"{GREEN if passed else RED}{summary}{RESET}\r\n")
    return Verdict(passed, findings, summary)


def _default_api(kind: str) -> str:
    return {
        "Deployment": "apps/v1",
        "StatefulSet": "apps/v1",
        "DaemonSet": "apps/v1",
        "ReplicaSet": "apps/v1",
        "Job": "batch/v1",
        "CronJob": "batch/v1",
    }.get(kind, "v1")
