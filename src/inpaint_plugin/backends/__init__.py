"""The built-in backends, one module each.

This package is itself the built-in pluggy plugin: every module in it defines a module-level
``BACKENDS`` list, and :func:`inpaint_plugin_backends` returns them all. Backend modules import
their heavy dependencies (torch, cv2, numba kernels) only inside the functions that need them,
so listing the methods stays cheap.
"""
from __future__ import annotations

import importlib
import pkgutil

from ..hookspecs import hookimpl


@hookimpl
def inpaint_plugin_backends():
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        # a built-in module that fails to import is a bug: it raises (only third-party entry points
        # are skipped with a warning, in _registry), so no method silently drops out of the tests
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "BACKENDS", ()))
    return found
