"""Checkers that turn parsed files into findings; nothing here imports pygls or lsprotocol.

Entry points for the server: `Workspace` (update/findings_for/outline) and, for one-shot use
such as `ktl-lsp check`, `check_paths`.

The names below load on first use: importing one small module of the package (findings,
the stack names) must not pull in every checker, which the server's start-up would pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ktl_lsp.lazy import lazy_exports

if TYPE_CHECKING:
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

__getattr__ = lazy_exports(
    __name__,
    {
        "check_paths": "ktl_lsp.checks.check_paths",
        "Finding": "ktl_lsp.checks.findings",
        "Related": "ktl_lsp.checks.findings",
        "Severity": "ktl_lsp.checks.findings",
        "in_encoding": "ktl_lsp.checks.findings",
        "sort_findings": "ktl_lsp.checks.findings",
        "UnsupportedVersionError": "ktl_lsp.checks.k8s_schemas",
        "available_versions": "ktl_lsp.checks.k8s_schemas",
        "newest_version": "ktl_lsp.checks.k8s_schemas",
        "resolve_version": "ktl_lsp.checks.k8s_schemas",
        "OutlineItem": "ktl_lsp.checks.outline",
        "RULES": "ktl_lsp.checks.rules",
        "Workspace": "ktl_lsp.checks.workspace",
    },
)


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
