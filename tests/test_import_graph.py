"""The package's import graph: no cycle among its modules, and the layering of docs/architecture.md.

Every ``import`` and ``from ... import`` statement counts, wherever it sits: at the top, inside a function (the
lazy imports that keep the plugin light) or under ``if TYPE_CHECKING:``. A cycle made only of lazy imports still
ties its modules into one, so none of them can be understood, moved or tested alone. Read with ``ast``, without
importing anything. Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those implicit parent edges
are not counted (a package's ``__init__`` importing its own submodules would otherwise always be a cycle).
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "pytest_accel"

#: what the plugin side is made of: devices and workloads reach none of it, directly or through another module
PLUGIN_SIDE = ("pytest_accel.plugin", "pytest_accel.hookspecs", "pytest_accel.checker", "pytest_accel.session",
               "pytest_accel.options", "pytest_accel.suite_options", "pytest_accel.workers", "pytest_accel.report",
               "pytest_accel.cli", "pytest_accel.testing")
PYTEST_ITSELF = ("pytest", "_pytest", "pluggy", "xdist", "pytest_benchmark")


@dataclass
class ImportGraph:
    """Modules of one package and, for each, what it imports: ``inside`` (modules of the package) and ``outside``
    (top-level names of everything else), each with the line of its first import statement."""

    root: Path
    files: dict[str, Path]
    inside: dict[str, dict[str, int]] = field(default_factory=dict)
    outside: dict[str, dict[str, int]] = field(default_factory=dict)

    def where(self, module: str, imported: str) -> str:
        line = self.inside[module].get(imported) or self.outside[module].get(imported)
        return f"{self.files[module].relative_to(self.root).as_posix()}:{line}"

    def reachable(self, start: str) -> dict[str, list[str]]:
        """Every module of the package that importing ``start`` can import, with a shortest chain leading to it."""
        chains = {start: [start]}
        pending = deque([start])
        while pending:
            module = pending.popleft()
            for imported in sorted(self.inside[module]):
                if imported not in chains:
                    chains[imported] = [*chains[module], imported]
                    pending.append(imported)
        return chains

    def cycle(self, among: set[str] | None = None) -> list[str] | None:
        """One import cycle among ``among`` (default: all modules), as the modules along it back to the first, or
        None when the graph restricted to them is acyclic."""
        nodes = set(self.inside) if among is None else among
        state: dict[str, str] = {}  # "open" while on the depth-first path, "done" after

        def visit(module: str, path: list[str]) -> list[str] | None:
            state[module] = "open"
            for imported in sorted(set(self.inside[module]) & nodes):
                if state.get(imported) == "open":
                    return [*path[path.index(imported):], imported]
                if imported not in state and (found := visit(imported, [*path, imported])):
                    return found
            state[module] = "done"
            return None

        for module in sorted(nodes):
            if module not in state and (found := visit(module, [module])):
                return found
        return None

    def cycles(self) -> list[list[str]]:
        """One cycle per group of modules that import each other (strongly connected component)."""
        reach = {module: set(self.reachable(module)) for module in self.inside}
        groups = {frozenset(m for m in reach[module] if module in reach[m]) for module in self.inside}
        found = (self.cycle(set(group)) for group in groups if len(group) > 1)
        return sorted(cycle for cycle in found if cycle)

    def describe(self, chain: list[str]) -> str:
        return " -> ".join(chain) + "\n" + "\n".join(
            f"  {a} imports {b} at {self.where(a, b)}" for a, b in pairwise(chain)
        )


def import_graph(package_dir: Path) -> ImportGraph:
    root = package_dir.name
    files: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    graph = ImportGraph(package_dir.parent, files)
    for module, path in files.items():
        inside: dict[str, int] = {}
        outside: dict[str, int] = {}
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                # ``from a import b`` imports the module a.b where there is one, else names defined in a
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] != root:
                    outside.setdefault(name.split(".")[0], node.lineno)
                    continue
                while name not in files:  # ``import a.b.c`` of a name defined in a.b
                    name = name.rpartition(".")[0]
                if name != module:
                    inside.setdefault(name, node.lineno)
        graph.inside[module], graph.outside[module] = inside, outside
    return graph


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return import_graph(PACKAGE)


def _under(graph: ImportGraph, prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in sorted(graph.inside) if any(m == p or m.startswith(f"{p}.") for p in prefixes)]


def test_the_package_has_no_import_cycle(graph: ImportGraph) -> None:
    cycles = graph.cycles()
    assert not cycles, "import cycles:\n" + "\n".join(graph.describe(cycle) for cycle in cycles)


def _reached(graph: ImportGraph, starts: list[str], forbidden: list[str]) -> list[str]:
    """Each forbidden module some start reaches, once, with the shortest chain from the first start to reach it."""
    found: dict[str, list[str]] = {}
    for start in starts:
        for module, chain in graph.reachable(start).items():
            if module in forbidden and len(chain) < len(found.get(module, [*chain, ""])):
                found[module] = chain
    return [graph.describe(chain) for _, chain in sorted(found.items())]


def test_devices_and_workloads_never_reach_pytest_or_the_plugin(graph: ImportGraph) -> None:
    starts = _under(graph, ("pytest_accel.devices", "pytest_accel.workloads"))
    problems = _reached(graph, starts, _under(graph, PLUGIN_SIDE))
    importing_pytest = {m: sorted(set(graph.outside[m]) & set(PYTEST_ITSELF)) for m in graph.outside}
    for module in {m for start in starts for m in graph.reachable(start)}:
        problems += [f"{module} imports {name} at {graph.where(module, name)}" for name in importing_pytest[module]]
    assert not problems, "devices and workloads import the plugin side:\n" + "\n".join(sorted(problems))


def test_devices_never_reach_workloads(graph: ImportGraph) -> None:
    problems = _reached(graph, _under(graph, ("pytest_accel.devices",)), _under(graph, ("pytest_accel.workloads",)))
    assert not problems, "devices import workloads:\n" + "\n".join(problems)


def test_the_plugin_never_knows_yolo(graph: ImportGraph) -> None:
    detection = _under(graph, ("pytest_accel.workloads.detection",))
    problems = _reached(graph, ["pytest_accel.plugin"], detection)
    assert not problems, "the plugin imports the detection workload:\n" + "\n".join(problems)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root / "pkg"


def test_a_cycle_through_lazy_and_type_checking_imports_is_found(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/a.py": "from pkg.sub import b\n",
        "pkg/sub/b.py": "def f():\n    from ..c import thing\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\nthing = 1\n",
        "pkg/d.py": "import pkg.a\nimport os.path\n",
    })
    graph = import_graph(package)
    assert graph.cycle() == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    assert "pkg.c imports pkg.a at pkg/c.py:3" in graph.describe(graph.cycle() or [])
    assert graph.cycles() == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    assert graph.cycle({"pkg.a", "pkg.sub.b", "pkg.d"}) is None
    assert graph.outside["pkg.d"] == {"os": 2}
    assert graph.reachable("pkg.d")["pkg.c"] == ["pkg.d", "pkg.a", "pkg.sub.b", "pkg.c"]
