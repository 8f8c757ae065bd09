"""Inferred ``needs`` for a whole stack: render every release's chart as ktl does (client-only,
CRDs included, the release's values files and ``set``), then ``infer_deps`` per cluster.

A release whose chart cannot be rendered (a remote chart, a template error, no helm extra) gets
no inferred needs and says why; the stack is still planned. Runs in a worker thread (plans are
loaded off the event loop).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ktl_lsp.helm.model import Rendered, RenderError, RenderRequest
from ktl_lsp.orchestration.infer_deps import (
    InferredNeed,
    ManifestError,
    ReleaseObjects,
    infer_needs,
    objects_of,
    release_fields,
)


def render_release(request: RenderRequest) -> Rendered:
    """One render, in process with helm-python-sdk.

    The language server's ``helm.render.Renderer`` (a worker process with time limits) does the
    same; this is the one place to call it instead."""
    try:
        import helm_python
    except ImportError:
        return Rendered(request, error=RenderError(NO_HELM))
    try:
        values = _values(request)
    except (OSError, yaml.YAMLError, ValueError, helm_python.HelmError) as exc:
        return Rendered(request, error=RenderError(f"values: {exc}"))
    try:
        with helm_python.Chart.load(request.chart_dir) as chart:
            raw = chart.render(values, name=request.release, namespace=request.namespace)
            crds = {c["filename"]: c["data"] for c in chart.crds}
    except helm_python.HelmError as exc:
        return Rendered(request, error=RenderError(str(exc)))
    manifests = {_chart_relative(k): v for k, v in {**crds, **raw}.items()}
    return Rendered(request, manifests=manifests)


NO_HELM = "rendering charts needs the helm extra (pip install 'ktl-lsp[helm]')"


def _chart_relative(key: str) -> str:
    """Helm keys templates by chart name ("app/templates/d.yaml"): drop the name."""
    return key.split("/", 1)[1] if "/" in key else key


def _values(request: RenderRequest) -> dict[str, Any]:
    """The values files in order, then ``set``, merged as ``helm -f a -f b --set k=v`` does."""
    import helm_python

    values: dict[str, Any] = {}
    for path in request.values_files:
        loaded = yaml.safe_load(path.read_text("utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{path}: not a mapping")
        _merge(values, loaded or {})
    for key, value in request.set_values:
        _merge(values, helm_python.parse_set_string(f"{key}={value}"))
    return values


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value)
        else:
            into[key] = value


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
