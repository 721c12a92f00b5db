"""Explicit curvature-driven diffusion steps on the pixels that matter only (numba).

:func:`cdd_step` evaluates the CDD update on the whole bounding box of the
holes, but a hole pixel's update only reads the fluxes through its faces, which read the curvature
at the face ends (the hole pixels and their axis neighbours, set ``K``), which reads the central
differences at ``K`` and its axis neighbours (set ``C``). This kernel evaluates exactly those
quantities, with the same formulas and the same order of floating-point operations as the array
version (NumPy's ``gradient`` at the box edges, the same sums), so scattered defects cost a few
operations per defect and step instead of per box pixel.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["PixelSets", "cdd_run", "pixel_sets"]


@njit(cache=True, nogil=True, inline="always")
def _central(v, x, a, edge, strides):
    """``numpy.gradient`` of the flat grid ``v`` along axis ``a`` at ``x``; ``edge[a, x]``: 0 inside,
    1 first, 2 last along ``a``, 3 the axis has a single pixel (zero)."""
    s = strides[a]
    k = edge[a, x]
    if k == 0:
        return (v[x + s] - v[x - s]) / 2.0
    if k == 1:
        return v[x + s] - v[x]
    if k == 2:
        return v[x] - v[x - s]
    return 0.0


@njit(cache=True, nogil=True)
def _cdd_run(u, hpix, kpix, cpix, edge, strides, p, eps, iterations, tol, kappa_max):
    nd = strides.shape[0]
    npix = u.shape[0]
    cg = np.zeros((nd, npix))
    mag = np.ones(npix)
    gk = np.zeros(npix)
    ratio = np.zeros(npix)  # cg[a] / mag for the current axis
    ut = np.zeros(hpix.shape[0])
    ee = eps * eps
    for step in range(1, iterations + 1):
        for y in cpix:
            s2 = 0.0
            for a in range(nd):
                g = _central(u, y, a, edge, strides)
                cg[a, y] = g
                s2 += g * g
            mag[y] = np.sqrt(s2 + ee)
        for y in kpix:
            gk[y] = 0.0
        for a in range(nd):
            for y in cpix:
                ratio[y] = cg[a, y] / mag[y]
            for y in kpix:
                gk[y] += _central(ratio, y, a, edge, strides)  # kappa, summed over the axes
        for y in kpix:
            k = min(abs(gk[y]), kappa_max)
            gk[y] = k if p == 1.0 else k ** p  # (NumPy's power is exact for p = 1 too)
        dmax = 0.0
        rate = 0.0
        for i in range(hpix.shape[0]):
            x = hpix[i]
            acc = 0.0
            for a in range(nd):
                k = edge[a, x]
                for side in range(2):  # + the flux through the upper face, - through the lower one
                    if side == 0:
                        if k >= 2:  # last along a (or a single pixel): no upper face
                            continue
                        q = x
                    else:
                        if k == 1 or k == 3:  # first along a: no lower face
                            continue
                        q = x - strides[a]
                    r = q + strides[a]
                    d = u[r] - u[q]
                    across = 0.0
                    for e in range(nd):
                        if e != a:
                            m = 0.5 * (cg[e, r] + cg[e, q])
                            across += m * m
                    coef = 0.5 * (gk[r] + gk[q]) / np.sqrt(d * d + across + ee)
                    dmax = max(dmax, coef)
                    if side == 0:
                        acc += coef * d
                    else:
                        acc -= coef * d
            ut[i] = acc
            rate = max(rate, abs(acc))
        if dmax <= 0.0 or rate == 0.0:
            return step, 0.0
        dt = min(0.45 / (2 * nd * dmax), 0.45 * eps / (2 * nd))
        for i in range(hpix.shape[0]):
            u[hpix[i]] += dt * ut[i]
        if rate <= tol:
            return step, rate
    return iterations, rate


def _cross_dilate(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one step along each axis."""
    from ._pde import _along

    out = mask.copy()
    nd = mask.ndim
    for a in range(nd):
        lo, hi = _along(a, slice(None, -1), nd), _along(a, slice(1, None), nd)
        out[lo] |= mask[hi]
        out[hi] |= mask[lo]
    return out


class PixelSets(NamedTuple):
    """What the kernel evaluates for one hole mask (see the module's docstring).

    Parameters
    ----------
    hpix : numpy.ndarray of int64
        Flat indices of the hole pixels (the pixels that evolve).
    kpix : numpy.ndarray of int64
        Flat indices of the hole pixels and their axis neighbours (where the curvature is needed:
        the face ends).
    cpix : numpy.ndarray of int64
        ``kpix`` and their axis neighbours (where the central differences are needed).
    edge : numpy.ndarray of uint8
        ``(nd, npix)``: 0 inside, 1 first, 2 last along the axis, 3 the axis has a single pixel.
    strides : numpy.ndarray of int64
        ``(nd,)``: the flat-index step of each axis (C order).

    Attributes
    ----------
    fraction : float
        Fraction of the box's pixels the kernel evaluates. Near 1 (one solid block) the array
        version is faster: it runs vectorised over the whole box.
    """

    hpix: np.ndarray  # the hole pixels
    kpix: np.ndarray  # ... and their axis neighbours (curvature, face ends)
    cpix: np.ndarray  # ... and theirs (central differences)
    edge: np.ndarray  # (nd, npix): 0 inside, 1 first, 2 last along the axis, 3 single-pixel axis
    strides: np.ndarray

    @property
    def fraction(self) -> float:
        """Fraction of the box's pixels the kernel evaluates. Near 1 (one solid block) the array
        version is faster: it runs vectorised over the whole box."""
        return self.cpix.size / self.edge.shape[1]


