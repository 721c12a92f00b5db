"""The built-in backends, one module each.

This package is itself the built-in pluggy plugin: every module in it defines a module-level
``BACKENDS`` list, and :func:`inpaint_plugin_backends` returns them all. Backend modules import
their heavy dependencies (torch, cv2, numba kernels) only inside the functions that need them,
so listing the methods stays cheap.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings

from ..hookspecs import hookimpl


@hookimpl
def inpaint_plugin_backends():
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:  # one broken module must not hide the other methods
            warnings.warn(f"inpaint_plugin: built-in backend module {info.name!r} failed to import: {exc!r}",
                          RuntimeWarning, stacklevel=2)
            continue
        found.extend(getattr(module, "BACKENDS", ()))
    return found
