"""ktl stack releases after inheritance: each release's chart, values, set, namespace and cluster
as `ktl stack plan` resolves them (root to leaf: each level's `defaults`, the active profile's
`defaults`, then the release; `values` and `tags` appended, `set` merged, the rest replaced).

Shared by stack plans (`orchestration/stack.py`) and the Helm renders of the charts the
releases use (`helm/charts.py`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ktl_lsp.checks.stack_graph import FileSource, discover_stack_files
from ktl_lsp.checks.stack_shapes import RELEASE_NAMES, STACK_NAMES
from ktl_lsp.documents.yaml_parse import ParsedText, parse_text


class StackFiles:
    """Parsed stack files, read from disk once (the checks' ``FileSource``)."""

    def __init__(self) -> None:
        self.parsed: dict[Path, ParsedText | None] = {}

    def parsed_of(self, path: Path) -> ParsedText | None:
        if path not in self.parsed:
            try:
                self.parsed[path] = parse_text(path.read_text("utf-8"))
            except (OSError, UnicodeDecodeError):
                self.parsed[path] = None
        return self.parsed[path]


def first_mapping(files: FileSource, path: Path) -> dict[str, Any]:
    parsed = files.parsed_of(path)
    if parsed is None:
        return {}
    try:
        found = next(iter(yaml.safe_load_all(parsed.text)), None)
    except yaml.YAMLError:
        return {}
    return found if isinstance(found, dict) else {}


def root_file(root: Path) -> Path:
    for name in STACK_NAMES:
        if (root / name).is_file():
            return root / name
    return root / "stack.yaml"


def _overlay(acc: dict[str, Any], layer: dict[str, Any], base: Path) -> None:
    """ktl's inheritance: scalars deeper wins, values/tags appended, set merged."""
    for key, value in layer.items():
        if key == "values":
            acc["values"] = [*acc.get("values", []), *(_path(base, v) for v in value or [])]
        elif key == "tags":
            acc["tags"] = [*acc.get("tags", []), *(str(v) for v in value or [])]
        elif key == "set":
            acc["set"] = {**acc.get("set", {}), **(value or {})}
        elif key == "cluster" and isinstance(value, dict):
            cluster = {**acc.get("cluster", {}), **value}
            if value.get("kubeconfig"):
                cluster["kubeconfig"] = os.path.expanduser(str(value["kubeconfig"]))
            acc["cluster"] = cluster
        elif key == "chart" and isinstance(value, str):
            acc["chart"] = value if "://" in value else _path(base, value)
        else:
            acc[key] = value


def _path(base: Path, value: Any) -> str:
    text = os.path.expanduser(str(value))
    if "://" in text:
        return text
    return str((base / text).resolve())


def resolve_releases(
    root: Path,
    files: FileSource,
    found: list[Path],
    root_data: dict[str, Any],
    profile: str | None,
) -> list[dict[str, Any]]:
    layers: dict[Path, list[tuple[dict[str, Any], Path]]] = {}

    def chain(directory: Path) -> list[tuple[dict[str, Any], Path]]:
        if directory in layers:
            return layers[directory]
        parent = (
            [] if directory == root or directory == directory.parent else chain(directory.parent)
        )
        own: list[tuple[dict[str, Any], Path]] = []
        for name in STACK_NAMES:
            if (directory / name) in found:
                data = first_mapping(files, directory / name)
                own.append((data.get("defaults") or {}, directory))
                if directory == root and profile:
                    prof = (root_data.get("profiles") or {}).get(profile) or {}
                    own.append((prof.get("defaults") or {}, directory))
        layers[directory] = result = parent + own
        return result

    out: list[dict[str, Any]] = []
    for file in found:
        data = first_mapping(files, file)
        if file.name in STACK_NAMES:
            entries = [e for e in data.get("releases") or [] if isinstance(e, dict)]
        elif file.name in RELEASE_NAMES:
            entries = [data]
        else:  # pragma: no cover - discovery only finds those
            entries = []
        for entry in entries:
            acc: dict[str, Any] = {}
            for layer, base in chain(file.parent):
                _overlay(acc, layer, base)
            _overlay(
                acc,
                {k: v for k, v in entry.items() if k not in ("apiVersion", "kind")},
                file.parent,
            )
            cluster = acc.get("cluster") or {}
            release = {
                **acc,
                "name": str(acc.get("name")),
                "cluster": str(cluster.get("name") or ""),
                "kubeconfig": cluster.get("kubeconfig"),
                "context": cluster.get("context"),
                "namespace": str(acc.get("namespace") or "default"),
                "needs": [str(n) for n in acc.get("needs") or []],
                "dir": str(file.parent),
                "file": str(file),
            }
            release["id"] = f"{release['cluster']}/{release['namespace']}/{release['name']}"
            out.append(release)
    return out


def stack_releases(
    root: Path, files: FileSource | None = None, profile: str | None = None
) -> list[dict[str, Any]]:
    """Every release of the stack rooted at `root`, resolved (`profile`: else the root's
    `defaultProfile`)."""
    source = files if files is not None else StackFiles()
    root_data = first_mapping(source, root_file(root))
    profile = profile or root_data.get("defaultProfile")
    found = discover_stack_files(root)
    return resolve_releases(root, source, found, root_data, profile)
