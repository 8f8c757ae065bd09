"""What a file is, from its path and (cheaply) its text, so each kind gets the right checks.

The editor and `ktl-lsp check` use this one function, so both report the same things.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path


class FileKind(StrEnum):
    K8S_MANIFEST = "k8s-manifest"
    HELM_TEMPLATE = "helm-template"
    HELM_VALUES = "helm-values"
    HELM_CHART = "helm-chart"
    KTL_STACK = "ktl-stack"
    KTL_RELEASE = "ktl-release"
    KTL_CONFIG = "ktl-config"
    PLAN = "plan"
    OTHER = "other"


YAML_SUFFIXES = (".yaml", ".yml")
PLAN_NAMES = ("ktl-plan.yaml", "ktl-plan.yml")
PLAN_SUFFIXES = (".plan.yaml", ".plan.yml", ".plan.json")
KTL_CONFIG_NAMES = (".ktl.yaml", ".ktl.yml")
NOT_MANIFEST_NAMES = frozenset(
    {"kustomization.yaml", "kustomization.yml", "Kustomization", "Chart.lock"}
)

# Go-template actions that mark a Helm template (not `{{ $labels.x }}` inside a quoted string,
# which Prometheus rules and Argo workflows legitimately carry).
_TEMPLATE_ACTION = re.compile(
    r"\{\{-?\s*(?:-|/\*|\.Values\b|\.Release\b|\.Chart\b|\.Capabilities\b|\.Files\b|"
    r"\.Template\b|include\b|template\b|if\b|else\b|end\b|range\b|with\b|define\b|toYaml\b|"
    r"tpl\b|required\b|printf\b|block\b)"
)
_UNQUOTED_TEMPLATE = re.compile(r"^[^#\n'\"]*?(?::|-)[ \t]+\{\{", re.MULTILINE)
_TOP_API_VERSION = re.compile(r"^apiVersion:[ \t]*['\"]?([^\s'\"#]+)", re.MULTILINE)


def looks_like_helm_template(text: str) -> bool:
    """Go-template syntax that YAML parsers would choke on or misread."""
    if "{{" not in text:
        return False
    return bool(_TEMPLATE_ACTION.search(text) or _UNQUOTED_TEMPLATE.search(text))


def _is_ktl_document(text: str | None) -> bool:
    """A stack.yaml/release.yaml is ktl's unless it declares a non-ktl apiVersion."""
    if text is None:
        return True
    match = _TOP_API_VERSION.search(text)
    return match is None or match.group(1).startswith("ktl.dev/")


def _values_file(name: str) -> bool:
    return name.startswith("values") and name.endswith(YAML_SUFFIXES)


CI_VALUES_SUFFIXES = ("-values.yaml", "-values.yml")


def is_ci_values(path: Path) -> bool:
    """chart-testing's `ci/*-values.yaml` of a chart: values for one more render, not a
    manifest (`ct lint` renders the chart once per file)."""
    return (
        path.parent.name == "ci"
        and path.name.endswith(CI_VALUES_SUFFIXES)
        and (path.parent.parent / "Chart.yaml").is_file()
    )


def values_chart_dir(path: Path) -> Path:
    """The chart a values file belongs to (its directory, or the chart above `ci/`)."""
    return path.parent.parent if is_ci_values(path) else path.parent


def detect_file_kind(path: Path, text: str | None = None) -> FileKind:
    """The kind of a file; `text` refines YAML files (Helm templates, non-ktl stack.yaml)."""
    name = path.name
    if name in KTL_CONFIG_NAMES:
        return FileKind.KTL_CONFIG
    if name in PLAN_NAMES or name.endswith(PLAN_SUFFIXES):
        return FileKind.PLAN
    if name == "Chart.yaml":
        return FileKind.HELM_CHART
    if _helpers_file(path):
        return FileKind.HELM_TEMPLATE
    if not name.endswith(YAML_SUFFIXES):
        return FileKind.OTHER
    if "templates" in path.parts[:-1]:
        return FileKind.HELM_TEMPLATE
    if is_ci_values(path):
        return FileKind.HELM_VALUES
    values = _values_file(name) and (path.parent / "Chart.yaml").is_file()
    if values and (text is None or not _UNQUOTED_TEMPLATE.search(text)):
        return FileKind.HELM_VALUES  # `{{ }}` in its strings are for `tpl`
    if text is not None and looks_like_helm_template(text):
        return FileKind.HELM_TEMPLATE
    if name in ("stack.yaml", "stack.yml") and _is_ktl_document(text):
        return FileKind.KTL_STACK
    if name in ("release.yaml", "release.yml") and _is_ktl_document(text):
        return FileKind.KTL_RELEASE
    if name in NOT_MANIFEST_NAMES:
        return FileKind.OTHER
    return FileKind.K8S_MANIFEST


def _helpers_file(path: Path) -> bool:
    """A chart's named-template file (`templates/_helpers.tpl`)."""
    return path.name.endswith(".tpl") and "templates" in path.parts[:-1]


def is_checkable_name(path: Path) -> bool:
    """Files a directory walk picks up (the same ones the editor would check)."""
    name = path.name
    return (
        name.endswith(YAML_SUFFIXES)
        or _helpers_file(path)
        or name.endswith(PLAN_SUFFIXES)
        or name in PLAN_NAMES
        or name in KTL_CONFIG_NAMES
    )
