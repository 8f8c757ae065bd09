"""Pod logs: one pod, a workload's pods or a label selector; all containers or one; followed.

Every (pod, container) gets its own stream, read with ``timestamps=true`` so a stream that stalls,
hits the API server's timeout or loses the cluster is resumed with ``sinceTime`` from the last
line seen, and the lines the resumed stream repeats (``sinceTime`` has whole-second precision)
are dropped by timestamp. When following, a watch on the pods picks up pods that start, marks
restarts and pods that vanish. Lines are written with a coloured ``pod/container`` prefix, in
batches (one frame per chunk read, not per line) so a flood of output costs little.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ktl_lsp.k8s.client import Cluster, Resource
from ktl_lsp.k8s.errors import ApiError, K8sError, Unauthorized
from ktl_lsp.k8s.ops import Output
from ktl_lsp.k8s.style import BOLD, DIM, RED, RESET, YELLOW
from ktl_lsp.k8s.targets import workload_selector
from ktl_lsp.k8s.watch import Backoff, transient, watch

PREFIX_COLOURS = ("\x1b[36m", "\x1b[35m", "\x1b[32m", "\x1b[34m", "\x1b[33m", "\x1b[96m")
HIGHLIGHT = "\x1b[1;43;30m"
#: A stream silent for this long is re-opened (the client's follow streams are known to hang).
STALL_S = 60.0


def parse_stamp(text: str) -> tuple[int, int]:
    """An RFC 3339 time with up to 9 fraction digits as (unix seconds, nanoseconds)."""
    base, _, frac = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(base).replace(tzinfo=UTC).timestamp())
    return seconds, int((frac + "000000000")[:9]) if frac else 0


def format_since(stamp: tuple[int, int]) -> str:
    return datetime.fromtimestamp(stamp[0], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LogRequest:
    namespace: str
    pod: str | None = None
    selector: str | None = None
    workload: str | None = None
    container: str | None = None
    follow: bool = True
    tail_lines: int | None = 100
    since_seconds: int | None = None
    highlight: list[str] = field(default_factory=list)


@dataclass
class _Stream:
    pod: str
    container: str
    task: asyncio.Task[None] | None = None
    last: tuple[int, int] | None = None
    seen_at_last: set[str] = field(default_factory=set)
    lines: int = 0
    resumes: int = 0


class LogFollower:
    def __init__(
        self, cluster: Cluster, req: LogRequest, out: Output, stall_s: float = STALL_S
    ) -> None:
        self.cluster = cluster
        self.req = req
        self.out = out
        self.stall_s = stall_s
        self.streams: dict[tuple[str, str], _Stream] = {}
        self.colours: dict[str, str] = {}
        self.restarts: dict[str, int] = {}
        self.gone: set[str] = set()
        self.lines = 0
        self._marker: Callable[[str], str] = self._no_highlight
        if req.highlight:
            pattern = re.compile("|".join(re.escape(h) for h in req.highlight if h), re.IGNORECASE)
            self._marker = lambda text: pattern.sub(
                lambda m: f"{HIGHLIGHT}{m.group(0)}{RESET}", text
            )

    @staticmethod
    def _no_highlight(text: str) -> str:
        return text

    async def pods_resource(self) -> Resource:
        res = await self.cluster.resource_for("v1", "Pod")
        if res is None:  # pragma: no cover - every cluster serves pods
            raise K8sError("the cluster does not serve pods")
        return res

    async def selector(self) -> tuple[str | None, str | None]:
        """(labelSelector, fieldSelector) for the pods to follow."""
        req = self.req
        if req.pod:
            return None, f"metadata.name={req.pod}"
        if req.selector:
            return req.selector, None
        assert req.workload is not None
        return await workload_selector(self.cluster, req.namespace, req.workload), None

    # -- running ------------------------------------------------------------------------------
    async def run(self) -> int:
        labels, fields = await self.selector()
        pods = await self.pods_resource()
        ns = self.req.namespace
        try:
            if not self.req.follow:
                _, data = await self.cluster.request(
                    "GET", pods.path(ns), [("labelSelector", labels), ("fieldSelector", fields)]
                )
                items = (data or {}).get("items") or []
                if not items:
                    self._note(f"no pods match ({labels or fields}) in namespace {ns}")
                for pod in items:
                    self._pod_seen(pod)
                await asyncio.gather(*(s.task for s in self.streams.values() if s.task))
                return self.lines
            self._note(f"following pods ({labels or fields}) in namespace {ns}; cancel to stop")
            async for kind, pod in watch(self.cluster, pods, ns, labels, fields, notice=self._note):
                if kind == "DELETED":
                    self._pod_gone(pod)
                else:
                    self._pod_seen(pod)
            return self.lines  # pragma: no cover - watch only ends by raising
        finally:
            tasks = [s.task for s in self.streams.values() if s.task and not s.task.done()]
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    def _colour(self, pod: str) -> str:
        if pod not in self.colours:
            self.colours[pod] = PREFIX_COLOURS[len(self.colours) % len(PREFIX_COLOURS)]
        return self.colours[pod]

    def _note(self, text: str) -> None:
        self.out.write(f"{DIM}--- {text}{RESET}\r\n")

    def _pod_seen(self, pod: dict[str, Any]) -> None:
        name = str(pod["metadata"]["name"])
        containers = [str(c["name"]) for c in (pod.get("spec") or {}).get("containers") or []]
        if self.req.container:
            if self.req.container not in containers:
                if (name, "?") not in self.streams:
                    self.streams[(name, "?")] = _Stream(name, "?")
                    self._note(
                        f"pod {name} has no container {self.req.container} (it has {', '.join(containers)})"
                    )
                return
            containers = [self.req.container]
        restarts = sum(
            int(cs.get("restartCount") or 0)
            for cs in (pod.get("status") or {}).get("containerStatuses") or []
        )
        if name in self.restarts and restarts > self.restarts[name]:
            self.out.write(f"{YELLOW}--- pod {name} restarted (restarts: {restarts}){RESET}\r\n")
            self.out.event(pod=name, restarted=restarts)
        self.restarts[name] = restarts
        for c in containers:
            key = (name, c)
            stream = self.streams.get(key)
            if stream is None or (
                stream.task is not None
                and stream.task.done()
                and self.req.follow
                and name not in self.gone
            ):
                if stream is None:
                    stream = self.streams[key] = _Stream(name, c)
                    if self.req.follow and len(self.streams) > 1:
                        self._note(f"pod {name} container {c}: following")
                    self.out.event(pod=name, container=c, state="following")
                stream.task = asyncio.ensure_future(self._follow(stream))

    def _pod_gone(self, pod: dict[str, Any]) -> None:
        name = str(pod["metadata"]["name"])
        self.gone.add(name)
        self.out.write(f"{RED}--- pod {name} is gone{RESET}\r\n")
        self.out.event(pod=name, state="gone")

    async def _follow(self, s: _Stream) -> None:
        pods = await self.pods_resource()
        path = pods.path(self.req.namespace, s.pod) + "/log"
        backoff = Backoff()
        prefix = f"{self._colour(s.pod)}{s.pod}/{s.container}{RESET} "
        while True:
            query: list[tuple[str, Any]] = [
                ("container", s.container),
                ("timestamps", "true"),
                ("follow", "true" if self.req.follow else None),
            ]
            if s.last is None:
                query += [
                    ("tailLines", self.req.tail_lines),
                    ("sinceSeconds", self.req.since_seconds),
                ]
            else:
                query.append(("sinceTime", format_since(s.last)))
            try:
                response = await self.cluster.stream(path, query, accept="*/*", idle_s=self.stall_s)
                try:
                    backoff.reset()
                    carry = b""
                    async for chunk in response.content.iter_any():
                        carry += chunk
                        cut = carry.rfind(b"\n")
                        if cut < 0:
                            continue
                        complete, carry = carry[: cut + 1], carry[cut + 1 :]
                        self._emit(s, prefix, complete.decode("utf-8", "replace").splitlines())
                    if carry:
                        self._emit(s, prefix, [carry.decode("utf-8", "replace")])
                finally:
                    response.close()  # a stream cut short must not go back to the pool
            except Unauthorized:
                raise
            except ApiError as exc:
                if exc.code == 404 or s.pod in self.gone:
                    return
                if exc.code == 400 and "waiting to start" in exc.message and self.req.follow:
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if not transient(exc):
                    self.out.write(f"{prefix}{RED}{exc}{RESET}\r\n")
                    return
                await self._retry(s, prefix, backoff, exc)
                continue
            except Exception as exc:
                if not transient(exc):
                    raise
                if not self.req.follow or s.pod in self.gone:
                    return
                if _stalled(exc):
                    # Silent for stall_s: a quiet container or a hung stream. Re-open from the
                    # last line seen; the dedupe makes this free of repeats.
                    s.resumes += 1
                    continue
                await self._retry(s, prefix, backoff, exc)
                continue
            if not self.req.follow or s.pod in self.gone:
                return
            # The stream ended while the pod lives: the API server's timeout, a container that
            # restarted, or a stall. Pick up where it stopped.
            await asyncio.sleep(min(backoff.next_delay(), 1.0))

    async def _retry(self, s: _Stream, prefix: str, backoff: Backoff, exc: BaseException) -> None:
        delay = backoff.next_delay()
        reason = (str(exc) or type(exc).__name__).splitlines()[0][:160]
        self.out.write(
            f"{prefix}{YELLOW}--- stream lost ({reason}); retrying in {delay:.1f}s{RESET}\r\n"
        )
        self.out.event(pod=s.pod, container=s.container, state="retrying", reason=reason)
        await asyncio.sleep(delay)

    def _emit(self, s: _Stream, prefix: str, lines: list[str]) -> None:
        out: list[str] = []
        for line in lines:
            stamp_text, _, text = line.partition(" ")
            try:
                stamp = parse_stamp(stamp_text)
            except ValueError:
                stamp, text = None, line
            if stamp is not None and s.last is not None:
                if stamp < s.last:
                    continue
                if stamp == s.last:
                    if text in s.seen_at_last:
                        continue
                    s.seen_at_last.add(text)
            if stamp is not None and (s.last is None or stamp > s.last):
                s.last = stamp
                s.seen_at_last = {text}
            out.append(f"{prefix}{self._marker(text)}\r\n")
        if out:
            s.lines += len(out)
            self.lines += len(out)
            self.out.write("".join(out))


def _stalled(exc: BaseException) -> bool:
    import aiohttp

    return isinstance(exc, aiohttp.ServerTimeoutError)


__all__ = ["BOLD", "LogFollower", "LogRequest", "parse_stamp"]
