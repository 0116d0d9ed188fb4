"""No import cycles inside tascmt.io (imports inside functions count too)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import tascmt.io

IO_DIR = Path(tascmt.io.__file__).parent


def _io_imports(path: Path) -> set[str]:
    """The tascmt.io sub-modules that ``path`` imports anywhere in its code (the package itself excluded)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative import: resolve against tascmt.io
                base = "tascmt.io" + (f".{node.module}" if node.module else "")
            else:
                base = node.module
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["tascmt", "io"] and len(parts) >= 3 and (IO_DIR / f"{parts[2]}.py").exists():
                out.add(parts[2])
    return out


def _graph() -> dict[str, set[str]]:
    return {p.stem: _io_imports(p) - {p.stem} for p in IO_DIR.glob("*.py") if p.stem != "__init__"}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_io_modules_import_one_way():
    graph = _graph()
    assert {"task", "msd", "nnunet", "folder", "task_types"} <= set(graph)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    for reader in ("msd", "nnunet", "folder"):
        assert "task" not in graph[reader], f"{reader} imports tascmt.io.task"


def test_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_public_import_paths_still_work():
    from tascmt.io import CaseRef, Task, read_task
    from tascmt.io.task import CaseRef as CaseRef2
    from tascmt.io.task import Task as Task2
    from tascmt.io.task import read_task as read_task2

    assert CaseRef is CaseRef2 and Task is Task2 and read_task is read_task2
    for name in ("msd", "nnunet", "folder", "task"):
        importlib.import_module(f"tascmt.io.{name}")
