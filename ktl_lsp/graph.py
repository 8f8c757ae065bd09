"""Graphs of named nodes (plan nodes, stack releases): the cycles a person must break."""

from __future__ import annotations


def find_cycles(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """One simple cycle per strongly connected component that has one (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                if len(component) > 1 or node in targets:
                    components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    cycles: list[list[str]] = []
    for component in components:
        members = set(component)
        start = min(component)
        path = [start]
        seen = {start}
        current = start
        while True:
            nxt = next((t for t in edges.get(current, []) if t in members), None)
            if nxt is None:
                break
            if nxt == start:
                cycles.append(path)
                break
            if nxt in seen:
                cycles.append(path[path.index(nxt) :])
                break
            path.append(nxt)
            seen.add(nxt)
            current = nxt
    return cycles
