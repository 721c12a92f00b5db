"""The architecture stays easy to see: every module imports on its own, the package's import graph
(module-level and function-level imports alike) has no cycle, nothing imports the facade back, and
importing the package pulls in no heavy library."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "inpaint_plugin"
ROOT = "inpaint_plugin"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> list:
    if node.level:
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    names = [f"{target}.{a.name}" for a in node.names]
    return [target] + names


def import_graph() -> dict:
    """``{module: {imported package modules}}`` over every import statement, wherever it is."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        edges = set()
        tree = ast.parse(path.read_text(), str(path))
        typing_only = set()  # imports under ``if TYPE_CHECKING:`` never run
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                typing_only.update(id(n) for b in node.body for n in ast.walk(b))
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(name, is_pkg, node)
            else:
                continue
            if isinstance(node, ast.ImportFrom):  # from X import a: the module X.a if it is one, else X
                base, names = targets[0], targets[1:]
                targets = [t for t in names if t in mods] or [base]
                if any(t not in mods for t in names):
                    targets.append(base)
            for t in targets:
                if t in mods and t != name:
                    edges.add(t)
        graph[name] = edges
    return graph


def find_cycle(graph: dict):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if state.get(m) is None:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if state.get(n) is None:
            found = visit(n)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    # the root package re-exports: edges into it from below are checked by the next test
    below = {n: {m for m in e if m != ROOT} for n, e in graph.items() if n != ROOT}
    assert find_cycle(below) is None, f"import cycle: {' -> '.join(find_cycle(below))}"


# the top of the graph: entry points that nothing in the core may import
TOP = {f"{ROOT}._api", f"{ROOT}.cli", f"{ROOT}.training._cli", f"{ROOT}._napari", f"{ROOT}._napari._widget",
       f"{ROOT}.__main__"}


def test_nothing_imports_the_facade_or_the_package_root_back():
    graph = import_graph()
    allowed_top = TOP | {ROOT} | {n for n in graph if n.startswith(f"{ROOT}._napari")}
    bad = []
    for n, edges in graph.items():
        if n in allowed_top:
            continue
        for m in edges:
            if m in TOP and not m.startswith(f"{ROOT}._napari") or m == ROOT:
                bad.append(f"{n} -> {m}")
    assert not bad, "modules below the facade import it (or the package root) back: " + ", ".join(sorted(bad))


#: Imports each module named on stdin in a process of its own, forked from one that has imported the
#: third-party libraries the package uses (and nothing of the package): each import starts with no
#: module of the package loaded, as in a new interpreter, without paying the libraries' import (torch,
#: napari: seconds) once per module. Prints one JSON line per module: its name and the traceback of
#: the failed import ("" when it imported).
_FORK_IMPORTER = r"""
import importlib, json, os, sys, traceback
for lib in ("numpy", "scipy.ndimage", "numba", "skimage", "tifffile", "imageio.v3", "pluggy", "torch", "dask.array",
            "zarr", "qtpy.QtWidgets", "magicgui", "napari"):
    try:
        importlib.import_module(lib)
    except Exception:
        pass  # a missing optional library: the modules that need it fail or skip on their own
assert not [m for m in sys.modules if m.partition(".")[0] == "inpaint_plugin"]
for line in sys.stdin:
    module = line.strip()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(module)
            message = ""
        except BaseException:
            message = traceback.format_exc() or "failed"
        os.write(write, message.encode())
        os.close(write)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        message = f.read().decode()
    _, status = os.waitpid(pid, 0)
    if status and not message:
        message = f"the importing process ended with status {status}"
    print(json.dumps([module, message]), flush=True)
"""
MODULES = sorted(m for m in _modules() if not m.endswith("__main__"))


@pytest.fixture(scope="module")
def import_failures():
    """``{module: traceback}`` of the package's modules that fail to import on their own."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    result = subprocess.run([sys.executable, "-c", _FORK_IMPORTER], input="\n".join(MODULES), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    found = dict(json.loads(line) for line in result.stdout.splitlines())
    assert set(found) == set(MODULES), result.stderr[-2000:]
    return found


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports_on_its_own(module, import_failures):
    if module.startswith(f"{ROOT}._napari"):
        pytest.importorskip("napari")
    assert not import_failures[module], import_failures[module][-2000:]


def test_a_module_that_fails_to_import_is_reported(tmp_path):
    """The importer above reports failures (a module of a package that is not loaded beforehand)."""
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("")
    (tmp_path / "brokenpkg" / "bad.py").write_text("from . import missing_sibling\n")
    (tmp_path / "brokenpkg" / "good.py").write_text("VALUE = 1\n")
    result = subprocess.run([sys.executable, "-c", _FORK_IMPORTER], input="brokenpkg.bad\nbrokenpkg.good\n",
                            capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    found = dict(json.loads(line) for line in result.stdout.splitlines())
    assert "ImportError" in found["brokenpkg.bad"] and found["brokenpkg.good"] == ""


def test_importing_the_package_is_light():
    code = ("import sys, inpaint_plugin as ip; ip.methods(); ip.inpaint; "
            "heavy = [m for m in ('torch', 'napari', 'dask', 'tensorflow', 'zarr', 'qtpy') if m in sys.modules]; "
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""


def test_lazy_exports_are_visible_to_dir():
    import inpaint_plugin as ip

    for name in ip.__all__:
        assert name in dir(ip)
        assert getattr(ip, name) is not None
