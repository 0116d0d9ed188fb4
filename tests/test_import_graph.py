"""The package imports cleanly from any entry point and its modules import one way.

- Every module is imported *first*, each in a fresh process: a parent that has torch, numpy and monai (and a
  few other third-party libraries) loaded but no ``tascmt`` module forks one child per module.
- No import cycle between the package's modules: the import statements of every module are read with
  ``ast`` (inside functions and under ``TYPE_CHECKING`` too) and the graph's strongly connected components
  must all be single modules.
- The stages import each other in the directions docs/design.md §1 states.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tascmt

PACKAGE = "tascmt"
PACKAGE_DIR = Path(tascmt.__file__).resolve().parent
SRC_DIR = PACKAGE_DIR.parent


# ----------------------------------------------------------------------------------------- the module graph
def module_files(root: Path = PACKAGE_DIR) -> dict[str, tuple[Path, bool]]:
    """``{module name: (file, is_package)}`` for every ``.py`` file of the package under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved against ``module``)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, modules: dict) -> str | None:
    """``name`` or its nearest enclosing module that is one of ``modules`` (None outside the package)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in modules else None


def imported_modules(module: str, source: str, is_package: bool, modules: dict) -> set[str]:
    """The package modules that running ``source`` (the code of ``module``) can import.

    Every ``import`` / ``from ... import`` anywhere in the file counts (module level, inside functions, under
    ``TYPE_CHECKING``). ``from pkg import name`` imports ``pkg.name`` when that is a module, else ``pkg``.
    Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` and ``a``, so those count as well, except the
    importing module's own ancestors (already running when it runs). A package ``__init__`` importing its own
    submodules is not counted.
    """
    targets: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    out: set[str] = set()
    for target in targets:
        name = _known(target, modules)
        while name:
            own_ancestor = module.startswith(name + ".")
            own_submodule = is_package and name.startswith(module + ".")
            if name != module and not own_ancestor and not own_submodule:
                out.add(name)
            name = name.rsplit(".", 1)[0] if "." in name else None
    return out


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """``{module: the package modules it imports}`` for the package under ``root``."""
    modules = module_files(root)
    return {m: imported_modules(m, path.read_text(encoding="utf-8"), is_pkg, modules)
            for m, (path, is_pkg) in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted; [] when acyclic."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def _describe(graph: dict[str, set[str]], component: list[str]) -> str:
    members = set(component)
    edges = [f"    {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "cycle between " + ", ".join(component) + ":\n" + "\n".join(edges)


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 100 and "tascmt.models.tasc_swinmt" in graph
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_describe(graph, c) for c in found)


def test_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert cycles({"a": {"a"}}) == [["a"]]
    assert sorted(cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}})) == [["a", "b"], ["c", "d"]]


def test_graph_rules(tmp_path):
    """Relative imports, ``from pkg import module``, imports inside functions and under TYPE_CHECKING, and the
    implicit ``__init__`` of a package count; a package ``__init__`` importing its own submodules does not."""
    files = {
        "pkg/__init__.py": "from pkg import a\nfrom pkg.sub import b\n",
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import Thing\n",
        "pkg/c.py": "def f():\n    from . import a\n    from .sub import NAME\n",
        "pkg/sub/__init__.py": "NAME = 1\nfrom . import b\n",
        "pkg/sub/b.py": "from .. import c\nimport os\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path / "pkg")
    assert graph == {
        "pkg": set(),  # its own submodules
        "pkg.a": {"pkg.c"},  # under TYPE_CHECKING
        "pkg.c": {"pkg.a", "pkg.sub"},  # inside a function; "NAME" is not a module, so pkg.sub
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.c"},  # `from .. import c`: the module pkg.c
    }
    assert cycles(graph) == [["pkg.a", "pkg.c"]]


# ------------------------------------------------------------------------------------- the stages' arrows
def _stage_edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets)


def test_stages_import_one_way():
    """docs/design.md §1: ``models`` imports no later stage (nor the top-level package, whose lazy names reach
    inference), ``inference`` and ``evaluation`` never import ``training``, nothing but ``__main__`` imports
    ``cli``, and no stage imports the ``tascmt.resformer`` re-exports."""
    later = ("data", "losses", "training", "inference", "evaluation", "experiments", "bench", "demo", "cli",
             "resformer")
    bad = []
    for a, b in _stage_edges(import_graph()):
        sa, sb = (a.split(".")[1:] or [""])[0], (b.split(".")[1:] or [""])[0]
        if sa == "models" and (b == PACKAGE or sb in later):
            bad.append(f"{a} -> {b} (models imports a later stage)")
        if sa in ("inference", "evaluation") and sb == "training":
            bad.append(f"{a} -> {b} ({sa} imports training)")
        if sb == "cli" and sa not in ("cli", "__main__"):
            bad.append(f"{a} -> {b} (only the command line imports cli)")
        if sb == "resformer" and sa != "resformer":
            bad.append(f"{a} -> {b} (tascmt.resformer only re-exports; import the stage modules)")
    assert not bad, "\n".join(bad)


def test_io_readers_do_not_import_the_task_module():
    graph = import_graph()
    for reader in ("msd", "nnunet", "folder"):
        assert "tascmt.io.task" not in graph[f"tascmt.io.{reader}"], f"tascmt.io.{reader} imports tascmt.io.task"


# --------------------------------------------------------------------------- every module, first, fresh
_FORK_DRIVER = textwrap.dedent('''
    import importlib, json, os, signal, sys
    import numpy, torch  # noqa: F401  (the heavy libraries, loaded once in the parent)
    for name in ("monai", "scipy.ndimage", "scipy.stats", "skimage", "matplotlib", "SimpleITK", "nibabel", "pydicom",
                 "safetensors.torch"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    preloaded = sorted(m for m in sys.modules if m == "tascmt" or m.startswith("tascmt."))
    modules = json.loads(sys.stdin.read())
    results = {}
    for name in modules:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: import one module first, report, leave without cleanup
            os.close(read)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            signal.alarm(120)
            sys.argv = ["tascmt", "--version"]  # tascmt.__main__ runs the command line
            try:
                importlib.import_module(name)
                report = {"ok": True}
            except SystemExit as err:
                report = {"ok": err.code in (0, None), "error": f"SystemExit({err.code!r})"}
            except ModuleNotFoundError as err:
                outside = (err.name or "").split(".")[0] != "tascmt"
                report = {"ok": False, "missing": err.name if outside else None,
                          "error": f"{type(err).__name__}: {err}"}
            except BaseException as err:
                report = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            os.write(write, json.dumps(report).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        results[name] = json.loads(data) if data else {"ok": False, "error": f"child died (status {status})"}
    print(json.dumps({"preloaded": preloaded, "results": results}))
''')


def test_every_module_imports_first_in_a_fresh_process():
    if not hasattr(__import__("os"), "fork"):
        pytest.skip("needs os.fork")
    modules = sorted(module_files())
    proc = subprocess.run([sys.executable, "-c", _FORK_DRIVER], input=json.dumps(modules), text=True,
                          capture_output=True, timeout=900, cwd=SRC_DIR.parent,
                          env={**__import__("os").environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["preloaded"] == [], f"the parent had imported {out['preloaded']} before forking"
    results = out["results"]
    assert sorted(results) == modules
    missing = {m: r["missing"] for m, r in results.items() if not r["ok"] and r.get("missing")}
    failed = {m: r["error"] for m, r in results.items() if not r["ok"] and not r.get("missing")}
    assert not failed, "modules that fail to import first in a fresh interpreter:\n" + "\n".join(
        f"  {m}: {e}" for m, e in sorted(failed.items()))
    if missing:  # slim installs lack optional imaging libraries; not an import-order problem
        print("modules skipped for a missing third-party library:", missing)


def test_public_import_paths_of_moved_names():
    """Names that moved between modules are still importable from where they were."""
    from tascmt.data.images2d.dataset import FolderDataset
    from tascmt.evaluation.evaluate import CUBIC, is_reference_name, write_eval_figures
    from tascmt.evaluation.resformer import evaluate_resformer
    from tascmt.evaluation.subjects import CUBIC as CUBIC2
    from tascmt.evaluation.subjects import is_reference_name as is_reference_name2
    from tascmt.io import CaseRef, Task, read_task
    from tascmt.io.task import CaseRef as CaseRef2
    from tascmt.io.task import Task as Task2
    from tascmt.io.task import read_task as read_task2
    from tascmt.models.dfe import DFE
    from tascmt.models.encoder import TascEncoder
    from tascmt.models.mtl import DFE as DFE2
    from tascmt.models.resformer import ResFormerConfig, ResFormerMTL
    from tascmt.models.tasc_swinmt import TascEncoder as TascEncoder2
    from tascmt.resformer import FolderDataset as FolderDataset2
    from tascmt.resformer import ResFormerConfig as ResFormerConfig2
    from tascmt.resformer import ResFormerTrainer
    from tascmt.resformer import evaluate_resformer as evaluate_resformer2
    from tascmt.resformer.config import ResFormerConfig as ResFormerConfig3
    from tascmt.resformer.dfe import DFE as DFE3
    from tascmt.resformer.model import ResFormerMTL as ResFormerMTL2
    from tascmt.resformer.trainer import ResFormerTrainer as ResFormerTrainer2
    from tascmt.resformer.trainer import trainer_for_model
    from tascmt.training.resformer import ResFormerTrainer as ResFormerTrainer3

    assert CaseRef is CaseRef2 and Task is Task2 and read_task is read_task2
    assert TascEncoder is TascEncoder2 and DFE is DFE2 is DFE3
    assert ResFormerConfig is ResFormerConfig2 is ResFormerConfig3 and ResFormerMTL is ResFormerMTL2
    assert ResFormerTrainer is ResFormerTrainer2 is ResFormerTrainer3 and FolderDataset is FolderDataset2
    assert evaluate_resformer is evaluate_resformer2 and trainer_for_model("resformer_mtl") is ResFormerTrainer
    assert CUBIC is CUBIC2 and is_reference_name is is_reference_name2 and callable(write_eval_figures)


def test_version_has_one_source():
    import re

    from tascmt._version import __version__

    text = (SRC_DIR.parent / "pyproject.toml").read_text(encoding="utf-8")
    declared = re.search(r'^version = "([^"]+)"', text, flags=re.MULTILINE)
    assert declared and tascmt.__version__ == __version__ == declared.group(1)
