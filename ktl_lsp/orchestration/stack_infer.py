"""Inferred ``needs`` for a whole stack: render every release's chart as ktl does (client-only,
CRDs included, the release's values files and ``set``), then ``infer_deps`` per cluster.

A release whose chart cannot be rendered (a remote chart, a template error, no helm extra) gets
no inferred needs and says why; the stack is still planned. Runs in a worker thread (plans are
loaded off the event loop); Helm itself runs in the renderer's worker process (`helm/render.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ktl_lsp.helm.model import Rendered, RenderError, RenderRequest
from ktl_lsp.helm.render import Renderer
from ktl_lsp.orchestration.infer_deps import (
    InferredNeed,
    ManifestError,
    ReleaseObjects,
    infer_needs,
    objects_of,
    release_fields,
)

_renderer: Renderer | None = None
_renderer_lock = threading.Lock()


def shared_renderer() -> Renderer:
    """The process's renderer for stack plans: one worker process, started on first need."""
    global _renderer
    with _renderer_lock:
        if _renderer is None:
            _renderer = Renderer("auto")
        return _renderer


def render_release(request: RenderRequest, renderer: Renderer | None = None) -> Rendered:
    """One render as ktl makes it (CRDs included), in the renderer's worker process: a crash or
    a hang in Helm costs the worker, never the caller (the language server)."""
    renderer = renderer or shared_renderer()
    if not renderer.available():
        return Rendered(request, error=RenderError(NO_HELM))
    return renderer.render_sync(replace(request, include_crds=True))


NO_HELM = "rendering charts needs the helm extra (pip install 'ktl-lsp[helm]') or a helm binary"


@dataclass
class StackInference:
    """Inferred needs by release id, and why some releases have none."""

    needs: dict[str, list[InferredNeed]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Release fields the rendered objects' ``ktl.io/*`` annotations give, by release id."""


def request_for(release: Mapping[str, Any]) -> RenderRequest | str:
    """The render of a resolved stack release (``stack._releases``), or why there is none."""
    chart = str(release.get("chart") or "")
    if "://" in chart:
        return f"chart {chart} is not local"
    if not Path(chart).exists():
        return f"chart {chart} not found"
    return RenderRequest(
        chart_dir=Path(chart),
        values_files=tuple(Path(v) for v in release.get("values") or []),
        set_values=tuple((str(k), _scalar(v)) for k, v in (release.get("set") or {}).items()),
        release=str(release["name"]),
        namespace=str(release["namespace"]),
        label=f"stack: {release['name']}",
    )


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def infer_stack(releases: Iterable[Mapping[str, Any]], config_refs: bool) -> StackInference:
    """Render each release once and infer the needs within each cluster."""
    out = StackInference()
    by_cluster: dict[str, list[tuple[str, ReleaseObjects]]] = {}
    for release in releases:
        objects = ReleaseObjects(str(release["name"]), str(release["namespace"]))
        by_cluster.setdefault(str(release["cluster"]), []).append((release["id"], objects))
        request = request_for(release)
        if isinstance(request, str):
            out.errors[release["id"]] = request
            continue
        rendered = render_release(request)
        if rendered.error is not None:
            out.errors[release["id"]] = _render_error_text(rendered.error)
            continue
        try:
            objects.objects = objects_of(rendered.manifests)
        except ManifestError as exc:
            out.errors[release["id"]] = f"rendered manifests are not YAML: {exc}"
        out.fields[release["id"]] = release_fields(objects.objects)
    for members in by_cluster.values():
        found = infer_needs([objects for _, objects in members], config_refs)
        for release_id, objects in members:
            out.needs[release_id] = found.get(objects.name, [])
    return out


def _render_error_text(error: RenderError) -> str:
    where = error.template or ""
    if where and error.line is not None:
        where += f":{error.line + 1}"
    return f"{where}: {error.message}" if where else error.message
