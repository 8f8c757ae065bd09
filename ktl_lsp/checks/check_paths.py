"""One-shot checking of files and directories (for `ktl-lsp check` and scripts)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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
