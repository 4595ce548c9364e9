"""The house rules that keep the code easy to find: no import cycles in ``integration_service``
and ``workers``, and no module over 450 lines.

The import graph is read from the source with ``ast`` (nothing is imported): every import
statement anywhere in a module counts, at module level, inside a function (a lazy import) or
under ``if TYPE_CHECKING:``, because each one still ties the two modules together. Relative
imports are resolved against the importing module's package. ``from package import name`` is an
edge to ``package.name`` when that is a module, else to ``package``. Importing a submodule does
run its package's ``__init__``, but that is not counted as an edge: a package's ``__init__`` that
re-exports its submodules would otherwise be "in a cycle" with each of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("integration_service", "workers")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the checked packages."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The checked modules that ``module`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    targets: set[str] = set()

    def add(name: str) -> None:
        # The longest known prefix: ``import a.b.c`` of a function ``c`` in module ``a.b``.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.add(name)

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                add(candidate if candidate in known else base)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imported(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a sorted
    list; a module importing itself counts too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{source} -> {target}" for source in component for target in sorted(graph[source] & members)]
    return "cycle: " + ", ".join(component) + "\n    " + "\n    ".join(edges)


def test_the_graph_sees_every_kind_of_import():
    """The checker itself: relative, lazy and TYPE_CHECKING imports are all edges."""
    graph = import_graph()
    assert "integration_service.extensions" in graph["integration_service.models"]  # from .extensions import db
    assert "integration_service.sync.jobs" in graph["integration_service.sync.schedule"]  # from . import jobs
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_describe(component, graph) for component in found)


def test_no_module_over_450_lines():
    too_long = {
        name: count for name, path in _modules().items() if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: " + ", ".join(
        f"{name} ({count})" for name, count in sorted(too_long.items())
    )
