"""Biharmonic inpainting (nD, any number of channels).

Solves the discrete biharmonic equation inside the holes with the known pixels as boundary values,
with exactly the discretisation of ``skimage.restoration.inpaint_biharmonic`` (the stencil
``laplace(laplace(delta))`` on a ``5**ndim`` window, clipped with ``scipy.ndimage.laplace``'s reflecting
edges within two pixels of the image border), so the results agree with scikit-image to solver
precision; scikit-image's clipping of the filled values to each channel's known range is what the API
layer does with ``clip=True`` (the default), so ``clip=False`` gives the raw solution and tiles of a
dask array are clipped to the whole image's range, not to their own. The solver (see
:mod:`inpaint_plugin._classical._bilaplace`) splits the system into independent blocks, factorises the
small ones directly and solves the large ones with multigrid-preconditioned conjugate gradients, so
its cost grows linearly with the hole size instead of super-linearly (2048^2 image, 10% free-form
strokes: see ``benchmarks/RESULTS.md``). Independent blocks of the hole are solved in parallel threads
(``$INPAINT_PLUGIN_NUM_THREADS`` caps them).
"""
from __future__ import annotations

import numpy as np

from .._backend import Backend


def biharmonic_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill ``image[mask]`` (image: ``(*spatial, C)`` float) with the biharmonic solution."""
    from .._classical._bilaplace import biharmonic_solve

    # the API's private C-contiguous copy (see _backend.py): the solution is written into it
    biharmonic_solve(image, mask, out=image.reshape(-1, image.shape[-1]))
    return image


BACKENDS = [
    Backend(
        name="biharmonic",
        func=biharmonic_fill,
        description="Smooth biharmonic interpolation (same solution as scikit-image's inpaint_biharmonic, "
                    "multigrid-fast)",
        spatial_ndim=None,
        channels="any",
        params=(),
        dtype="float64",
        normalize="joint",
        margin=16,
    )
]
