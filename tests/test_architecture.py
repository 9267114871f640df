"""The house rules that keep the code easy to live in, checked on the installed package's source.

- `sdd_tui.core` (the engine) never imports the UI: not Textual, plotext, nor any of `sdd_tui` outside
  `sdd_tui.core`.
- The app (`sdd_tui.app`, its screens and widgets) and the headless printer (`sdd_tui.headless`) are two faces
  of a run: neither imports the other; what they share (the rounds table) lives in a neutral module.
- Inside the engine, each subpackage imports only from the layers before it (LAYERS), so the foundation
  (`sdd_tui/core/*.py`) imports no subpackage and the engine never reads the history or a sweep.
- No import circle between the project's modules, counting imports inside functions too (a lazy
  import that goes back where it came from is still a knot).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import sdd_tui

PACKAGES = {"sdd_tui": Path(sdd_tui.__file__).parent}
UI = ("textual", "textual_plotext", "plotext")
ENGINE = "sdd_tui.core"


@functools.cache
def module_files() -> dict[str, Path]:
    """'sdd_tui.core.history.store' -> its file, for every module of the two packages."""
    found = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(parsed(path)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:  # `from .x import f` -> sdd_tui.core.x
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


@functools.cache
def parsed(path: Path) -> ast.Module:
    """Each file parsed once for all the rules (the installed package does not change during a run)."""
    return ast.parse(path.read_text(encoding="utf-8"))


@functools.cache
def _graph() -> dict[str, frozenset[str]]:
    files = module_files()
    return {module: frozenset(imports_of(module, path, set(files))) for module, path in files.items()}


def import_graph() -> dict[str, set[str]]:
    return {module: set(names) for module, names in _graph().items()}


def is_engine(module: str) -> bool:
    return module == ENGINE or module.startswith(ENGINE + ".")


def test_core_never_imports_the_ui():
    files = module_files()
    offenders = []
    for module, path in files.items():
        if not is_engine(module):
            continue
        for node in ast.walk(parsed(path)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{module} imports {n}" for n in names if n.split(".")[0] in UI]
        offenders += [f"{module} imports {n}" for n in imports_of(module, path, set(files))
                      if not is_engine(n) and n != "sdd_tui"]
    assert not offenders, offenders


# The engine's layers, lowest first: a module imports from its own layer and the ones before it only.
LAYERS = ("", "data", "engine", "history", "runs", "analysis", "sweeps")


def layer_of(module: str) -> int | None:
    """The index in LAYERS of an engine module (`sdd_tui.core.history.store` -> 3); None outside the engine."""
    if not is_engine(module):
        return None
    parts = module.split(".")[2:]
    return LAYERS.index(parts[0]) if len(parts) > 1 or (parts and parts[0] in LAYERS) else 0


def layer_offenders(graph: dict[str, set[str]]) -> list[str]:
    return [f"{module} imports {name}" for module, names in sorted(graph.items()) for name in sorted(names)
            if layer_of(module) is not None and layer_of(name) is not None and layer_of(name) > layer_of(module)]


def test_each_engine_subpackage_imports_only_the_layers_before_it():
    graph = import_graph()
    subpackages = {module.split(".")[2] for module in graph if is_engine(module) and module.count(".") >= 3}
    assert subpackages == set(LAYERS) - {""}, "a new subpackage of sdd_tui.core needs its place in LAYERS"
    offenders = layer_offenders(graph)
    assert not offenders, offenders


def test_the_layer_rule_sees_an_import_upward():
    graph = {"sdd_tui.core.engine.experiment": {"sdd_tui.core.history.store", "sdd_tui.core.config"},
             "sdd_tui.core.config": {"sdd_tui.core.data.datasets"}, "sdd_tui.core.sweeps.sweep": {"sdd_tui.core.runs.launch"}}
    assert layer_offenders(graph) == ["sdd_tui.core.config imports sdd_tui.core.data.datasets",
                                      "sdd_tui.core.engine.experiment imports sdd_tui.core.history.store"]


def is_app(module: str) -> bool:
    return module == "sdd_tui.app" or module.startswith(("sdd_tui.screens", "sdd_tui.widgets"))


def test_the_app_and_the_headless_printer_do_not_import_each_other():
    graph = import_graph()
    assert "sdd_tui.rounds_table" in graph["sdd_tui.headless"] and "sdd_tui.rounds_table" in graph[
        "sdd_tui.screens.dashboard"]  # the rule is checked on a graph that sees both faces' imports
    offenders = [f"{module} imports {name}" for module, names in graph.items() for name in names
                 if (is_app(module) and name == "sdd_tui.headless") or (module == "sdd_tui.headless" and is_app(name))]
    assert not offenders, offenders


def test_the_engine_rule_sees_a_relative_import_of_the_ui(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("from ..headless import Printer\nfrom .ledger import Ledger\n")
    known = {"sdd_tui", "sdd_tui.headless", "sdd_tui.core", "sdd_tui.core.ledger"}
    assert imports_of("sdd_tui.core.thing", source, known) == {"sdd_tui.headless", "sdd_tui.core.ledger"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None. A package importing its own submodules is fine."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if node.startswith(target + "."):  # a submodule importing its package's __init__ (a parent)
                continue
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_there_is_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_circle_through_a_lazy_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    graph = {"sdd_tui.cli": {"sdd_tui.cli.start"}, "sdd_tui.cli.start": {"sdd_tui.cli"}}
    assert find_cycle(graph) is None  # a module may import its own package


def test_imports_are_read_from_function_bodies_too(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from .ledger import Ledger\n    import sdd_tui.headless\n")
    found = imports_of("sdd_tui.core.thing", source, {"sdd_tui.core", "sdd_tui.core.ledger", "sdd_tui", "sdd_tui.headless"})
    assert found == {"sdd_tui.core.ledger", "sdd_tui.headless"}
