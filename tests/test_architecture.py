"""The package's layering, read from its source: what may import what, and no import cycles.

Imports are found with ``ast`` anywhere in a module, inside functions too (an import hidden in a
function still ties two modules together); only ``if TYPE_CHECKING:`` blocks are left out, since
they never run. docs/architecture.md draws the layers these tests hold.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ktl_lsp"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found.update(id(n) for n in ast.walk(node))
    return found


def _imports() -> dict[str, set[str]]:
    """Module -> every module name it imports at run time (ours and others', unresolved).

    ``from pkg import sub`` of a submodule counts as importing ``sub`` only: the package's
    ``__init__`` runs either way, like for every import of one of its modules.
    """
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    out: dict[str, set[str]] = {}
    for path in paths:
        name = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".")
                    if path.name != "__init__.py":
                        package.pop()
                    package = package[: len(package) - node.level + 1]
                    base = ".".join([*package, base] if base else package)
                names = [f"{base}.{a.name}" for a in node.names]
                found.update(names)
                if not all(n in modules for n in names):
                    found.add(base)
        out[name] = found
    return out


IMPORTS = _imports()


def _ours(name: str) -> str | None:
    """The module of ours that ``name`` is, or is in (``a.b.Class`` -> ``a.b``)."""
    while name and name not in IMPORTS:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    return {
        module: {m for n in names if (m := _ours(n)) is not None and m != module}
        for module, names in IMPORTS.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_reader_sees_the_whole_package() -> None:
    assert "ktl_lsp.lsp.server" in IMPORTS and "ktl_lsp.sessions.manager" in IMPORTS
    assert "ktl_lsp.sessions.manager" in _graph()["ktl_lsp.lsp.runs"]


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


#: Packages that never know the editor: they must work the same from the CLI, the gateway and
#: the language server (checkers return findings; runners emit frames).
EDITOR_FREE = (
    "checks",
    "documents",
    "helm",
    "k8s",
    "orchestration",
    "pty",
    "sessions",
    "gateway",
    "agents",
    "host",
)


@pytest.mark.parametrize("package", EDITOR_FREE)
def test_core_packages_never_import_the_language_server(package: str) -> None:
    offenders = {
        module: sorted(
            n for n in names if n.split(".")[0] in ("pygls", "lsprotocol") or "ktl_lsp.lsp" in n
        )
        for module, names in IMPORTS.items()
        if module.startswith(f"ktl_lsp.{package}")
    }
    assert {m: n for m, n in offenders.items() if n} == {}


def test_only_the_sessions_core_touches_the_store() -> None:
    """The session manager is the one door to the store: nothing else reads or writes it (where
    the store lives by default is not the store)."""
    store = "ktl_lsp.sessions.store"
    allowed = {store, f"{store}.default_store_path"}  # the module itself: named by a from-import
    offenders = sorted(
        (module, name)
        for module, names in IMPORTS.items()
        for name in names
        if _ours(name) == store
        and name not in allowed
        and not module.startswith("ktl_lsp.sessions")
    )
    assert offenders == []
    users = {m for m, names in IMPORTS.items() if store in names and not m.startswith(store[:16])}
    assert users <= {"ktl_lsp.cli.main"}  # for default_store_path, and nothing else


def _handlers() -> list[tuple[str, int]]:
    """(feature method, length in lines) for each command and LSP handler."""
    out = []
    for path in sorted((PACKAGE / "lsp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            marks = [ast.unparse(d) for d in node.decorator_list]
            if any(m.startswith(("command(", "handles(")) for m in marks):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                out.append((f"{path.name}:{node.name}", length))
    return out


def test_handlers_are_thin() -> None:
    handlers = _handlers()
    assert len(handlers) >= 40  # every command and LSP method is a marked feature method
    assert [(name, n) for name, n in handlers if n > 36] == []
