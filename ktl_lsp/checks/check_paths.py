"""One-shot checking of files and directories (for `ktl-lsp check` and scripts)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ktl_lsp.checks.findings import Finding
from ktl_lsp.checks.workspace import Workspace, walk_files
from ktl_lsp.documents.positions import PositionEncoding


def check_paths(
    paths: Iterable[Path | str],
    k8s_version: str | None = None,
    encoding: PositionEncoding = "utf-16",
) -> dict[Path, list[Finding]]:
    """Findings for every checkable file under `paths` (files given explicitly always count).

    All files are loaded before any is checked, so CRDs, duplicates and stacks see each other.
    Raises UnsupportedVersionError for an unknown Kubernetes version.
    """
    workspace = Workspace(k8s_version)
    targets: list[Path] = []
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_dir():
            for file in walk_files(path):
                targets.append(file)
        else:
            targets.append(path)
    ordered = list(dict.fromkeys(targets))
    for path in ordered:
        workspace.load(path)
    return {path: workspace.findings_for(path, encoding) for path in ordered}


def display_path(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when it is under it, else as it is."""
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def findings_json(results: dict[Path, list[Finding]], cwd: Path) -> list[dict[str, Any]]:
    """``ktl-lsp check --format json``'s findings (0-based positions, paths shown from ``cwd``)."""
    return [
        f.to_json(display_path(path, cwd)) for path, findings in results.items() for f in findings
    ]
