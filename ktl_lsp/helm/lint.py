"""`helm lint`'s findings as diagnostics (rule `helm-lint`): what Chart.yaml lacks or gets wrong
(`name`, `version` as SemVer, `apiVersion`, an icon), and Kubernetes APIs the rendered
objects use that are deprecated at the configured version.

Lint's other messages are left out, as other rules already say them: a template or a
Chart.yaml Helm cannot load (`helm-render`), values against `values.schema.json`
(`helm-values-schema`), and an API no longer served at the configured version (the rendered
manifests' schema check).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ktl_lsp.checks.findings import Finding, Severity, sort_findings
from ktl_lsp.documents.positions import Position, Range
from ktl_lsp.helm.model import LintMessage

RULE = "helm-lint"
CHART_FILE = "Chart.yaml"

_DEPRECATED = re.compile(
    r"^(?P<api>\S+) (?P<kind>\S+) is deprecated in v[\d.]+\+, unavailable in v(?P<gone>\d+\.\d+)"
)
_FIELD = re.compile(
    r"\b(apiVersion|name|version|appVersion|kubeVersion|type|icon|description|home|sources"
    r"|keywords|maintainers|dependencies|annotations)\b"
)
_SEVERITY: dict[int, Severity] = {1: "information", 2: "warning", 3: "warning"}


def _minor(version: str) -> tuple[int, int]:
    major, _, minor = version.lstrip("v").partition(".")
    try:
        return int(major), int(minor.split(".")[0] or 0)
    except ValueError:
        return (0, 0)


def _key_line(lines: list[str], key: str) -> int | None:
    pattern = re.compile(rf"^{re.escape(key)}\s*:")
    return next((i for i, line in enumerate(lines) if pattern.match(line)), None)


def _line_range(lines: list[str], line: int) -> Range:
    text = lines[line] if 0 <= line < len(lines) else ""
    return Range(Position(line, 0), Position(line, len(text.rstrip())))


def lint_findings(
    chart_dir: Path,
    messages: Sequence[LintMessage],
    k8s_version: str,
    read: Mapping[Path, str] | None = None,
) -> dict[Path, list[Finding]]:
    """The lint messages worth a diagnostic, by file. `read`: texts in place of the files."""
    texts = read or {}

    def lines_of(path: Path) -> list[str]:
        text = texts.get(path)
        if text is None:
            try:
                text = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
        return text.splitlines()

    out: dict[Path, list[Finding]] = {}
    fields_seen: set[str] = set()
    ordered = sorted(messages, key=lambda m: -m.severity)  # the strongest word on a field wins
    for message in ordered:
        severity = _SEVERITY.get(message.severity)
        if severity is None:
            continue
        if message.path == CHART_FILE:
            path = chart_dir / CHART_FILE
            lines = lines_of(path)
            match = _FIELD.search(message.message)
            field = match.group(1) if match else ""
            if field in fields_seen:
                continue  # "not a valid SemVer" and "not a valid SemVerV2" say one thing
            fields_seen.add(field)
            line = _key_line(lines, field) if field else None
            rng = _line_range(lines, line if line is not None else 0)
            text = message.message
        else:
            deprecated = _DEPRECATED.match(message.message)
            if deprecated is None or not message.path.startswith("templates/"):
                continue
            if _minor(k8s_version) >= _minor(deprecated.group("gone")):
                continue  # removed: the schema check reports the unknown apiVersion
            path = chart_dir / message.path
            lines = lines_of(path)
            api = re.escape(deprecated.group("api"))
            where = re.compile(rf"^\s*apiVersion\s*:\s*[\"']?{api}[\"']?\s*$")
            line = next((i for i, t in enumerate(lines) if where.match(t)), 0)
            rng = _line_range(lines, line)
            text = message.message
        tags = ("deprecated",) if path.name != CHART_FILE else ()
        finding = Finding(rng, severity, RULE, text, tags=tags)
        found = out.setdefault(path, [])
        if finding not in found:
            found.append(finding)
    return {p: sort_findings(f) for p, f in out.items()}
