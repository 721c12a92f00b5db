"""inpaint-plugin: image inpainting for scientists.

>>> import numpy as np, inpaint_plugin
>>> image = np.tile(np.arange(8, dtype=np.uint8), (8, 1))
>>> mask = np.zeros(image.shape, bool); mask[3:5, 3:5] = True
>>> inpaint_plugin.inpaint(image, mask, method="biharmonic")[3:5, 3:5]
array([[3, 4],
       [3, 4]], dtype=uint8)

Methods are backends registered through pluggy hooks (see :mod:`inpaint_plugin.hookspecs`);
:func:`methods` lists them with their parameters. Heavier parts (``train``, ``detect``,
``evaluate``, file I/O, streaming) are imported on first use; ``__init__.pyi`` lists every public
name for type checkers and IDEs, and ``dir()`` shows them.
"""
import importlib as _importlib

from ._api import inpaint, iter_inpaint
from ._backend import Backend, Param
from ._registry import get_backend, register, unregister
from .hookspecs import hookimpl

__version__ = "0.1.0"

# Optional parts, imported on first use (they pull in heavier modules).
_LAZY = {
    "train": (".training", "train"),
    "TrainConfig": (".training", "TrainConfig"),
    "detect": ("._detect", "detect"),
    "evaluate": ("._evaluate", "evaluate"),
    "read_image": ("._io", "read_image"),
    "write_image": ("._io", "write_image"),
    "stream_inpaint": ("._dask", "stream_inpaint"),
    "read_metadata": ("._io", "read_metadata"),
    "ImageMetadata": ("._metadata", "ImageMetadata"),
}

__all__ = [
    "Backend",
    "ImageMetadata",
    "Param",
    "TrainConfig",
    "__version__",
    "detect",
    "evaluate",
    "get_backend",
    "hookimpl",
    "inpaint",
    "iter_inpaint",
    "methods",
    "read_image",
    "read_metadata",
    "register",
    "stream_inpaint",
    "train",
    "unregister",
    "write_image",
]


def methods() -> dict:
    """All registered methods, ``{name: Backend}`` sorted by name.

    Each :class:`Backend` carries its description, dimensionality (``spatial_ndim``: 2 or None
    for nD), channel handling, parameters (:class:`Param` with kind, default, bounds, choices)
    and whether it needs trained weights; ``Backend.to_dict()`` gives plain data.

    Returns
    -------
    dict of str to Backend
    """
    from ._registry import methods as _methods

    return _methods()


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(_importlib.import_module(module, __name__), attr)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'inpaint_plugin' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) - {"_importlib", "_LAZY"} | set(__all__))
