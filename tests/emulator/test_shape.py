"""The emulator's shape (issue 23): its modules import one another without a cycle (function-level
imports included), and none outgrows ~700 lines. Cheap, and it keeps the split by responsibility
from growing back into one file."""

from __future__ import annotations

import ast
import os

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LINES = 700


def modules() -> dict[str, str]:
    """The emulator's own modules (not the tests), name -> source."""
    out = {}
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".py") and not name.startswith("test_") and name != "conftest.py":
            with open(os.path.join(HERE, name), encoding="utf-8") as f:
                out[name[:-3]] = f.read()
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the emulator modules it imports, at any depth of its code."""
    sources = modules()
    graph: dict[str, set[str]] = {}
    for name, source in sources.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
        graph[name] = (found & set(sources)) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                found.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back() -> None:
    graph = import_graph()
    assert {"shiftguard_emulator", "server", "state", "errors"} <= set(graph)
    assert cycles(graph) == [], "import cycles between emulator modules"
    # Nothing imports the entry point: it only starts the server.
    assert not [name for name, deps in graph.items() if "shiftguard_emulator" in deps]


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: source.count("\n") for name, source in modules().items()}
    assert not {name: lines for name, lines in sizes.items() if lines > MAX_LINES}, f"modules over {MAX_LINES} lines"
