"""A chart's template and values texts, scanned: what editing features and the values checks
read. Built per request from the texts at hand (editor buffers first, then the disk), each
file's scan cached by its text, so a request on a 40-template chart costs a directory listing
and dictionary look-ups.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ktl_lsp.documents.file_reading import read_text_file
from ktl_lsp.helm.templates import TemplateScan, scan_cached
from ktl_lsp.helm.values import ValuesIndex, index_cached

#: Texts the caller holds (editor buffers); None sends the look-up to the disk.
HeldText = Callable[[Path], str | None]

TEMPLATE_SUFFIXES = (".yaml", ".yml", ".tpl", ".txt", ".json")
MAX_TEMPLATES = 2000


def chart_root_of(path: Path) -> Path | None:
    """The chart a template or values file belongs to (the directory holding Chart.yaml)."""
    if path.parent.joinpath("Chart.yaml").is_file():
        return path.parent
    for parent in path.parents:
        if parent.name == "templates" and parent.parent.joinpath("Chart.yaml").is_file():
            return parent.parent
    return None


def is_values_name(name: str) -> bool:
    return name.startswith("values") and name.endswith((".yaml", ".yml"))


@dataclass
class ChartText:
    root: Path
    templates: dict[Path, TemplateScan]
    values: dict[Path, ValuesIndex]
    """values.yaml first, then the other values files (values-*.yaml, ci/*.yaml)."""
    value_texts: dict[Path, str]
    schema_text: str | None
    subcharts: frozenset[str]
    library: bool = False
    parent_values: dict[str, ValuesIndex] = field(default_factory=dict)
    """For a chart under another chart's charts/: the parent's values, by the key it uses."""

    defaults: Path = field(init=False)
    names: dict[Path, str] = field(init=False)
    """Values files as the user knows them (`values.yaml`, `ci/x-values.yaml`)."""

    def __post_init__(self) -> None:
        self.defaults = self.root / "values.yaml"
        self.names = {p: p.relative_to(self.root).as_posix() for p in self.values}

    def defined(self, path: tuple[str, ...]) -> bool:
        if any(index.defines(path) for index in self.values.values()):
            return True
        return any(index.defines((key, *path)) for key, index in self.parent_values.items())


_DISK: dict[Path, tuple[int, int, str | None]] = {}
_DISK_LOCK = threading.Lock()


def disk_text(path: Path) -> str | None:
    """A file's text, re-read only when its size or modification time changed."""
    try:
        stat = path.stat()
    except OSError:
        return None
    with _DISK_LOCK:
        cached = _DISK.get(path)
    if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    text = read_text_file(path).text
    with _DISK_LOCK:
        if len(_DISK) > 20_000:
            _DISK.clear()
        _DISK[path] = (stat.st_mtime_ns, stat.st_size, text)
    return text


def _text(path: Path, held: HeldText) -> str | None:
    text = held(path)
    return text if text is not None else disk_text(path)


def template_files(root: Path, extra: Iterable[Path] = ()) -> list[Path]:
    """Files under templates/ (the disk's, plus buffers not saved yet)."""
    found: set[Path] = set()
    base = root / "templates"
    for directory, dirs, files in os.walk(base):
        dirs.sort()
        for name in files:
            if name.endswith(TEMPLATE_SUFFIXES):
                found.add(Path(directory) / name)
        if len(found) > MAX_TEMPLATES:
            break
    found.update(p for p in extra if base in p.parents)
    return sorted(found)


def values_files(root: Path, extra: Iterable[Path] = ()) -> list[Path]:
    found = {root / n for n in _names(root) if is_values_name(n)}
    ci = root / "ci"
    found.update(ci / n for n in _names(ci) if n.endswith((".yaml", ".yml")))
    found.update(
        p for p in extra if (p.parent == root and is_values_name(p.name)) or p.parent == ci
    )
    default = root / "values.yaml"
    return sorted(found, key=lambda p: (p != default, str(p)))


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _subcharts(root: Path, dependencies: frozenset[str]) -> frozenset[str]:
    names = {
        Path(n).name.rsplit("-", 1)[0] if n.endswith(".tgz") else n for n in _names(root / "charts")
    }
    return dependencies | names


_DEFINITIONS: dict[str, tuple[frozenset[str], bool]] = {}


def _definition(text: str | None) -> tuple[frozenset[str], bool]:
    """The dependencies' names and aliases, and whether it is a library chart, of a
    Chart.yaml text (remembered per text: charts carry long annotations)."""
    if not text:
        return frozenset(), False
    found = _DEFINITIONS.get(text)
    if found is not None:
        return found
    import yaml

    try:
        chart = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError):
        chart = None
    names: set[str] = set()
    library = False
    if isinstance(chart, dict):
        library = chart.get("type") == "library"
        for dep in chart.get("dependencies") or []:
            if isinstance(dep, dict):
                names.update(dep[k] for k in ("name", "alias") if isinstance(dep.get(k), str))
    found = frozenset(names), library
    with _DISK_LOCK:
        if len(_DEFINITIONS) > 256:
            _DEFINITIONS.clear()
        _DEFINITIONS[text] = found
    return found


def chart_text(root: Path, held: HeldText, extra: Iterable[Path] = ()) -> ChartText:
    """The chart at `root` as the editor sees it; never raises for bad file content."""
    extra = list(extra)
    templates: dict[Path, TemplateScan] = {}
    for path in template_files(root, extra):
        text = _text(path, held)
        if text is not None:
            templates[path] = scan_cached(text)
    values: dict[Path, ValuesIndex] = {}
    value_texts: dict[Path, str] = {}
    for path in values_files(root, extra):
        text = _text(path, held)
        if text is not None:
            value_texts[path] = text
            values[path] = index_cached(text)
    dependencies, library = _definition(_text(root / "Chart.yaml", held))
    parent_values: dict[str, ValuesIndex] = {}
    if root.parent.name == "charts" and root.parent.parent.joinpath("Chart.yaml").is_file():
        parent_text = _text(root.parent.parent / "values.yaml", held)
        if parent_text is not None:
            parent_values[root.name] = index_cached(parent_text)
    return ChartText(
        root,
        templates,
        values,
        value_texts,
        _text(root / "values.schema.json", held),
        _subcharts(root, dependencies),
        library,
        parent_values,
    )
