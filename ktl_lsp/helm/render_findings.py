"""A chart's renders as findings at template lines (rule `helm-render`), shared by the editor
and `ktl-lsp check`.

- A render error lands on the template line Helm names, on the `{{ ... }}` action holding
  Helm's column; when Helm names a line of a subchart or library (files the chart author does
  not edit), it lands on the chart's own line that included it, the other lines as related
  information. The values file of the render is related information too.
- The same error from several renders is reported once, naming every render (`(render:
  values.yaml, ci/ha-values.yaml)`).
- A render cut short (time or size limit) and an error Helm places nowhere (values that do not
  parse, a Chart.yaml Helm refuses) land on Chart.yaml, or on the values file at the line the
  YAML parser names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ktl_lsp.checks.crds import CrdVersion
from ktl_lsp.checks.findings import Finding, Related, Severity, sort_findings
from ktl_lsp.checks.k8s_schemas import newest_version
from ktl_lsp.documents.positions import Position, Range
from ktl_lsp.helm.charts import (
    CHART_FILE,
    RULE,
    missing_dependencies_finding,
    read_chart,
    render_requests,
)
from ktl_lsp.helm.lint import lint_findings
from ktl_lsp.helm.model import Rendered, RenderError, RenderRequest, TemplateSpot
from ktl_lsp.helm.render import Renderer
from ktl_lsp.helm.rendered_checks import check_rendered

_YAML_LINE = re.compile(r"\byaml: line (\d+):")


@dataclass
class _Place:
    path: Path
    range: Range
    related: list[Related] = field(default_factory=list)


def _lines(path: Path, texts: Mapping[Path, str]) -> list[str]:
    text = texts.get(path)
    if text is None:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return []
    return text.splitlines()


def _action_range(lines: list[str], line: int, column: int | None) -> Range:
    """The `{{ ... }}` around `column` on `line` (the line's text without indentation when Helm
    gave no column or the column is outside an action)."""
    text = lines[line] if 0 <= line < len(lines) else ""
    if column is not None:
        start = text.rfind("{{", 0, column + 1)
        end = text.find("}}", column)
        if start >= 0 and end >= 0:
            return Range(Position(line, start), Position(line, end + 2))
        if column < len(text):
            return Range(Position(line, column), Position(line, len(text)))
    indent = len(text) - len(text.lstrip())
    return Range(Position(line, indent), Position(line, len(text)))


def _own(spot: TemplateSpot, chart_dir: Path) -> bool:
    """A text file of the chart itself (not of a subchart or library in charts/)."""
    path = chart_dir / spot.template
    return not spot.template.startswith("charts/") and path.is_file() and not _binary(path)


def _binary(path: Path) -> bool:
    """Not text an editor shows (a NUL byte, or not UTF-8): an image left in templates/."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError:
        return False
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4  # not a character cut at the end of the sample
    return False


def _place(error: RenderError, chart_dir: Path, texts: Mapping[Path, str]) -> _Place:
    chart_yaml = chart_dir / CHART_FILE
    if error.template is None or error.line is None:
        if error.values_file is not None and error.values_file.is_file():
            match = _YAML_LINE.search(error.message)
            line = int(match.group(1)) - 1 if match else 0
            lines = _lines(error.values_file, texts)
            return _Place(error.values_file, _action_range(lines, line, None))
        return _Place(chart_yaml, Range(Position(0, 0), Position(0, 0)))
    spots = [*error.via, TemplateSpot(error.template, error.line, error.column)]
    chosen = next(
        (s for s in reversed(spots) if _own(s, chart_dir)),
        next(
            (
                s
                for s in reversed(spots)
                if (chart_dir / s.template).is_file() and not _binary(chart_dir / s.template)
            ),
            None,
        ),
    )
    if chosen is None:
        where = " at ".join(f"{s.template}:{s.line + 1}" for s in spots[-1:])
        return _Place(chart_yaml, Range(Position(0, 0), Position(0, 0)), [_note(chart_yaml, where)])
    path = chart_dir / chosen.template
    place = _Place(path, _action_range(_lines(path, texts), chosen.line, chosen.column))
    for spot in spots:
        if spot == chosen:
            continue
        other = chart_dir / spot.template
        rng = _action_range(_lines(other, texts), spot.line, spot.column)
        inner = spots.index(spot) > spots.index(chosen)
        message = "fails here" if inner else "called from here"
        place.related.append(Related(rng, message, str(other)))
    return place


def _note(chart_yaml: Path, where: str) -> Related:
    return Related(Range(Position(0, 0), Position(0, 0)), f"in {where}", str(chart_yaml))


