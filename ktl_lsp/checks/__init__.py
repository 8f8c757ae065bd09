"""Checkers that turn parsed files into findings; nothing here imports pygls or lsprotocol.

Entry points for the server: `Workspace` (update/findings_for/outline) and, for one-shot use
such as `ktl-lsp check`, `check_paths`.
"""

from ktl_lsp.checks.check_paths import check_paths
from ktl_lsp.checks.findings import Finding, Related, Severity, in_encoding, sort_findings
from ktl_lsp.checks.k8s_schemas import (
    UnsupportedVersionError,
    available_versions,
    newest_version,
    resolve_version,
)
from ktl_lsp.checks.outline import OutlineItem
from ktl_lsp.checks.rules import RULES
from ktl_lsp.checks.workspace import Workspace

__all__ = [
    "RULES",
    "Finding",
    "OutlineItem",
    "Related",
    "Severity",
    "UnsupportedVersionError",
    "Workspace",
    "available_versions",
    "check_paths",
    "in_encoding",
    "newest_version",
    "resolve_version",
    "sort_findings",
]
