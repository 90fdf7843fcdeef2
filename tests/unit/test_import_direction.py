"""Imports flow one way (docs/design.md): `cli -> commands -> {driver, worker, report, export} ->
{ga, train, store, metrics, config}`. The import graph is read from the source with `ast`, lazy
imports inside functions included, so a test fails on the first arrow against the direction."""

from __future__ import annotations

import ast
from pathlib import Path

import nascli

PACKAGE = Path(nascli.__file__).resolve().parent
# The only modules allowed to import nascli.commands: the commands themselves and the CLI entry.
ABOVE_COMMANDS = ("nascli.cli", "nascli.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The nascli modules `name` imports anywhere in its source (`from X import y` counts X.y when
    that is a module, else X)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined by `base` itself
                found.add(base)
    return {imported for imported in found if imported in known}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def is_command(name: str) -> bool:
    return name == "nascli.commands" or name.startswith("nascli.commands.")


def cycles(graph: dict[str, set[str]], within: str) -> list[list[str]]:
    """Strongly connected groups of more than one module among the modules under `within`."""
    nodes = [name for name in graph if name == within or name.startswith(within + ".")]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in nodes:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return groups


def test_the_graph_sees_lazy_and_package_imports():
    graph = import_graph()
    assert "nascli.store.notify" in graph["nascli.driver.step"]  # imported inside Driver.drive
    assert "nascli.commands.common" in graph["nascli.commands.report"]  # `from nascli.commands import common`
    assert "nascli.ga.cost" in graph["nascli.ga.genome"]


def test_nothing_below_commands_imports_a_command():
    graph = import_graph()
    upward = sorted((name, target) for name, targets in graph.items() for target in targets
                    if is_command(target) and not is_command(name) and name not in ABOVE_COMMANDS)
    assert upward == [], "modules below nascli/commands/ import it: move what they need down"


def test_the_pure_core_has_no_import_cycle():
    # the genome parser uses the cost model, which uses the genome specs: never back
    assert cycles(import_graph(), "nascli.ga") == []


def test_the_driver_ranks_with_nascli_metrics():
    # one ranking rule for the driver, the report and the store: nascli.metrics.Ranking
    sources = {name: path for name, path in modules().items() if name.startswith("nascli.driver")}
    assert sources, "nascli/driver/ not found"
    ranking_from = {node.module for path in sources.values()
                    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.ImportFrom) and any(alias.name == "Ranking" for alias in node.names)}
    assert ranking_from == {"nascli.metrics"}
