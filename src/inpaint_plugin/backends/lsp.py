"""Least-squares prediction inpainting (2-D, any number of channels): a stencil learned from the image.

For every tile of the image, a linear predictor of a pixel from its ``(2 radius + 1)^2 - 1`` neighbours
is fitted (ridge regression, coefficients summing to one) on the tile's own known pixels; the holes are
then filled with the values that the learned predictors, and with weight ``beta`` the 4-neighbour
mean, predict best (least squares over every prediction that involves a hole pixel; one sparse solve
for all channels). Where the image is smooth this is the biharmonic fill; across edges and textures
the learned stencil interpolates along the structure. Meant for small and thin holes (dead pixels,
scratches, stripes); on large holes it is as smooth as biharmonic. See
:mod:`inpaint_plugin._classical._lsp`.

References
----------
.. [1] A. J. E. M. Janssen, R. N. J. Veldhuis, L. B. Vries, "Adaptive interpolation of discrete-time
   signals that can be modeled as autoregressive processes", IEEE Trans. Acoust., Speech, Signal
   Process. 34(2), 317-330, 1986. doi:10.1109/TASSP.1986.1164824
.. [2] X. Li, M. T. Orchard, "New edge-directed interpolation", IEEE Trans. Image Process. 10(10),
   1521-1527, 2001. doi:10.1109/83.951537
"""
from __future__ import annotations

import numpy as np

from .._backend import Backend, Param


def lsp_fill(image: np.ndarray, mask: np.ndarray, radius: int = 2, tile: int = 16, ridge: float = 0.01,
             beta: float = 0.3) -> np.ndarray:
    """Fill ``image[mask]`` (``(H, W, C)`` float) by least-squares prediction."""
    from .._classical._lsp import lsp_fill as _fill

    return _fill(image, mask, radius=radius, tile=tile, context=max(tile // 2, 2 * radius), lam=ridge, beta=beta)


BACKENDS = [
    Backend(
        name="lsp",
        func=lsp_fill,
        description="Least-squares prediction: interpolation stencils learned from the image's known pixels "
                    "(best for dead pixels, scratches and stripes)",
        spatial_ndim=2,
        channels="any",
        params=(
            Param("radius", "int", 2, "stencil radius: the predictor uses the (2 radius + 1)^2 - 1 neighbours",
                  min=1, max=4),
            Param("tile", "int", 16, "side of the tiles that get a stencil of their own (learned on the tile "
                  "and tile / 2 pixels around it)", min=4, max=1024),
            Param("ridge", "float", 0.01, "ridge weight pulling each stencil towards the 4-neighbour mean "
                  "(relative to the data)", min=0.0, max=1e6),
            Param("beta", "float", 0.3, "weight of the 4-neighbour-mean (biharmonic) predictor next to the "
                  "learned one", min=0.0, max=1e6),
        ),
        dtype="float64",
        normalize="joint",  # centred, scaled values: the ridge fit is then equivariant to offset and scale
        margin=24,
    )
]
