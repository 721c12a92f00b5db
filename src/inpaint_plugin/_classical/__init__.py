"""Private numba kernels of the classical inpainting methods."""
from __future__ import annotations

from pathlib import Path

__all__ = ["kernels_cached"]


def kernels_cached(module: str) -> bool:
    """Whether numba has compiled kernels of ``_classical.<module>`` cached on disk (``cache=True``).

    Parameters
    ----------
    module : str
        The kernel module's name, e.g. ``"_bilaplace"``.

    Returns
    -------
    bool
        False before the first use after an installation: the first call then compiles the kernels
        (seconds to a minute), which the command line tool announces.
    """
    cache = Path(__file__).with_name("__pycache__")
    return cache.is_dir() and any(cache.glob(f"{module}.*.nbi"))
