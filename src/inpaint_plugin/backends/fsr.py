"""Frequency-selective reconstruction (2-D, any number of channels).

Each block of the image that holds holes is modelled, from the pixels around it, as a sparse sum of
2-D DFT basis functions chosen one at a time by weighted projections of the residual, all in the DFT
domain (frequency-selective extrapolation, FSE): known pixels are weighted by an isotropic window
``rho^distance`` from the block, the orthogonality deficiency of the basis on the irregular support is
compensated by adding only a fraction ``gamma`` of each projection, and blocks are processed from the
best-supported ones inwards, with a block size that shrinks where the surroundings are textured. It
continues structure and texture into holes (lines, gradients, periodic patterns) where the PDE methods
blur. The quality profiles ``fast`` and ``best`` use the published parameters (``best``: larger DFT
windows, smaller blocks, more iterations); the default ``balanced`` is ``fast`` with 48x48 windows, or
``fast`` itself on thin holes (hole width, the 95th percentile of the distance to a known pixel, at
most 4 pixels: they need no wider context). Colour channels share the selected basis functions. See
:mod:`inpaint_plugin._classical._fsr` for the algorithm and how it differs from OpenCV's
``cv2.xphoto.inpaint`` FSR.

References
----------
.. [1] A. Kaup, K. Meisinger, T. Aach, "Frequency selective signal extrapolation with applications to
   error concealment in image communication", AEU Int. J. Electron. Commun. 59(3), 147-156, 2005.
.. [2] J. Seiler, K. Meisinger, A. Kaup, "Orthogonality deficiency compensation for improved frequency
   selective image extrapolation", Proc. Picture Coding Symposium (PCS), 2007.
.. [3] J. Seiler, A. Kaup, "Complex-valued frequency selective extrapolation for fast image and video
   signal extrapolation", IEEE Signal Process. Lett. 17(11), 949-952, 2010. doi:10.1109/LSP.2010.2078504
.. [4] J. Seiler, M. Jonscher, M. Schoeberl, A. Kaup, "Resampling images to a regular grid from a
   non-regular subset of pixel positions using frequency selective reconstruction", IEEE Trans. Image
   Process. 24(11), 4540-4555, 2015. doi:10.1109/TIP.2015.2463084 (arXiv:2204.12873)
.. [5] N. Genser, J. Seiler, F. Schilling, A. Kaup, "Signal and loss geometry aware frequency selective
   extrapolation for error concealment", Proc. Picture Coding Symposium (PCS), 159-163, 2018 (the fast
   variant and its parameters; also N. Genser et al., IWSSIP 2017 and 2018, for the iteration count and
   the spectral weighting).
"""
from __future__ import annotations

import numpy as np

from .._backend import Backend, Param


def fsr_fill(image: np.ndarray, mask: np.ndarray, quality: str = "balanced") -> np.ndarray:
    """Fill ``image[mask]`` (``(H, W, C)`` float, each channel's known pixels spanning ``[0, 1]``)."""
    from .._classical._fsr import PROFILES
    from .._classical._fsr import fsr_fill as _fill
    from .._classical._geometry import hole_width

    if quality == "balanced" and hole_width(mask) <= 4.0:
        quality = "fast"  # thin holes need no wider context: same quality, half the time
    return _fill(image, mask, PROFILES[quality])


BACKENDS = [
    Backend(
        name="fsr",
        func=fsr_fill,
        description="Frequency-selective reconstruction (block-wise sparse DFT extrapolation): continues "
                    "edges, gradients and textures into holes",
        spatial_ndim=2,
        channels="any",
        params=(
            Param("quality", "str", "balanced", "'fast' (the published fast profile: 32x32 DFT windows, "
                  "blocks down to 4x4), 'balanced' (48x48 windows, about twice the time of 'fast'; 'fast' on "
                  "thin holes) or 'best' "
                  "(64x64 windows, blocks down to 2x2, more iterations; ten times slower or more)",
                  choices=("fast", "balanced", "best")),
        ),
        dtype="float64",
        normalize=True,
        margin=24,
    )
]
