"""The findings of the charts among paths given to a one-shot check (``ktl-lsp check``, the
agents' ``check`` tool): each chart rendered and its templates' findings added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ktl_lsp.checks.findings import Finding, sort_findings


def add_chart_findings(
    results: dict[Path, list[Finding]], paths: list[str], version: str, mode: Any
) -> str | None:
    """Renders the charts among `paths` (a chart directory, a directory of charts, a chart's
    file) and adds their findings; returns why charts were not rendered when no renderer is
    there (for the caller to say once), else None."""
    from ktl_lsp.helm.charts import chart_root, find_charts, find_stack_roots, releases_using
    from ktl_lsp.helm.render import Renderer
    from ktl_lsp.helm.render_findings import check_chart

    charts: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw).resolve()
        for chart in find_charts(path) if path.is_dir() else []:
            charts[chart] = None
        top = chart_root(path)
        if top is not None:
            charts[top] = None
    if not charts:
        return None
    renderer = Renderer(mode)
    stack_roots = find_stack_roots(Path(p).resolve() for p in paths if Path(p).is_dir())
    try:
        for chart in charts:
            checked = check_chart(chart, renderer, version, releases_using(chart, stack_roots))
            for path, findings in checked.findings.items():
                results[path] = sort_findings([*results.get(path, []), *findings])
            if not checked.rendered and not renderer.available():
                return renderer.unavailable_reason()
    finally:
        renderer.close()
    return None
