"""Biharmonic inpainting (nD, any number of channels).

Solves the discrete biharmonic equation inside the holes with the known pixels as boundary
values, with the same discretisation as ``skimage.restoration.inpaint_biharmonic``: the stencil
is ``laplace(laplace(delta))`` on a ``5**ndim`` window, clipped (with ``scipy.ndimage.laplace``'s
reflecting edges) for pixels within two pixels of the image border. The sparse system splits
into independent blocks (groups of unknowns coupled through the stencil), each solved on its own.
"""
from __future__ import annotations

import numpy as np

from .._backend import Backend

RADIUS = 2


def _stencil(shape, center):
    """Non-zero offsets (relative to ``center``) and coefficients of the bi-Laplacian on a window."""
    from scipy.ndimage import laplace

    delta = np.zeros(shape)
    delta[center] = 1.0
    coef = laplace(laplace(delta))
    idx = np.nonzero(coef)
    offsets = np.stack(idx, axis=1) - np.asarray(center)
    return offsets, coef[idx]


def _assemble(mask: np.ndarray):
    """COO triplets of the bi-Laplacian rows of the masked pixels.

    Returns ``(rows, cols, coefs)`` where ``rows`` indexes the masked pixels (in C order) and
    ``cols`` are flat pixel indices of the neighbours.
    """
    shape = np.asarray(mask.shape)
    ndim = mask.ndim
    pts = np.argwhere(mask)  # (n, ndim), C order == flatnonzero order
    n = len(pts)
    near_edge = ((pts < RADIUS) | (pts >= shape - RADIUS)).any(axis=1)

    rows, cols, vals = [], [], []
    full_off, full_coef = _stencil((2 * RADIUS + 1,) * ndim, (RADIUS,) * ndim)
    inner = np.flatnonzero(~near_edge)
    if inner.size:
        nb = pts[inner, None, :] + full_off[None, :, :]  # (m, k, ndim)
        rows.append(np.repeat(inner, len(full_coef)))
        cols.append(np.ravel_multi_index(tuple(nb.reshape(-1, ndim).T), mask.shape))
        vals.append(np.tile(full_coef, inner.size))
    cache = {}
    for i in np.flatnonzero(near_edge):
        p = pts[i]
        lo = np.maximum(p - RADIUS, 0)
        hi = np.minimum(p + RADIUS + 1, shape)
        key = (tuple(hi - lo), tuple(p - lo))
        if key not in cache:
            cache[key] = _stencil(*key)
        off, coef = cache[key]
        rows.append(np.full(len(coef), i))
        cols.append(np.ravel_multi_index(tuple((p + off).T), mask.shape))
        vals.append(coef)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), n


def biharmonic_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill ``image[mask]`` (image: ``(*spatial, C)`` float) with the biharmonic solution."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import spsolve

    nchan = image.shape[-1]
    flat = image.reshape(-1, nchan)
    mask_flat = mask.reshape(-1)
    rows, cols, vals, n = _assemble(mask)

    # number the unknowns; split neighbours into unknown (matrix) and known (right-hand side)
    unknown_id = np.full(mask_flat.size, -1, dtype=np.int64)
    unknown_id[np.flatnonzero(mask_flat)] = np.arange(n)
    is_unknown = mask_flat[cols]
    a = sparse.csr_array((vals[is_unknown], (rows[is_unknown], unknown_id[cols[is_unknown]])), shape=(n, n))
    rhs = np.zeros((n, nchan))
    np.add.at(rhs, rows[~is_unknown], -vals[~is_unknown, None] * flat[cols[~is_unknown]])

    ncomp, labels = connected_components(a, directed=False)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(ncomp + 1))
    solution = np.empty((n, nchan))
    for c in range(ncomp):
        idx = order[bounds[c]:bounds[c + 1]]
        if idx.size == 1:
            solution[idx] = rhs[idx] / a[idx[0], idx[0]]
            continue
        sub = a[idx][:, idx].tocsc()
        sol = spsolve(sub, rhs[idx], permc_spec="COLAMD")
        solution[idx] = sol.reshape(idx.size, nchan)

    out = image.copy()
    out.reshape(-1, nchan)[mask_flat] = solution
    return out


BACKENDS = [
    Backend(
        name="biharmonic",
        func=biharmonic_fill,
        description="Smooth biharmonic interpolation (same solution as scikit-image's inpaint_biharmonic)",
        spatial_ndim=None,
        channels="any",
        params=(),
        dtype="float64",
        margin=16,
    )
]
