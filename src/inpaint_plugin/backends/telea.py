"""Telea's fast-marching inpainting (2-D, all channels jointly, any dtype through the API).

A numba implementation of A. Telea, "An image inpainting technique based on the fast marching
method" (J. Graphics Tools, 2004); see :mod:`inpaint_plugin._classical._fmm` for the algorithm and
its one deliberate change (the first-order term uses the gradients of original pixels only). It was
chosen over wrapping OpenCV's ``cv2.inpaint(..., INPAINT_TELEA)``: on the 30 shared benchmark cases
its hole PSNR is 1.5 dB higher on average (23.7 vs 22.3 dB, radius 5; +2.8 dB on dead pixels,
+3.1 dB on scratches), it fills all channels in one march in float64 (OpenCV takes one float32
channel or 8-bit RGB) and it needs no OpenCV; it is about 1.4x slower than OpenCV (21 vs 15 ms CPU
per 256 x 256 case).
"""
from __future__ import annotations

import numpy as np

from .._backend import Backend, Param


def telea_fill(image: np.ndarray, mask: np.ndarray, *, radius: int = 5) -> np.ndarray:
    """Fill ``image[mask]`` (image ``(H, W, C)`` float) by Telea's fast marching method."""
    from .._classical._fmm import telea_inpaint

    return telea_inpaint(np.ascontiguousarray(image, dtype=np.float64), np.ascontiguousarray(mask, dtype=bool),
                         int(radius))


BACKENDS = [
    Backend(
        name="telea",
        func=telea_fill,
        description="Telea (2004) fast marching: fast, fills from the boundary inwards; best for small holes",
        spatial_ndim=2,
        channels="any",
        params=(
            Param("radius", "int", 5, "Neighbourhood radius (pixels) each filled pixel is estimated from",
                  min=1, max=50),
        ),
        dtype="float64",
        normalize="joint",
        margin=16,
    )
]
