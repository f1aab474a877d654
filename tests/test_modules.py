"""The house rules the package keeps: no module over 300 lines (gradcam/ and bench/), and no import
cycle between its modules, lazy and type-only imports included."""

import ast
from pathlib import Path

from tests.helpers import ROOT

MAX_LINES = 300


def _module(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def imports(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports, wherever the import stands."""
    files = {_module(p, root): p for p in (root / package).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every module that can reach itself, with the path back: one cycle per module on one."""
    found = []
    for start in sorted(graph):
        seen, stack = set(), [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append([*path, start])
                    stack = []
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def test_no_module_is_over_300_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for folder in ("gradcam", "bench")
        for p in (ROOT / folder).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_cycle_in_the_package():
    graph = imports(ROOT, "gradcam")
    assert len(graph) > 40 and "gradcam.engine.model" in graph["gradcam.engine.twin_model"]
    assert cycles(graph) == []


def test_a_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"]]
