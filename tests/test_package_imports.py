"""The package's imports form no circle, and the workflow layers sit on top.

Read from the source (ast), module-level and function-level imports alike: a function-level import
runs when its function is first called, which for a helper called at import or parse time is the
same as a module-level one, and a circle through one is one refactoring away from an import error.
A module's import of its own package (``avcmr.methods.registry`` listing the methods of
``avcmr.methods``) is no circle: Python initialises a package before its modules.
"""

import ast
from pathlib import Path

from conftest import REPO

SRC = REPO / "src"


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "avcmr").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the avcmr modules it imports (``from a import b``: module a.b if there is one, else a)."""
    known = modules()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                module = resolve(target)
                # An import of one's own package (or a parent) is no edge: it is initialised first.
                if module and module != name and not name.startswith(f"{module}."):
                    graph[name].add(module)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_another_that_imports_it_back():
    assert circles(import_graph()) == []


def test_the_reader_sees_circles_and_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    # The former circles, now broken: a function-level import counted as an edge.
    edges = import_graph()
    assert "avcmr.data.listing" in edges["avcmr.data.audioset"]
    assert "avcmr.data.manifests" not in edges["avcmr.data.audioset"]
    assert "avcmr.data.archive" not in edges["avcmr.data.folder"]
    assert "avcmr.methods.registry" in edges["avcmr.config"]  # imported inside check_method_params


def test_the_stages_and_the_workflow_helpers_are_imported_by_nothing_below_them():
    graph = import_graph()
    for name, imported in graph.items():
        for top in ("avcmr.stages", "avcmr.workflow"):
            if not name.startswith(top):
                assert not any(m == top or m.startswith(f"{top}.") for m in imported), (name, top)