def pixel_sets(mask: np.ndarray) -> PixelSets:
    """The :class:`PixelSets` of the hole ``mask``.

    Parameters
    ----------
    mask : numpy.ndarray of bool
        The holes in the box the kernel runs on, any number of dimensions.

    Returns
    -------
    PixelSets
        The hole pixels, the two rings of axis neighbours the update reads, the edge codes and
        strides.
    """
    strides = np.array([int(np.prod(mask.shape[a + 1:])) for a in range(mask.ndim)], dtype=np.int64)
    near = _cross_dilate(mask)
    edge = np.zeros((mask.ndim, mask.size), np.uint8)
    for a in range(mask.ndim):
        n = mask.shape[a]
        coord = (np.arange(mask.size) // strides[a]) % n
        edge[a] = np.where(n < 2, 3, np.where(coord == 0, 1, np.where(coord == n - 1, 2, 0)))
    return PixelSets(np.flatnonzero(mask), np.flatnonzero(near), np.flatnonzero(_cross_dilate(near)), edge,
                     strides)


def cdd_run(u: np.ndarray, mask, p: float, eps: float, iterations: int, tol: float,
            kappa_max: float) -> tuple:
    """Up to ``iterations`` explicit CDD steps on ``u``, the hole pixels evolving, the others fixed.

    Each step's time step is ``min(0.45 / (2 nd max(g / |grad u|_eps)), 0.45 eps / (2 nd))``; see
    :mod:`inpaint_plugin.backends.cdd` for the equation.

    Parameters
    ----------
    u : numpy.ndarray of float64
        The ``nd``-D box of one channel, C-contiguous, scaled to [0, 1]; modified in place.
    mask : numpy.ndarray of bool or PixelSets
        The holes, or their :func:`pixel_sets` (computed once and reused across channels).
    p : float
        The exponent of the curvature weight ``g(s) = s**p``.
    eps : float
        The regularisation of ``|grad u|_eps = sqrt(|grad u|**2 + eps**2)`` (relative to the data
        range).
    iterations : int
        The most steps to make.
    tol : float
        Stop after the step whose largest ``|u_t|`` on the hole is at most this.
    kappa_max : float
        The bound on ``|kappa|`` before ``g`` is applied.

    Returns
    -------
    steps : int
        The number of steps made.
    rate : float
        The largest ``|u_t|`` on the hole in the last step (0 when the evolution stopped).
    """
    sets = mask if isinstance(mask, PixelSets) else pixel_sets(mask)
    steps, rate = _cdd_run(u.reshape(-1), sets.hpix, sets.kpix, sets.cpix, sets.edge, sets.strides, float(p),
                           float(eps), int(iterations), float(tol), float(kappa_max))
    return int(steps), float(rate)


# --- the same step on the whole box, as arrays (used when the hole pixels are most of the box) ----------

#: curvature magnitudes are capped here (a level line on a pixel grid cannot bend much tighter)
KAPPA_MAX = 2.0


def _central_diff(u: np.ndarray, axis: int) -> np.ndarray:
    """Central differences along ``axis`` (one-sided at the ends, zero for a single pixel)."""
    if u.shape[axis] < 2:
        return np.zeros_like(u)
    return np.gradient(u, axis=axis)


def cdd_step(u: np.ndarray, hole: np.ndarray, p: float, eps: float):
    """One explicit CDD step on the ``nd``-D array ``u``.

    Returns ``(increment, rate)``: the increment is zero off the hole; ``rate`` is the largest
    ``|u_t|`` on the hole (zero at a steady state).
    """
    from ._pde import _along, div

    nd = u.ndim
    cg = [_central_diff(u, a) for a in range(nd)]
    mag = np.sqrt(sum(g * g for g in cg) + eps * eps)
    kappa = sum(_central_diff(g / mag, a) for a, g in enumerate(cg))
    gk = np.minimum(np.abs(kappa), KAPPA_MAX) ** p
    flux = np.zeros((nd,) + u.shape)
    dmax = 0.0
    for a in range(nd):
        lo, hi = _along(a, slice(None, -1), nd), _along(a, slice(1, None), nd)
        d = u[hi] - u[lo]
        across = sum((0.5 * (cg[e][hi] + cg[e][lo])) ** 2 for e in range(nd) if e != a)
        coef = 0.5 * (gk[hi] + gk[lo]) / np.sqrt(d * d + across + eps * eps)
        # only the faces of hole pixels matter for the step size
        near = hole[hi] | hole[lo]
        if near.any():
            dmax = max(dmax, float(coef[near].max()))
        flux[a][lo] = coef * d
    ut = np.where(hole, div(flux[..., None])[..., 0], 0.0)
    rate = float(np.abs(ut).max())
    if dmax <= 0.0 or rate == 0.0:
        return np.zeros_like(u), 0.0
    # The flux g(|kappa|) n does not vanish with |grad u|: a grid-scale perturbation delta of a smooth
    # region changes u_t by ~ 16 delta / |grad u|_eps, so the step is also capped at 0.45 eps / (2 nd)
    # (otherwise rounding noise grows where the curvature vanishes).
    dt = min(0.45 / (2 * nd * dmax), 0.45 * eps / (2 * nd))
    return dt * ut, rate
