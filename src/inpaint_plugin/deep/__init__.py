"""Deep-learning inpainting networks and their shared machinery (torch is imported lazily).

Shared machinery, split by concern (none of these modules imports torch at import time):

- :mod:`._device`: the torch device (``get_device``);
- :mod:`._checkpoint`: safe checkpoint reading, strict loading, atomic writing;
- :mod:`._weights`: official weights tables, the user cache, resolving ``weights=``;
- :mod:`._manage`: the cache by method name (import, fetch, remove);
- :mod:`._spec`: :class:`ModelSpec`, the description of one network;
- :mod:`._windows`: crops and tiles of large images;
- :mod:`._run`: the model cache and :func:`run`;
- :mod:`._backend`: :func:`make_backend` turns a spec into an inpainting method.
"""
from __future__ import annotations

from ._backend import find_spec, make_backend, random_checkpoint
from ._checkpoint import load_checked, load_state_dict_file, random_state_dict, write_checkpoint
from ._device import DEVICES, get_device, require_torch
from ._manage import fetch_weights, import_weights, remove_weights
from ._run import clear_model_cache, run
from ._spec import ModelSpec
from ._weights import (
    WeightsEntry,
    WeightsFile,
    cache_dir,
    imported_info,
    is_imported,
    is_offline,
    load_imported,
    resolve_weights,
)

__all__ = [
    "DEVICES",
    "ModelSpec",
    "WeightsEntry",
    "WeightsFile",
    "cache_dir",
    "clear_model_cache",
    "fetch_weights",
    "find_spec",
    "get_device",
    "import_weights",
    "imported_info",
    "is_imported",
    "is_offline",
    "load_checked",
    "load_imported",
    "load_state_dict_file",
    "make_backend",
    "model_spec",
    "random_checkpoint",
    "random_state_dict",
    "remove_weights",
    "require_torch",
    "resolve_weights",
    "run",
    "write_checkpoint",
]


def model_spec(method: str) -> ModelSpec:
    """The :class:`ModelSpec` of a deep method, for your own code.

    ``build()`` the network, ``load(module, path)`` an official checkpoint, ``save(module, path)``
    it back in the official format (after fine-tuning in your own training loop, say), which
    ``inpaint(..., method=method, weights=path)`` then uses.

    Parameters
    ----------
    method : str
        A registered deep method, e.g. ``"deepfill_v2"``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    ValueError
        Naming the deep methods when ``method`` is not one of them.
    """
    return find_spec(method)
