"""Least-squares prediction fill: an interpolation stencil learned from the image, then a sparse solve.

Biharmonic inpainting minimises ``sum_q (x_q - mean of the 4 neighbours of q)^2`` over the hole
pixels, i.e. the error of one fixed predictor. Natural images are better predicted by a stencil that
follows the local structure (an edge predicts along itself). So, per tile of the image:

1. learn a stencil ``a`` (the ``(2r+1)^2 - 1`` neighbours of a pixel) by ridge regression on the
   image's own known pixels around the tile: every known pixel whose neighbours are all known is a
   training sample ``x_p ~ sum_j a_j x_{p+o_j}`` (all channels share the stencil). The ridge pulls
   ``a`` towards the 4-neighbour mean, and ``sum_j a_j = 1`` is enforced (constants are predicted
   exactly), so a tile without enough training data gets the biharmonic stencil back;
2. fill the holes with the values that minimise the prediction error ``sum_q (x_q - sum_j a_j(q)
   x_{q+o_j})^2`` over every pixel ``q`` whose prediction involves a hole pixel (its stencil lies in
   the image), with ``a(q)`` the stencil of ``q``'s tile: a sparse linear least-squares problem in the
   hole pixels, solved through its normal equations (sparse LU, one factorisation for all channels).

This is the autoregressive (linear-prediction) interpolation of missing samples (Janssen, Veldhuis &
Vries 1986, for audio), with a two-sided, locally learned image predictor as in least-squares edge-
directed interpolation (Li & Orchard 2001). With the fixed 4-neighbour stencil it is exactly the
biharmonic fill of ``_bilaplace`` away from the image border.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["lsp_fill", "stencil_offsets"]


def stencil_offsets(radius: int) -> np.ndarray:
    """``(J, 2)`` offsets of the ``(2 radius + 1)^2 - 1`` neighbours (raster order, centre excluded).

    Parameters
    ----------
    radius : int
        Stencil radius.

    Returns
    -------
    ndarray of int, shape (J, 2)
    """
    r = np.arange(-radius, radius + 1)
    off = np.array([(dy, dx) for dy in r for dx in r if dy or dx], dtype=np.int64)
    return off


def _shifted(img: np.ndarray, dy: int, dx: int, pad: int) -> np.ndarray:
    """``img`` (padded by ``pad`` with edge values) read at ``(y + dy, x + dx)`` for every pixel."""
    h, w = img.shape[:2]
    return img[pad + dy:pad + dy + h, pad + dx:pad + dx + w]


@njit(cache=True, nogil=True)
def _cell_grams(img, train, offsets, a0, cell):
    """Per ``cell`` x ``cell`` block: Gram matrix ``(J, J)``, right-hand side ``(J,)`` and sample count of
    the regression ``x_p - a0 . n_p ~ d . n_p`` over its training pixels ``p`` and all channels."""
    h, w, nchan = img.shape
    nj = offsets.shape[0]
    ncy, ncx = (h + cell - 1) // cell, (w + cell - 1) // cell
    gram = np.zeros((ncy, ncx, nj, nj))
    rhs = np.zeros((ncy, ncx, nj))
    count = np.zeros((ncy, ncx))
    nb = np.empty(nj)
    for y in range(h):
        for x in range(w):
            if not train[y, x]:
                continue
            cy, cx = y // cell, x // cell
            count[cy, cx] += nchan
            for c in range(nchan):
                t = img[y, x, c]
                for j in range(nj):
                    v = img[y + offsets[j, 0], x + offsets[j, 1], c]
                    nb[j] = v
                    t -= a0[j] * v
                for j in range(nj):
                    rhs[cy, cx, j] += nb[j] * t
                    for k in range(j, nj):
                        gram[cy, cx, j, k] += nb[j] * nb[k]
    for cy in range(ncy):
        for cx in range(ncx):
            for j in range(nj):
                for k in range(j):
                    gram[cy, cx, j, k] = gram[cy, cx, k, j]
    return gram, rhs, count


def _fit_stencils(img, train, offsets, tile, context, lam):
    """Per tile ``(ty, tx)``: the learned stencil ``(J,)``; returns ``(nty, ntx, J)``.

    The statistics are summed per cell of ``gcd(tile, context)`` pixels, and a tile's window (the tile
    and ``context`` pixels around it) is a sum of cells.
    """
    h, w, _ = img.shape
    nj = len(offsets)
    a0 = np.where(np.abs(offsets).sum(axis=1) == 1, 0.25, 0.0)
    cell = int(np.gcd(tile, context)) if context else tile
    gram, rhs, count = _cell_grams(img, train, offsets, a0, cell)
    # 2-D prefix sums over the cells, so each tile window is four look-ups
    def prefix(a):
        out = np.zeros((a.shape[0] + 1, a.shape[1] + 1) + a.shape[2:])
        out[1:, 1:] = a.cumsum(axis=0).cumsum(axis=1)
        return out

    pg, pr, pc = prefix(gram), prefix(rhs), prefix(count)
    ncy, ncx = count.shape
    nty, ntx = -(-h // tile), -(-w // tile)
    ty, tx = np.arange(nty), np.arange(ntx)
    k, c = tile // cell, context // cell
    y0 = np.clip(ty * k - c, 0, ncy)[:, None]
    y1 = np.clip((ty + 1) * k + c, 0, ncy)[:, None]
    x0 = np.clip(tx * k - c, 0, ncx)[None, :]
    x1 = np.clip((tx + 1) * k + c, 0, ncx)[None, :]

    def window(p):
        return p[y1, x1] - p[y0, x1] - p[y1, x0] + p[y0, x0]

    g, r, n = window(pg), window(pr), window(pc)  # (nty, ntx, J, J), (nty, ntx, J), (nty, ntx)
    scale = np.trace(g, axis1=2, axis2=3) / nj
    ok = (n >= 2 * nj) & (scale > 0)
    scale = np.where(ok, scale, 1.0)
    ones = np.ones(nj)
    # ridge towards a0 and sum(d) = 0 (the stencil sums to one) as a heavy penalty
    system = g + (lam * scale)[..., None, None] * np.eye(nj) + (1e6 * scale)[..., None, None] * np.outer(ones, ones)
    d = np.linalg.solve(system, r[..., None])[..., 0]
    return np.where(ok[..., None], a0 + d, a0)


def lsp_fill(image: np.ndarray, mask: np.ndarray, radius: int = 1, tile: int = 16, context: int = 8,
             lam: float = 0.05, beta: float = 0.0) -> np.ndarray:
    """Fill ``image[mask]`` (``(H, W, C)`` float) by least-squares prediction (see the module docs).

    Parameters
    ----------
    image : ndarray, shape (H, W, C)
        Float image (the engine centres and scales it).
    mask : ndarray of bool, shape (H, W)
        True = hole.
    radius : int
        Stencil radius: ``(2 radius + 1)**2 - 1`` neighbours.
    tile : int
        Side of the tiles that get a stencil of their own.
    context : int
        Known pixels this far around a tile are used to fit its stencil.
    lam : float
        Ridge weight pulling each stencil towards the 4-neighbour mean.
    beta : float
        Weight of the 4-neighbour-mean (biharmonic) predictor next to the learned one.

    Returns
    -------
    ndarray
        float64, shape (H, W, C), the holes filled.
    """
    from scipy import ndimage, sparse
    from scipy.sparse.linalg import splu

    img = np.asarray(image, dtype=np.float64)
    h, w, nchan = img.shape
    offsets = stencil_offsets(radius)
    nj = len(offsets)
    r = radius
    # training pixels: known, with every stencil neighbour inside the image and known
    inside = np.zeros((h, w), bool)
    inside[r:h - r, r:w - r] = True
    fp = np.ones((2 * r + 1, 2 * r + 1), bool)
    near_hole = ndimage.binary_dilation(mask, structure=fp)
    known_full = inside & ~near_hole
    stencils = _fit_stencils(np.ascontiguousarray(img), known_full, offsets, tile, context, lam)

    # equations: pixels q whose prediction involves a hole pixel, for the learned stencil and (weight
    # beta) for the 4-neighbour mean; neighbours outside the image are dropped and the rest rescaled
    idx = np.full(h * w, -1, np.int64)
    hole = np.flatnonzero(mask)
    idx[hole] = np.arange(len(hole))
    rows_q = np.flatnonzero(near_hole)
    qy, qx = np.divmod(rows_q, w)
    a0 = np.where(np.abs(offsets).sum(axis=1) == 1, 0.25, 0.0)
    flat = img.reshape(-1, nchan)
    blocks_a, blocks_b = [], []
    for weight, coef_q in ((1.0, stencils[qy // tile, qx // tile]), (beta, np.broadcast_to(a0, (len(rows_q), nj)))):
        if weight <= 0:
            continue
        ny = qy[:, None] + offsets[None, :, 0]
        nx = qx[:, None] + offsets[None, :, 1]
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        coef = np.where(ok, coef_q, 0.0)
        tot = coef.sum(axis=1)
        keep = tot > 0.5
        coef = coef[keep] / tot[keep, None]
        rq = rows_q[keep]
        npix = np.where(ok[keep], ny[keep] * w + nx[keep], 0)
        cols_pix = np.concatenate([rq[:, None], npix], axis=1)  # (nq, J + 1)
        vals = np.sqrt(weight) * np.concatenate([np.ones((len(rq), 1)), -coef], axis=1)
        unk = idx[cols_pix]
        is_unk = (unk >= 0) & (vals != 0)
        blocks_b.append(-np.einsum("qk,qkc->qc", np.where(is_unk, 0.0, vals), flat[cols_pix]))
        row_ids = np.broadcast_to(np.arange(len(rq))[:, None], unk.shape)
        blocks_a.append(sparse.csr_matrix((vals[is_unk], (row_ids[is_unk], unk[is_unk])),
                                          shape=(len(rq), len(hole))))
    a = sparse.vstack(blocks_a).tocsr()
    rhs = np.concatenate(blocks_b, axis=0)
    at = a.T.tocsr()
    normal = (at @ a).tocsc()
    # a tiny pull to the known mean keeps pixels no equation reaches (never in practice) determined
    eps = 1e-9 * max(float(normal.diagonal().max()), 1.0)
    normal = normal + eps * sparse.identity(len(hole), format="csc")
    mean = flat[~mask.reshape(-1)].mean(axis=0)
    sol = splu(normal, permc_spec="MMD_AT_PLUS_A").solve(np.ascontiguousarray(at @ rhs + eps * mean[None, :]))
    out = img.copy()
    out.reshape(-1, nchan)[hole] = sol
    return out
