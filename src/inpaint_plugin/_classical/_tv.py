"""Chambolle-Pock iterations of total-variation inpainting on the hole pixels only (numba).

The primal-dual iteration of :mod:`inpaint_plugin.backends.tv` on the whole bounding box of the holes
spends almost all its time on pixels that cannot change: the primal update touches the hole pixels
only, and only the dual variables at the hole pixels and at their predecessors along each axis (the
pixels ``q`` whose forward differences ``u(q + e_a) - u(q)`` involve a hole pixel) enter it. This
kernel runs the same iteration over exactly those pixels, with the same forward differences (zero
across the last index of an axis), the same per-pixel projection of the dual onto the unit ball (the
norm couples the axes and the channels) and the same order of operations as the array version, so
for dead pixels scattered over a large image it costs a few operations per defect instead of per
image pixel.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._pde import _along

__all__ = ["tv_iterate"]


@njit(cache=True, nogil=True)
def _iterate(hpix, hrow, hprev, dpix, dnext, u, ubar, p, sigma, tau, iterations, check_every, goal):
    """Run up to ``iterations`` primal-dual steps in place; returns the number of steps made.

    ``hpix``: flat indices of the hole pixels, ``hrow``: their rows of ``p``, ``hprev``: ``(nh, nd)``
    rows of ``p`` of their predecessors along each axis (-1: none); ``dpix``: flat indices of the
    pixels whose dual variable is used, ``dnext``: ``(nd_pixels, nd)`` flat index of their successor
    along each axis (-1: last along that axis: zero difference); ``u``, ``ubar``: ``(npix, C)``;
    ``p``: ``(len(dpix), nd, C)``. The stopping test (every ``check_every`` steps and at the last):
    the largest change of a hole pixel in that step is at most ``goal``.
    """
    nd = dnext.shape[1]
    nchan = u.shape[1]
    nh = hpix.shape[0]
    for it in range(1, iterations + 1):
        for k in range(dpix.shape[0]):
            q = dpix[k]
            ss = 0.0
            for a in range(nd):
                r = dnext[k, a]
                for c in range(nchan):
                    g = ubar[r, c] - ubar[q, c] if r >= 0 else 0.0
                    v = p[k, a, c] + sigma * g
                    p[k, a, c] = v
                    ss += v * v
            if ss > 1.0:
                norm = np.sqrt(ss)
                for a in range(nd):
                    for c in range(nchan):
                        p[k, a, c] /= norm
        check = it % check_every == 0 or it == iterations
        change = 0.0
        for i in range(nh):
            q = hpix[i]
            k = hrow[i]
            for c in range(nchan):
                d = 0.0
                for a in range(nd):
                    d += p[k, a, c]  # zero across the last index: it never leaves zero
                    kp = hprev[i, a]
                    if kp >= 0:
                        d -= p[kp, a, c]
                new = u[q, c] + tau * d
                if check:
                    change = max(change, abs(new - u[q, c]))
                ubar[q, c] = 2.0 * new - u[q, c]
                u[q, c] = new
        if check and change <= goal:
            return it
    return iterations


def tv_iterate(u: np.ndarray, mask: np.ndarray, iterations: int, goal: float, sigma: float, tau: float,
               check_every: int) -> int:
    """Chambolle-Pock steps for TV inpainting of ``u`` with the known pixels fixed.

    Only the hole pixels and the dual variables that enter their update are visited (see the
    module's docstring). The dual variable starts at zero, ``u_bar`` at ``u``.

    Parameters
    ----------
    u : numpy.ndarray of float64
        ``(*spatial, C)``, C-contiguous: the image with an initial fill in the holes; updated in
        place.
    mask : numpy.ndarray of bool
        ``spatial``: the holes, the only pixels that change.
    iterations : int
        The most primal-dual steps to make.
    goal : float
        Stop once the largest change of a hole pixel in a checked step is at most this (in the
        units of ``u``).
    sigma, tau : float
        The dual and primal step sizes (``sigma * tau * L**2 <= 1`` for convergence, ``L**2 = 4 * ndim``
        for forward differences).
    check_every : int
        Test the stopping rule every this many steps (and at the last one).

    Returns
    -------
    int
        The number of steps made.
    """
    shape = mask.shape
    nd = mask.ndim
    strides = np.array([int(np.prod(shape[a + 1:])) for a in range(nd)], dtype=np.int64)
    used = mask.copy()  # the hole pixels and their predecessors along each axis
    for a in range(nd):
        used[_along(a, slice(None, -1), nd)] |= mask[_along(a, slice(1, None), nd)]
    used_coords = np.nonzero(used)
    dpix = np.ravel_multi_index(used_coords, shape).astype(np.int64)
    dnext = np.stack([np.where(used_coords[a] < shape[a] - 1, dpix + strides[a], -1) for a in range(nd)], axis=1)
    dmap = np.full(mask.size, -1, dtype=np.int64)
    dmap[dpix] = np.arange(dpix.size)
    hole_coords = np.nonzero(mask)
    hpix = np.ravel_multi_index(hole_coords, shape).astype(np.int64)
    hrow = dmap[hpix]
    hprev = np.stack([np.where(hole_coords[a] > 0, dmap[np.maximum(hpix - strides[a], 0)], -1)
                      for a in range(nd)], axis=1)
    del dmap
    flat = u.reshape(-1, u.shape[-1])
    ubar = flat.copy()
    p = np.zeros((dpix.size, nd, flat.shape[1]))
    return int(_iterate(hpix, hrow, np.ascontiguousarray(hprev), dpix, np.ascontiguousarray(dnext), flat, ubar, p,
                        float(sigma), float(tau), int(iterations), int(check_every), float(goal)))
