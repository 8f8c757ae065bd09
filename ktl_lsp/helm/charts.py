"""Charts in the workspace, and what is rendered for each.

A chart is a directory with a Chart.yaml. A chart inside another chart's `charts/` is a subchart:
it renders with its parent, never alone; a library chart (`type: library`) renders with the charts
that depend on it, never alone. For a chart, each of these is a render of its own
(`render_requests`):

- the chart's `values.yaml` (release `release-name` in `default`, as `helm template`);
- each `ci/*-values.yaml` (chart-testing's convention: `ct lint` renders once per file);
- each ktl stack release whose `chart` is this directory: its values files and `set` after
  inheritance and profile, as its release and in its namespace;
- the values files the user picked (setting `helm.valuesFiles`, the "Render with this file" lens).

A chart whose declared dependencies are not vendored in `charts/` (as a directory or a `.tgz`) is
not rendered: `missing_dependencies_finding` says so once, on Chart.yaml.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ktl_lsp.checks.findings import Finding
from ktl_lsp.checks.stack_file import stack_root_for
from ktl_lsp.checks.stack_graph import FileSource, discover_stack_files
from ktl_lsp.checks.stack_releases import stack_releases
from ktl_lsp.documents.positions import Position, Range
from ktl_lsp.helm.model import RenderRequest

CHART_FILE = "Chart.yaml"
RULE = "helm-render"
SKIP_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}
)
MAX_CHARTS = 2_000


@dataclass(frozen=True)
class Dependency:
    name: str
    version: str = ""
    repository: str = ""


@dataclass(frozen=True)
class ChartInfo:
    dir: Path
    name: str
    type: str = "application"
    dependencies: tuple[Dependency, ...] = ()

    @property
    def is_library(self) -> bool:
        return self.type == "library"


def _mapping(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _read(path: Path, overlay: Mapping[Path, str]) -> str | None:
    text = overlay.get(path)
    if text is not None:
        return text
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def read_chart(chart_dir: Path, overlay: Mapping[Path, str] | None = None) -> ChartInfo | None:
    """The chart's name, type and declared dependencies (Chart.yaml; requirements.yaml for
    apiVersion v1 charts); None when there is no readable Chart.yaml."""
    texts = overlay or {}
    text = _read(chart_dir / CHART_FILE, texts)
    if text is None:
        return None
    data = _mapping(text)
    declared = data.get("dependencies")
    if not declared:
        declared = _mapping(_read(chart_dir / "requirements.yaml", texts)).get("dependencies")
    deps = tuple(
        Dependency(str(d["name"]), str(d.get("version") or ""), str(d.get("repository") or ""))
        for d in declared or []
        if isinstance(d, dict) and d.get("name")
    )
    return ChartInfo(
        chart_dir,
        str(data.get("name") or chart_dir.name),
        str(data.get("type") or "application"),
        deps,
    )


def chart_root(path: Path) -> Path | None:
    """The chart that renders `path`: its nearest chart, or, for a subchart in a `charts/`
    directory, the parent chart it renders with (the topmost)."""
    start = path if path.is_dir() else path.parent
    found: Path | None = None
    for directory in [start, *start.parents]:
        if (directory / CHART_FILE).is_file():
            if found is None or (
                found.parent.name == "charts" and found.parent.parent == directory
            ):
                found = directory
                continue
            break
        if found is not None and not (directory.name == "charts" and found.parent == directory):
            break
    return found


def find_charts(root: Path) -> list[Path]:
    """Charts under `root` that render on their own: not subcharts (in a chart's `charts/`),
    not library charts."""
    out: list[Path] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        if CHART_FILE not in files:
            continue
        if "charts" in dirs:
            dirs.remove("charts")  # subcharts render with this chart
        info = read_chart(Path(directory))
        if info is not None and not info.is_library:
            out.append(Path(directory))
            if len(out) >= MAX_CHARTS:
                break
    return out


def missing_dependencies(info: ChartInfo) -> list[Dependency]:
    """Declared dependencies that `charts/` holds neither as a directory nor as a `.tgz`."""
    charts = info.dir / "charts"
    vendored: set[str] = set()
    try:
        entries = list(os.scandir(charts))
    except OSError:
        entries = []
    for entry in entries:
        if entry.is_dir():
            vendored.add(entry.name)
            sub = read_chart(Path(entry.path))
            if sub is not None:
                vendored.add(sub.name)
        elif entry.name.endswith(".tgz"):
            # `name-1.2.3.tgz`, `name-with-dashes-1.2.3-rc.1.tgz`: the name without its version
            vendored.add(re.sub(r"-v?\d+(\.\d+)*([-+].*)?$", "", entry.name[:-4]))
    return [d for d in info.dependencies if d.name not in vendored]


def missing_dependencies_finding(info: ChartInfo, chart_text: str | None) -> Finding | None:
    """One information finding on Chart.yaml's `dependencies:` key naming what is missing."""
    missing = missing_dependencies(info)
    if not missing:
        return None
    line = 0
    for number, text in enumerate((chart_text or "").splitlines()):
        if re.match(r"dependencies\s*:", text):
            line = number
            break
    names = ", ".join(f"{d.name} {d.version}".strip() for d in missing)
    message = (
        f"dependencies missing from charts/: {names}; the templates are not rendered until "
        f'"helm dependency build" fetches them'
    )
    length = len("dependencies") if line else 0
    return Finding(Range(Position(line, 0), Position(line, length)), "information", RULE, message)


# -- what is rendered -----------------------------------------------------------------------


def find_stack_roots(roots: Iterable[Path]) -> list[Path]:
    """The ktl stack roots under `roots` (each stack.yaml's topmost stack directory)."""
    found: dict[Path, None] = {}
    for root in roots:
        for file in discover_stack_files(root):
            stack_root = stack_root_for(file)
            if stack_root is not None:
                found[stack_root] = None
    return list(found)


def releases_using(
    chart_dir: Path, stack_roots: Iterable[Path], files: FileSource | None = None
) -> list[dict[str, Any]]:
    """The resolved releases (`checks/stack_releases.py`) of those stacks that use the chart."""
    target = chart_dir.resolve()
    out: list[dict[str, Any]] = []
    for root in stack_roots:
        for release in stack_releases(root, files):
            chart = release.get("chart")
            if isinstance(chart, str) and "://" not in chart and Path(chart) == target:
                out.append(release)
    return out


def _label(path: Path, chart_dir: Path) -> str:
    try:
        return path.relative_to(chart_dir).as_posix()
    except ValueError:
        return str(path)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def ci_values_files(chart_dir: Path) -> list[Path]:
    ci = chart_dir / "ci"
    try:
        names = sorted(os.listdir(ci))
    except OSError:
        return []
    return [ci / n for n in names if n.endswith(("-values.yaml", "-values.yml"))]


def render_requests(
    chart_dir: Path,
    k8s_version: str | None = None,
    releases: Sequence[dict[str, Any]] = (),
    user_values: Sequence[Path] = (),
) -> list[RenderRequest]:
    """Every render of the chart (see the module's docstring), the default one first."""
    requests = [RenderRequest(chart_dir, kube_version=k8s_version, label="values.yaml")]
    for path in ci_values_files(chart_dir):
        requests.append(
            RenderRequest(
                chart_dir, (path,), kube_version=k8s_version, label=_label(path, chart_dir)
            )
        )
    for release in releases:
        requests.append(
            RenderRequest(
                chart_dir,
                tuple(Path(v) for v in release.get("values") or [] if "://" not in str(v)),
                tuple((str(k), _scalar(v)) for k, v in (release.get("set") or {}).items()),
                release=str(release.get("name") or "release-name"),
                namespace=str(release.get("namespace") or "default"),
                kube_version=k8s_version,
                label=f"stack release {release.get('name')}",
            )
        )
    for path in user_values:
        requests.append(
            RenderRequest(
                chart_dir, (path,), kube_version=k8s_version, label=_label(path, chart_dir)
            )
        )
    unique: dict[tuple[Any, ...], RenderRequest] = {}
    for request in requests:
        key = (request.values_files, request.set_values, request.release, request.namespace)
        unique.setdefault(key, request)
    return list(unique.values())
