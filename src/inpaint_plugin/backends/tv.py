"""Total-variation inpainting (nD, any number of channels).

Minimises the isotropic vectorial total variation ``sum_p |grad u(p)|`` (the norm couples the spatial
axes and the channels, so colour edges stay aligned) over the hole pixels, with the known pixels as hard
constraints, by the first-order primal-dual algorithm of Chambolle & Pock (2011) with diagonal
preconditioning (Pock & Chambolle 2011):

    p <- proj_{|p| <= 1}(p + sigma grad(u_bar)),  u+ <- proj_known(u + tau div p),  u_bar <- 2 u+ - u

with forward differences (Neumann edges), ``sigma = 1/2`` and ``tau = 1/(2 ndim)``. The iteration starts
from the harmonic fill and works on the bounding box of the holes (one pixel margin). It stops after
``iterations`` steps or once the largest change of a hole pixel over one step falls below ``tol`` times
the data range. The iterations run on the hole pixels and the dual variables they use only
(:mod:`inpaint_plugin._classical._tv`, numba), not on the whole box.

References: T. Chan, J. Shen, "Mathematical models for local nontexture inpaintings", SIAM J. Appl.
Math. 62(3), 2002; A. Chambolle, T. Pock, "A first-order primal-dual algorithm for convex problems
with applications to imaging", J. Math. Imaging Vis. 40, 2011.
"""
from __future__ import annotations

import numpy as np

from .._backend import Backend, Param

#: check the stopping criterion every this many iterations
CHECK_EVERY = 10


def tv_fill(image: np.ndarray, mask: np.ndarray, iterations: int = 1000, tol: float = 1e-5) -> np.ndarray:
    """Fill ``image[mask]`` (``(*spatial, C)`` float) by total-variation minimisation."""
    from .._classical._pde import harmonic_fill, hole_crop
    from .._classical._tv import tv_iterate

    crop = hole_crop(mask, margin=1)
    f = np.array(image[crop], dtype=np.float64)
    m = mask[crop]
    known = f[~m]
    span = float(np.ptp(known)) if known.size else 0.0
    goal = tol * (span if span > 0 else 1.0)

    u = np.ascontiguousarray(harmonic_fill(f, m))
    tv_iterate(u, m, iterations, goal, sigma=0.5, tau=1.0 / (2 * m.ndim), check_every=CHECK_EVERY)
    out = np.array(image, dtype=np.float64, copy=True)
    out[crop] = u
    return out


BACKENDS = [
    Backend(
        name="tv",
        func=tv_fill,
        description="Total-variation inpainting (Chambolle-Pock primal-dual, known pixels fixed): "
                    "piecewise-smooth fills with sharp level lines",
        spatial_ndim=None,
        channels="any",
        params=(
            Param("iterations", "int", 1000, "maximum number of primal-dual iterations", min=1, max=1_000_000),
            Param("tol", "float", 1e-5, "stop when no hole pixel changes by more than tol x data range "
                  "in one iteration", min=0.0, max=1.0),
        ),
        dtype="float64",
        normalize="joint",
        margin=32,
    )
]
