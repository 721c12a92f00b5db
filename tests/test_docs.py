"""Every public function and class of ``inpaint_plugin`` carries a numpydoc docstring.

Public means: named in the ``__all__`` of a module of the package and defined in that module
(re-exports are checked where they are defined). For each such function the docstring must have a
``Parameters`` section naming every parameter of the signature (``*args`` / ``**kwargs`` are
matched by name, with or without the stars), and a ``Returns`` (or, for generators, ``Yields``)
section when the function returns something other than ``None``. A class needs a docstring with an
``Attributes`` or ``Parameters`` section.

Where ``numpydoc`` is installed (optional; not a test dependency) its validator also runs, for the
section layout and parameter names and order only (the checks named in ``_NUMPYDOC_CHECKS``).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
import re
import textwrap

import pytest

import inpaint_plugin

_SKIP_MODULES = {"inpaint_plugin.__main__"}
_SECTION_RE = re.compile(r"^(?P<name>[A-Z][A-Za-z ]+)\n-{3,}[ \t]*$", re.MULTILINE)


def _module_names() -> list[str]:
    names = [inpaint_plugin.__name__]
    for info in pkgutil.walk_packages(inpaint_plugin.__path__, prefix=inpaint_plugin.__name__ + "."):
        if info.name in _SKIP_MODULES:
            continue
        if "._napari" in info.name and importlib.util.find_spec("napari") is None:
            continue
        names.append(info.name)
    return sorted(names)


def _public_objects() -> list[tuple[str, str, object]]:
    """``(module name, public name, object)`` for every function and class in an ``__all__``."""
    out = []
    for modname in _module_names():
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) != modname:
                continue  # a re-export: checked in the module that defines it
            out.append((modname, name, obj))
    return out


_OBJECTS = _public_objects()


def _sections(doc: str) -> dict[str, str]:
    """Map each numpydoc section title of ``doc`` to its body text."""
    matches = list(_SECTION_RE.finditer(doc))
    out = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(doc)
        out[m.group("name").strip()] = doc[m.end():end]
    return out


def _documented_names(section: str) -> set[str]:
    """Parameter names listed in a numpydoc ``Parameters`` (or ``Attributes``) section body."""
    names: set[str] = set()
    for line in textwrap.dedent(section.strip("\n")).splitlines():
        if not line.strip() or line[0].isspace():
            continue  # a description line
        head = line.split(" : ", 1)[0].rstrip(":").strip()
        for part in head.split(","):
            part = part.strip().lstrip("*").strip()
            if part:
                names.add(part)
    return names


def _signature_names(func) -> list[str]:
    sig = inspect.signature(func)
    names = [p.name for p in sig.parameters.values()]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return names


def _returns_value(func) -> bool:
    """Whether ``func`` returns (or yields) something other than ``None``."""
    ann = inspect.signature(func).return_annotation
    if ann is not inspect.Signature.empty:
        return ann not in (None, "None")
    if inspect.isgeneratorfunction(func):
        return True
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return False
    fdef = tree.body[0]

    def visit(node) -> bool:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue  # nested scopes return for themselves
            if isinstance(child, ast.Return) and child.value is not None:
                if not (isinstance(child.value, ast.Constant) and child.value.value is None):
                    return True
            if visit(child):
                return True
        return False

    return visit(fdef)


def test_public_objects_found():
    # the walk itself works: the package's entry point and a few of its modules are seen
    names = {f"{m}.{n}" for m, n, _ in _OBJECTS}
    assert "inpaint_plugin._api.inpaint" in names
    assert len(_OBJECTS) > 50


def test_section_parsing():
    doc = inspect.cleandoc(
        """Summary.

        Parameters
        ----------
        a, b : int
            Two numbers.
        **kwargs
            More.

        Returns
        -------
        int
        """
    )
    secs = _sections(doc)
    assert set(secs) == {"Parameters", "Returns"}
    assert _documented_names(secs["Parameters"]) == {"a", "b", "kwargs"}


def _problems(obj) -> list[str]:
    """What the docstring of function or class ``obj`` lacks (empty when nothing)."""
    doc = inspect.getdoc(obj)
    if not doc or not doc.strip():
        return ["no docstring"]
    secs = _sections(doc)
    if inspect.isclass(obj):
        if "Attributes" not in secs and "Parameters" not in secs:
            return ["a class needs an 'Attributes' or 'Parameters' section"]
        return []
    out = []
    params = _signature_names(obj)
    if params:
        if "Parameters" not in secs:
            out.append(f"no 'Parameters' section for {inspect.signature(obj)}")
        else:
            missing = [p for p in params if p not in _documented_names(secs["Parameters"])]
            if missing:
                out.append(f"parameters not documented: {missing}")
    if _returns_value(obj) and "Returns" not in secs and "Yields" not in secs:
        out.append("returns a value but has no 'Returns' section")
    return out


def test_problems_are_found():
    def undocumented(a, b=1):
        return a + b

    def half(a, *args, **kwargs):
        """Add.

        Parameters
        ----------
        a : int
            A number.
        **kwargs
            Unused.
        """
        return a

    def fine(a, *args, **kwargs) -> None:
        """Nothing.

        Parameters
        ----------
        a : int
            A number.
        *args, **kwargs
            Ignored.
        """

    class Bare:
        """A class without sections."""

    assert _problems(undocumented) == ["no docstring"]
    assert _problems(half) == ["parameters not documented: ['args']",
                               "returns a value but has no 'Returns' section"]
    assert _problems(fine) == []
    assert _problems(Bare) == ["a class needs an 'Attributes' or 'Parameters' section"]


@pytest.mark.parametrize(
    ("modname", "name", "obj"), _OBJECTS, ids=[f"{m}.{n}" for m, n, _ in _OBJECTS]
)
def test_numpydoc_docstring(modname, name, obj):
    problems = _problems(obj)
    assert not problems, f"{modname}.{name}: " + "; ".join(problems)


_NUMPYDOC_CHECKS = {
    "GL03", "GL06", "GL07",  # blank lines, unknown or misordered sections
    "PR02", "PR03", "PR06",  # unknown parameter, misordered, bad type name (``integer`` for ``int``)
    "RT02",  # Returns gives only a name where a type is expected
}
#: checks of the signature against ``Parameters`` that only hold for functions: a class documents its
#: fields (dataclasses, named tuples) or an ``__init__`` that magicgui/torch base classes may hide
_FUNCTION_ONLY = {"PR02", "PR03"}


@pytest.mark.parametrize(
    ("modname", "name", "obj"), _OBJECTS, ids=[f"{m}.{n}" for m, n, _ in _OBJECTS]
)
def test_numpydoc_validate(modname, name, obj):
    validate = pytest.importorskip("numpydoc.validate")
    checks = _NUMPYDOC_CHECKS - (_FUNCTION_ONLY if inspect.isclass(obj) else set())
    result = validate.validate(f"{modname}.{name}")
    errors = [(code, msg) for code, msg in result["errors"] if code in checks]
    assert not errors, f"{modname}.{name}: {errors}"
