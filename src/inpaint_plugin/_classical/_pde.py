"""Shared pieces of the variational / PDE inpainting methods (TV, CDD): nD finite differences on
channel-last arrays, the crop around the holes, and a harmonic initial fill."""
from __future__ import annotations

import numpy as np

__all__ = ["grad", "div", "hole_crop", "harmonic_fill"]


def _along(axis: int, sl: slice, ndim: int) -> tuple:
    """Index that applies ``sl`` along ``axis`` of an ``ndim``-dimensional array."""
    idx = [slice(None)] * ndim
    idx[axis] = sl
    return tuple(idx)


def grad(u: np.ndarray, nd: int) -> np.ndarray:
    """Forward differences of ``u`` along each of its ``nd`` spatial axes.

    Parameters
    ----------
    u : numpy.ndarray
        A channel-last array ``(*spatial, C)``.
    nd : int
        The number of spatial axes (``u.ndim - 1``).

    Returns
    -------
    numpy.ndarray
        ``(nd, *spatial, C)``, the dtype of ``u``; the difference across the last index of an axis
        is zero (Neumann edges).
    """
    g = np.zeros((nd,) + u.shape, dtype=u.dtype)
    for a in range(nd):
        np.subtract(u[_along(a, slice(1, None), u.ndim)], u[_along(a, slice(None, -1), u.ndim)],
                    out=g[a][_along(a, slice(None, -1), u.ndim)])
    return g


def div(p: np.ndarray) -> np.ndarray:
    """Discrete divergence, the negative adjoint of :func:`grad`.

    ``sum(div(p) * u) == -sum(p * grad(u))`` for every ``u``.

    Parameters
    ----------
    p : numpy.ndarray
        A vector field ``(nd, *spatial, C)`` as :func:`grad` returns.

    Returns
    -------
    numpy.ndarray
        ``(*spatial, C)``, the dtype of ``p``.
    """
    out = np.zeros(p.shape[1:], dtype=p.dtype)
    nd = out.ndim
    for a in range(p.shape[0]):
        inner = p[a][_along(a, slice(None, -1), nd)]
        out[_along(a, slice(None, -1), nd)] += inner
        out[_along(a, slice(1, None), nd)] -= inner
    return out


def hole_crop(mask: np.ndarray, margin: int = 1) -> tuple:
    """Slices of the bounding box of the holes grown by ``margin`` pixels (clipped to the image).

    Parameters
    ----------
    mask : numpy.ndarray of bool
        The holes; must hold at least one True value.
    margin : int, optional
        Pixels added on each side of the bounding box (default 1).

    Returns
    -------
    tuple of slice
        One slice per axis of ``mask``.
    """
    idx = np.nonzero(mask)
    return tuple(slice(max(int(i.min()) - margin, 0), min(int(i.max()) + margin + 1, s))
                 for i, s in zip(idx, mask.shape))


def harmonic_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Solve Laplace's equation in the holes with the known pixels as boundary values.

    The 2 ndim + 1 point Laplacian with reflecting edges, solved per channel: a sparse LU
    factorisation (scipy ``splu``) for at most 20000 hole pixels, else pyamg's Ruge-Stuben algebraic
    multigrid as a CG preconditioner (``tol=1e-8``, at most 200 iterations).

    Parameters
    ----------
    image : numpy.ndarray of float
        ``(*spatial, C)``; the values in the holes are ignored.
    mask : numpy.ndarray of bool
        ``spatial``: the holes.

    Returns
    -------
    numpy.ndarray
        A filled copy of ``image``; known pixels unchanged.
    """
    from scipy import sparse

    shape = mask.shape
    nd = mask.ndim
    nchan = image.shape[-1]
    flat = image.reshape(-1, nchan)
    pix = np.flatnonzero(mask)
    n = pix.size
    uid = np.full(mask.size, -1, dtype=np.int64)
    uid[pix] = np.arange(n)
    coords = np.unravel_index(pix, shape)
    strides = np.array([int(np.prod(shape[a + 1:])) for a in range(nd)])
    diag = np.zeros(n)
    rows, cols = [], []
    rhs = np.zeros((n, nchan))
    for a in range(nd):
        for s in (-1, 1):
            ok = (coords[a] + s >= 0) & (coords[a] + s < shape[a])
            diag[ok] += 1.0
            i = np.flatnonzero(ok)
            j = pix[ok] + s * strides[a]
            unknown = uid[j] >= 0
            rows.append(i[unknown])
            cols.append(uid[j[unknown]])
            np.add.at(rhs, i[~unknown], flat[j[~unknown]])
    rows = np.concatenate(rows + [np.arange(n)])
    cols = np.concatenate(cols + [np.arange(n)])
    vals = np.concatenate([-np.ones(rows.size - n), diag])
    a = sparse.csr_array((vals, (rows, cols)), shape=(n, n))
    out = image.copy()
    oflat = out.reshape(-1, nchan)
    if n <= 20000:
        from scipy.sparse.linalg import splu

        oflat[pix] = splu(a.tocsc()).solve(rhs).reshape(n, nchan)
    else:
        import pyamg

        ml = pyamg.ruge_stuben_solver(sparse.csr_matrix(a))
        for c in range(nchan):
            oflat[pix, c] = ml.solve(rhs[:, c], tol=1e-8, accel="cg", maxiter=200)
    return out
