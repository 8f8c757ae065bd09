"""Events of a namespace (or of the objects of a file), listed and then watched, one line each."""

from __future__ import annotations

from typing import Any

from ktl_lsp.k8s.client import Cluster
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.k8s.ops import Output
from ktl_lsp.k8s.style import DIM, RESET, YELLOW
from ktl_lsp.k8s.verify import ObjectRef, about
from ktl_lsp.k8s.watch import watch


def event_line(ev: dict[str, Any]) -> str:
    inv = ev.get("involvedObject") or {}
    when = str(ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp") or "")
    when = when[11:19] if len(when) >= 19 else when
    type_ = str(ev.get("type") or "Normal")
    colour = YELLOW if type_ == "Warning" else DIM
    count = int(ev.get("count") or 1)
    times = f" (x{count})" if count > 1 else ""
    obj = f"{str(inv.get('kind') or '').lower()}/{inv.get('name')}"
    return f"{when} {colour}{type_:<7}{RESET} {ev.get('reason', '')!s:<18} {obj:<40} {ev.get('message', '')}{times}\r\n"


async def events(
    cluster: Cluster,
    namespace: str,
    out: Output,
    follow: bool = True,
    targets: list[ObjectRef] | None = None,
) -> int:
    """Writes the events; returns how many were shown (only returns when not following)."""
    res = await cluster.resource_for("v1", "Event")
    if res is None:  # pragma: no cover - every cluster serves events
        raise K8sError("the cluster does not serve events")
    shown = 0
    seen: dict[str, str] = {}

    def show(ev: dict[str, Any]) -> None:
        nonlocal shown
        meta = ev.get("metadata") or {}
        uid = str(meta.get("uid") or meta.get("name"))
        count = f"{ev.get('count')}/{ev.get('lastTimestamp')}"
        if seen.get(uid) == count:
            return  # a relist repeats what was shown
        seen[uid] = count
        if targets is not None and about(ev, targets) is None:
            return
        shown += 1
        out.write(event_line(ev))
        inv = ev.get("involvedObject") or {}
        out.event(
            reason=ev.get("reason"),
            type=ev.get("type"),
            object=f"{inv.get('kind')}/{inv.get('name')}",
        )

    if not follow:
        _, data = await cluster.request("GET", res.path(namespace))
        items = sorted(
            (data or {}).get("items") or [], key=lambda e: str(e.get("lastTimestamp") or "")
        )
        for ev in items:
            show(ev)
        return shown
    out.write(f"{DIM}--- watching events in namespace {namespace}; cancel to stop{RESET}\r\n")
    async for kind, ev in watch(
        cluster, res, namespace, notice=lambda t: out.write(f"{DIM}--- {t}{RESET}\r\n")
    ):
        if kind != "DELETED":
            show(ev)
    return shown  # pragma: no cover - the watch only ends by raising
