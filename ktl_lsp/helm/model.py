"""What a render is asked for and what it gives back: plain data shared by the renderer, the checks
of rendered manifests, and the stack planner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RenderRequest:
    """One render of a chart: which values, as which release, for which cluster version."""

    chart_dir: Path
    values_files: tuple[Path, ...] = ()
    """Applied after the chart's own values.yaml, in order (as `helm template -f a -f b`)."""
    set_values: tuple[tuple[str, str], ...] = ()
    """`--set key=value` pairs, applied last."""
    release: str = "release-name"
    namespace: str = "default"
    kube_version: str | None = None
    """`.Capabilities.KubeVersion` (e.g. "1.31"); None: the library's default."""
    label: str = "values.yaml"
    """How findings name this render to the user ("values.yaml", "ci/ha-values.yaml", "stack: api")."""
    include_crds: bool = False
    """Also answer the chart's (and subcharts') `crds/` files, as `helm template --include-crds`
    and ktl's own renders do (keyed `crds/x.yaml`)."""


@dataclass(frozen=True)
class TemplateSpot:
    """A place in a template that Helm names in an error (an `include` on the way to it)."""

    template: str
    """Relative to the chart directory, like `RenderError.template`."""
    line: int
    """0-based."""
    column: int | None = None
    """0-based, in code points of the line."""


@dataclass(frozen=True)
class RenderError:
    """Why a render failed, placed where Helm says (a template line) when it says."""

    message: str
    template: str | None = None
    """Path relative to the chart directory ("templates/svc.yaml", "charts/sub/templates/x.yaml")."""
    line: int | None = None
    """0-based."""
    column: int | None = None
    """0-based."""
    values_file: Path | None = None
    """The values file that caused it, when one can be named."""
    via: tuple[TemplateSpot, ...] = ()
    """The `include`/`template` calls that led to the failing line, outermost first."""


@dataclass
class Rendered:
    """A render's result. `manifests` is keyed by template path relative to the chart directory
    (Helm's own keys start with the chart name: "mychart/templates/d.yaml" -> "templates/d.yaml")."""

    request: RenderRequest
    manifests: dict[str, str] = field(default_factory=dict)
    error: RenderError | None = None
    cut_short: bool = False
    """The render hit its time or size limit; `manifests` may be empty or partial."""


@dataclass(frozen=True)
class LintMessage:
    """One finding of `helm lint`."""

    severity: int
    """1 info, 2 warning, 3 error (Helm's levels)."""
    path: str
    """Relative to the chart directory ("Chart.yaml", "templates/x.yaml", "templates/", "")."""
    message: str