def render_findings(
    chart_dir: Path, renders: Sequence[Rendered], texts: Mapping[Path, str] | None = None
) -> dict[Path, list[Finding]]:
    """Findings of the renders' errors and cut-short renders, by file, each once."""
    texts = texts or {}
    merged: dict[tuple[Path, Range, str, str], tuple[_Place, list[str], Severity]] = {}
    for rendered in renders:
        error = rendered.error
        if error is None:
            continue
        place = _place(error, chart_dir, texts)
        if error.template is not None and _binary(chart_dir / error.template):
            error = replace(
                error,
                message=f"{error.template} is not a text file, yet Helm renders every file of "
                f"templates/ as a template (move it out, e.g. to files/): {error.message}",
            )
        severity: Severity = "warning" if rendered.cut_short else "error"
        key = (place.path, place.range, error.message, severity)
        entry = merged.setdefault(key, (place, [], severity))
        label = rendered.request.label
        if label not in entry[1]:
            entry[1].append(label)
        values_file = error.values_file
        if values_file is not None and values_file != place.path:
            note = Related(
                Range(Position(0, 0), Position(0, 0)), f"render: {label}", str(values_file)
            )
            if note not in entry[0].related:
                entry[0].related.append(note)
    out: dict[Path, list[Finding]] = {}
    for (path, rng, message, _), (place, labels, severity) in merged.items():
        text = f"{message} (render: {', '.join(labels)})"
        finding = Finding(rng, severity, RULE, text, tuple(place.related))
        out.setdefault(path, []).append(finding)
    return {p: sort_findings(f) for p, f in out.items()}


def merge_findings(*parts: Mapping[Path, Iterable[Finding]]) -> dict[Path, list[Finding]]:
    out: dict[Path, list[Finding]] = {}
    for part in parts:
        for path, findings in part.items():
            out.setdefault(path, []).extend(findings)
    return out


@dataclass
class ChartCheck:
    """What checking one chart gave: its renders and the findings by file."""

    chart_dir: Path
    renders: list[Rendered] = field(default_factory=list)
    findings: dict[Path, list[Finding]] = field(default_factory=dict)
    rendered: bool = False
    """False when the chart was not rendered (a library chart, missing dependencies, no
    renderer)."""


def chart_plan(
    chart_dir: Path,
    k8s_version: str | None,
    releases: Sequence[dict[str, Any]] = (),
    user_values: Sequence[Path] = (),
    texts: Mapping[Path, str] | None = None,
) -> tuple[list[RenderRequest], dict[Path, list[Finding]]]:
    """The renders to make for a chart, or none and the finding that says why not."""
    info = read_chart(chart_dir, texts)
    if info is None or info.is_library:
        return [], {}
    chart_yaml = chart_dir / CHART_FILE
    missing = missing_dependencies_finding(info, (texts or {}).get(chart_yaml) or _text(chart_yaml))
    if missing is not None:
        return [], {chart_yaml: [missing]}
    return render_requests(chart_dir, k8s_version, releases, user_values), {}


def _text(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def check_chart(
    chart_dir: Path,
    renderer: Renderer,
    k8s_version: str | None,
    releases: Sequence[dict[str, Any]] = (),
    user_values: Sequence[Path] = (),
) -> ChartCheck:
    """Renders the chart every way `chart_plan` says and reports what went wrong (the CLI)."""
    requests, findings = chart_plan(chart_dir, k8s_version, releases, user_values)
    result = ChartCheck(chart_dir, findings=findings)
    if not requests or not renderer.available():
        return result
    result.renders = [renderer.render_sync(r) for r in requests]
    result.rendered = True
    version = k8s_version or newest_version()
    lint = renderer.lint_sync(chart_dir, None, version)
    result.findings = merge_findings(
        findings,
        chart_findings(chart_dir, result.renders, version),
        lint_findings(chart_dir, lint or [], version),
    )
    return result


def chart_findings(
    chart_dir: Path,
    renders: Sequence[Rendered],
    k8s_version: str,
    texts: Mapping[Path, str] | None = None,
    crds: Sequence[CrdVersion] = (),
) -> dict[Path, list[Finding]]:
    """Everything the renders say about the chart's files: their errors, and the rendered
    manifests' own findings placed at the template lines that wrote them. `texts`: the
    editor's buffers, rendered in place of the files."""
    texts = texts or {}

    def read(path: Path) -> str | None:
        return texts[path] if path in texts else _text(path)

    return merge_findings(
        render_findings(chart_dir, renders, texts),
        check_rendered(chart_dir, renders, k8s_version, crds, read=read),
    )
