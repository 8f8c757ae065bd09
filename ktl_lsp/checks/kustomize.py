"""Kustomizations of the workspace: which files are patches, and which files one
kustomization applies together (its `resources`, through directories to their
kustomizations).

Only what the checks need is read: local paths, never remote bases or inline patches.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.yaml_nodes import get, scalar_text
from ktl_lsp.documents.yaml_parse import ParsedText

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
RESOURCE_KEYS = ("resources", "bases", "components")


class PatchKind(StrEnum):
    STRATEGIC = "strategic"
    """A partial object (`patchesStrategicMerge:`, or a file under `patches:`)."""
    JSON6902 = "json6902"
    """A list of `op:` operations (`patchesJson6902:`): no object at all."""


@dataclass(frozen=True, slots=True)
class Kustomization:
    path: Path
    resources: tuple[Path, ...]
    """Files and directories, absolute and normalised."""
    patches: tuple[tuple[Path, PatchKind], ...]

    @property
    def directory(self) -> Path:
        return self.path.parent


def is_kustomization(path: Path) -> bool:
    return path.name in KUSTOMIZATION_NAMES


def read_kustomization(path: Path, parsed: ParsedText) -> Kustomization | None:
    """The local resources and patch files a kustomization names (None when it is no mapping)."""
    root = parsed.documents[0].root if parsed.documents else None
    if not isinstance(root, MappingNode):
        return None
    base = path.parent
    resources = tuple(p for key in RESOURCE_KEYS for p in _paths(base, _strings(get(root, key))))
    patches: list[tuple[Path, PatchKind]] = []
    for text in _strings(get(root, "patchesStrategicMerge")):
        if "\n" not in text:  # else an inline patch
            patches.extend((p, PatchKind.STRATEGIC) for p in _paths(base, [text]))
    for key, kind in (("patches", PatchKind.STRATEGIC), ("patchesJson6902", PatchKind.JSON6902)):
        entries = get(root, key)
        if not isinstance(entries, SequenceNode):
            continue
        for entry in entries.value:
            named = scalar_text(get(entry, "path") if isinstance(entry, MappingNode) else entry)
            if named:
                patches.extend((p, kind) for p in _paths(base, [named]))
    return Kustomization(path, resources, tuple(patches))


def _strings(node: Node | None) -> list[str]:
    if not isinstance(node, SequenceNode):
        return []
    return [str(n.value) for n in node.value if isinstance(n, ScalarNode) and n.value]


def _paths(base: Path, entries: Iterable[str]) -> Iterable[Path]:
    for entry in entries:
        if "://" in entry or entry.startswith(("git@", "github.com/")) or "?ref=" in entry:
            continue  # a remote base
        yield Path(os.path.normpath(base / entry))


class KustomizeIndex:
    """Patches and apply units from every kustomization of a workspace (built once per change
    of a kustomization file; lookups are dictionary reads)."""

    def __init__(self, kustomizations: Iterable[Kustomization]) -> None:
        self._by_dir: dict[Path, Kustomization] = {}
        self.patches: dict[Path, PatchKind] = {}
        for k in sorted(kustomizations, key=lambda k: k.path):
            self._by_dir.setdefault(k.directory, k)
            for path, kind in k.patches:
                self.patches.setdefault(path, kind)
        self._members: dict[Path, frozenset[Path]] | None = None

    def has_kustomization(self, directory: Path) -> bool:
        return directory in self._by_dir

    def kustomizations_applying(self, path: Path) -> frozenset[Path]:
        """The kustomization files whose resources (followed through directories) hold `path`."""
        if self._members is None:
            members: dict[Path, set[Path]] = {}
            for k in self._by_dir.values():
                for file in self._closure(k, set()):
                    members.setdefault(file, set()).add(k.path)
            self._members = {p: frozenset(s) for p, s in members.items()}
        return self._members.get(path, frozenset())

    def _closure(self, k: Kustomization, seen: set[Path]) -> set[Path]:
        seen.add(k.directory)
        files: set[Path] = set()
        for resource in k.resources:
            nested = self._by_dir.get(resource)
            if nested is None:
                files.add(resource)
            elif resource not in seen:
                files |= self._closure(nested, seen)
        return files
