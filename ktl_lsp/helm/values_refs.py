"""Rule `helm-values-ref`: `.Values` paths that templates read against the keys values files
define, in both directions.

- A template reads a path that no values file of the chart defines, without a guard ->
  warning at the reference (a typo, or a value every user must know to give).
- A leaf key of values.yaml that no template reads (nor a `tpl` string in a values file) ->
  hint, tagged unnecessary. Keys under `global` and under a subchart's name belong to other
  charts; a chart whose templates read `.Values` whole (`toYaml .Values`) reads everything.
"""

from __future__ import annotations

import re
from pathlib import Path

from ktl_lsp.checks.findings import Finding
from ktl_lsp.helm.chart_text import ChartText

CODE = "helm-values-ref"
MAX_FINDINGS = 200

#: `.Values.a.b` written in a values file's strings (rendered by `tpl`).
_TPL_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def dotted(path: tuple[str, ...]) -> str:
    return ".Values" + "".join(
        f".{k}" if k.replace("_", "a").isalnum() else f"[{k!r}]" for k in path
    )


def template_findings(path: Path, chart: ChartText) -> list[Finding]:
    """Unguarded references to undefined values in one template (code-point ranges)."""
    scan = chart.templates.get(path)
    if scan is None or chart.library or not chart.values:
        return []
    names = ", ".join(chart.names.values())
    findings: list[Finding] = []
    for ref in scan.refs:
        if ref.guarded or not ref.path or ref.path[0] == "global":
            continue
        if chart.defined(ref.path) or any(not chart.defined(t) for t in ref.tested):
            continue
        message = (
            f"{dotted(ref.path)} is not defined in {names}: give it a default there, "
            "or guard it (default, required, if, with)"
        )
        findings.append(Finding(scan.range(ref.start, ref.end), "warning", CODE, message))
        if len(findings) >= MAX_FINDINGS:
            break
    return findings


def read_paths(chart: ChartText) -> set[tuple[str, ...]]:
    """Every values path the chart's templates read, and the ones `tpl` strings in its values
    files read."""
    read = {ref.path for scan in chart.templates.values() for ref in scan.refs}
    for text in chart.value_texts.values():
        if ".Values" in text:
            read.update(tuple(m.group(1)[1:].split(".")) for m in _TPL_REF.finditer(text))
    return read


def unused_findings(path: Path, chart: ChartText) -> list[Finding]:
    """values.yaml keys that nothing reads (code-point ranges)."""
    index = chart.values.get(path)
    if index is None or path != chart.defaults or not chart.templates or chart.library:
        return []
    read = read_paths(chart)
    if () in read:
        return []
    prefixes = {r[:size] for r in read for size in range(1, len(r) + 1)}
    skip = chart.subcharts | {"global"}
    findings: list[Finding] = []
    for entry in index.leaves():
        key = entry.path
        if key[0] in skip or key in prefixes:
            continue
        if any(key[:size] in read for size in range(1, len(key))):
            continue
        message = f"{'.'.join(key)} is not read by any template of this chart"
        findings.append(Finding(entry.key_range, "hint", CODE, message, tags=("unnecessary",)))
        if len(findings) >= MAX_FINDINGS:
            break
    return findings
