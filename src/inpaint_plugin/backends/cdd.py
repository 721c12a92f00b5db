"""Curvature-driven diffusion inpainting (Chan & Shen 2001), nD, channel by channel.

Evolves the hole pixels by

    u_t = div( g(|kappa|) / |grad u|_eps  grad u ),   kappa = div( grad u / |grad u|_eps ),
    g(s) = s**p,   |v|_eps = sqrt(|v|^2 + eps^2)

with the known pixels fixed. The diffusion is strong where level lines bend and vanishes along straight
ones, so it connects level lines across the holes (the "connectivity principle" that plain TV
inpainting misses). Discretisation as in the paper: the curvature with central differences at the
pixels, the fluxes at half-pixel positions (forward differences along the flux, averaged central
differences across it, ``g`` averaged), zero flux across the image border. The explicit time step is
chosen each iteration at 0.45 of the stability limit ``1 / (2 ndim max(g / |grad u|_eps))``, and at
most ``0.45 eps / (2 ndim)``. The
evolution starts from the harmonic fill and works on the bounding box of the holes (two-pixel
margin); the data are scaled to [0, 1] internally so ``eps`` is relative to the data range. It stops
after ``iterations`` steps or once the largest ``|u_t|`` on the hole falls below ``tol`` (steady state).
Explicit CDD is slow to converge: more iterations keep sharpening the level lines. The steps are
computed by :mod:`inpaint_plugin._classical._cdd` (numba) on the hole pixels and the neighbours their
update reads only, unless that is most of the box: then by :func:`~inpaint_plugin._classical._cdd.cdd_step`, the same step
on the whole box as arrays.

Reference: T. F. Chan, J. Shen, "Nontexture inpainting by curvature-driven diffusions", J. Visual
Communication and Image Representation 12(4), 2001.
"""
from __future__ import annotations

import numpy as np

from .._backend import Backend, Param
from .._classical._cdd import KAPPA_MAX, cdd_step

#: the numba kernel is used when it evaluates at most this fraction of the box (measured on the bench:
#: a solid box, where it needs ~90% of the box, is 1.3-1.6x faster as arrays; stripes at ~50%, 1.5x
#: faster in the kernel)
SPARSE_MAX = 0.75


def cdd_fill(image: np.ndarray, mask: np.ndarray, iterations: int = 300, p: float = 1.0,
             eps: float = 0.05, tol: float = 1e-4) -> np.ndarray:
    """Fill ``image[mask]`` (``(*spatial, C)`` float) by curvature-driven diffusion, per channel."""
    from .._classical._cdd import cdd_run, pixel_sets
    from .._classical._pde import harmonic_fill, hole_crop

    crop = hole_crop(mask, margin=2)
    f = np.array(image[crop], dtype=np.float64)
    m = mask[crop]
    u0 = harmonic_fill(f, m)
    sets = pixel_sets(m)  # decides the path and feeds the kernel (computed once)
    sparse = sets.fraction <= SPARSE_MAX
    out = np.array(image, dtype=np.float64, copy=True)
    for c in range(f.shape[-1]):
        known = f[..., c][~m]
        lo = float(known.min())
        span = float(known.max()) - lo
        if span <= 0:
            out[crop][..., c] = np.where(m, lo, f[..., c])
            continue
        u = np.ascontiguousarray((u0[..., c] - lo) / span)
        if sparse:  # the same steps, on the pixels that matter only
            cdd_run(u, sets, p, eps, iterations, tol, KAPPA_MAX)
        else:
            for _ in range(iterations):
                du, rate = cdd_step(u, m, p, eps)
                u += du
                if rate <= tol:
                    break
        out[crop][..., c] = np.where(m, u * span + lo, f[..., c])
    return out


BACKENDS = [
    Backend(
        name="cdd",
        func=cdd_fill,
        description="Curvature-driven diffusion (Chan & Shen): smooth fills that keep level lines connected",
        spatial_ndim=None,
        channels="per_channel",
        params=(
            Param("iterations", "int", 300, "maximum number of explicit time steps", min=1, max=1_000_000),
            Param("p", "float", 1.0, "exponent of the curvature factor g(s) = s**p", min=0.0, max=4.0),
            Param("eps", "float", 0.05, "regularisation of |grad u|, relative to the data range",
                  min=1e-6, max=10.0),
            Param("tol", "float", 1e-4, "stop when the largest |du/dt| on the hole (data scaled to "
                  "[0, 1]) falls below tol", min=0.0, max=1.0),
        ),
        dtype="float64",
        normalize="joint",
        margin=32,
    )
]
