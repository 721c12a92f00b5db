"""inpaint-plugin: image inpainting for scientists.

>>> import numpy as np, inpaint_plugin
>>> image = np.tile(np.arange(8, dtype=np.uint8), (8, 1))
>>> mask = np.zeros(image.shape, bool); mask[3:5, 3:5] = True
>>> inpaint_plugin.inpaint(image, mask, method="biharmonic")[3:5, 3:5]
array([[3, 4],
       [3, 4]], dtype=uint8)

Methods are backends registered through pluggy hooks (see :mod:`inpaint_plugin.hookspecs`);
:func:`methods` lists them with their parameters.
"""
from __future__ import annotations

from ._api import inpaint, iter_inpaint
from ._backend import Backend, Param
from ._registry import get_backend, register, unregister
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "Param",
    "get_backend",
    "hookimpl",
    "inpaint",
    "iter_inpaint",
    "methods",
    "register",
    "unregister",
    "__version__",
]

# Optional parts, imported on first use (they pull in heavier modules).
_LAZY = {
    "train": ("._train", "train"),
    "detect": ("._detect", "detect"),
    "evaluate": ("._evaluate", "evaluate"),
    "read_image": ("._io", "read_image"),
    "write_image": ("._io", "write_image"),
    "stream_inpaint": ("._dask", "stream_inpaint"),
}


def methods() -> dict:
    """All registered methods, ``{name: Backend}`` sorted by name.

    Each :class:`Backend` carries its description, dimensionality (``spatial_ndim``: 2 or None
    for nD), channel handling, parameters (:class:`Param` with kind, default, bounds, choices)
    and whether it needs trained weights; ``Backend.to_dict()`` gives plain data.
    """
    from ._registry import backends

    table = backends()
    return {name: table[name] for name in sorted(table)}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module, __name__), attr)
    raise AttributeError(f"module 'inpaint_plugin' has no attribute {name!r}")
