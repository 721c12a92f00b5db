"""Fast solver for biharmonic inpainting (the discretisation of ``skimage.restoration.inpaint_biharmonic``).

The discrete problem
--------------------
Let ``L`` be the nD 5-point (2-D) / 7-point (3-D) Laplacian with *reflecting* edges, the operator of
``scipy.ndimage.laplace``: ``(L u)_p = sum_a [u(p + e_a) + u(p - e_a)] - 2 ndim u(p)`` where an index
outside the image is reflected onto the edge pixel (so a neighbour outside the image drops out together
with one unit of the centre weight). ``L`` is symmetric, hence row ``p`` of ``L @ L`` equals
``laplace(laplace(delta_p))`` -- exactly the stencil scikit-image builds on a ``5**ndim`` window clipped
at the image border (the window's inner edges lie two pixels from the centre, where ``L delta_p`` is
already zero, so clipping the window there changes nothing). The equations are

    (L L u)_p = 0  for every hole pixel p,  with the known pixels fixed,

i.e. ``A x = b`` with ``A = (L L)[hole, hole]`` (symmetric positive definite: ``x^T A x = |L x|^2``) and
``b = -(L L)[hole, known] u_known``.

The solver
----------
The unknowns split into independent blocks (connected components of the graph of ``A``). Small blocks
are stacked into one block-diagonal system and factorised directly (SuperLU; the fill stays inside the
blocks). The large ones are solved together by conjugate gradients preconditioned with a geometric
multigrid W-cycle: vertex-centred coarsening (a coarse node is a hole pixel whose coordinates are all
even), multilinear interpolation ``P`` (weights to coarse nodes that are not in the hole are dropped:
the correction vanishes on known pixels), Galerkin coarse operators ``P^T A P``, one forward
Gauss-Seidel sweep before and one backward sweep after the coarse-grid correction, and a sparse
Cholesky-ordered LU solve on the coarsest level. The cycle is a symmetric operator, so it is a valid CG
preconditioner; its convergence rate does not degrade with the image size, so the cost grows linearly
with the number of hole pixels (a direct factorisation of one large 2-D hole grows like ``n**1.5``:
SuperLU takes ~6 s at 2048^2 with a 10% free-form mask, twice skimage's whole run).

Why a W-cycle with an over-corrected coarse grid: multilinear interpolation is one order short for a
fourth-order operator (the rule ``m_P + m_R > 2 m`` fails), so its coarse functions carry too much
bi-Laplacian energy and the Galerkin correction of smooth errors comes out too small; and thin strokes
degenerate on the coarse levels (a 100-pixel stroke is 6 nodes wide four levels down). Measured at 2048^2
(free-form 10%, error 1e-5 of the range): V-cycle 53 iterations, W-cycle 19, W-cycle with every
coarse-grid correction scaled by ``OMEGA = 1.3`` 12-13 (1.7 diverges). More smoothing sweeps,
cubic interpolation, coarse nodes outside the hole, a direct solve of the boundary band or
re-discretised coarse operators did not help. ``omega < 2`` keeps the two-grid correction a
contraction, but the nested over-corrections are not guaranteed to keep the cycle positive definite:
:func:`pcg` raises :class:`IndefinitePreconditioner` if it meets a non-positive curvature and the
solve is then repeated with ``omega = 1``.

Implementation and cost
-----------------------
Every level keeps its unknowns in a zero-padded grid, so the rows equal to the level's constant stencil
(all but a few near holes' edges) are applied as a stencil and only the others read the CSR matrix.
The kernels work channel-major (one contiguous 1-D grid per channel) and receive the constant stencil
as tuples, so numba compiles one version per stencil length with the offsets and coefficients in
registers (they cannot alias the grid being written); this cut a W-cycle at 2048^2 from 24 to 17 ms.
The Galerkin products are built by a numba kernel that copies the constant coarse stencil into the
rows whose whole support is regular and sums ``P^T A P`` only for the others. A level visit makes
a forward sweep from zero (reading only the earlier unknowns), a pass computing the residual it leaves
(``-U x``, strict upper part: half a residual; fusing it into the sweep was slower), and a backward
sweep that adds the interpolated coarse-grid correction a few grid rows ahead of its front (faster than
a separate pass).

The hole's independent blocks are solved separately, each on its bounding box (smaller grids), and the
large ones in a thread pool: the kernels release the GIL, and unlike numba's parallel loops (tried:
with one core busy with another process the solve took 5x longer with the OpenMP layer, whose threads
spin at barriers) a pool thread that finds no free core just waits. CG starts from the mean of the
known pixels around the block (one iteration fewer than from zero; the stopping rule is relative to
``|b|``, so the accuracy reached is the same).

Measured at 2048^2 with a 10% free-form mask (four blocks of 254k, 98k, 65k and 59k unknowns; wall
seconds on an idle 2-core machine): the largest block 0.45 (assembly 0.035, hierarchy 0.08, CG 0.28:
13 iterations of ~17 ms; the W-cycle costs about three fine-level sweeps' worth of work, dominated by
Gauss-Seidel), all blocks 0.85 on one thread and 0.5 on two. Also measured without gain: a float32
sweep; a full-multigrid start (the interpolated Galerkin solution of the first coarse level is *worse*
than zero in the max norm, bilinear interpolation of a fourth-order problem); an error-based stopping
rule (the error is about 0.3 of the last update, which would save one iteration at most).
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["biharmonic_solve", "assemble"]

#: components with at most this many unknowns are solved with a sparse direct factorisation
DIRECT_MAX = 4000
#: stop coarsening when a level has at most this many unknowns (sparse direct solve there; a larger
#: coarsest level saves the W-cycle's many visits of tiny levels: 2048^2 cycle 57 -> 54 ms vs 1500)
COARSEST_MAX = 8000
#: relative residual at which CG stops. Measured largest difference to scikit-image (relative to the
#: data range): shared bench 5e-7, free-form 10% 1024^2 4e-7, 2048^2 1e-6 (1e-5 with other level
#: counts), 4096^2 7e-6; RTOL 1e-7 gave 3e-5 at 2048^2, too close to the 1e-4 requirement
RTOL = 3e-8
MAXITER = 200
#: over-correction of the coarse-grid corrections (compensates the bilinear interpolation, whose
#: coarse functions carry too much bi-Laplacian energy; 1 is the plain Galerkin correction)
OMEGA = 1.3


# --------------------------------------------------------------------------------------------------
# assembly
# --------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _value_index(j, strides, origin, fstrides):
    """Flat index into the whole image of the box's flat index ``j``."""
    g = 0
    rem = j
    for a in range(strides.shape[0]):
        c = rem // strides[a]
        rem -= c * strides[a]
        g += (c + origin[a]) * fstrides[a]
    return g


@njit(cache=True, nogil=True)
def _assemble_kernel(shape, mask, uid, pix, values, origin, fstrides, soff, scoef):
    """CSR rows of ``(L L)[hole, hole]`` and the right-hand side ``-(L L)[hole, known] u_known``.

    ``shape``: shape of the box the mask lives in (int64); ``mask``: flat bool; ``uid``: flat int32
    unknown number (-1 for known pixels); ``pix``: flat indices of the unknowns (increasing);
    ``values``: ``(npix, C)`` whole image, the box starting at coordinates ``origin`` of it (image
    strides ``fstrides``; the box is the whole image when they agree); ``(soff, scoef)``: the interior
    stencil as increasing flat offsets and coefficients, used for the pixels at least two pixels away
    from the box border (the others build their window clipped with reflecting edges: the box must be
    the image or hold the holes at least two pixels inside its edges).

    Two passes (count the entries of each row, then fill them) so that the only large arrays are the
    CSR arrays themselves.
    """
    nd = shape.shape[0]
    n = pix.shape[0]
    nchan = values.shape[1]
    strides = np.ones(nd, np.int64)
    for a in range(nd - 2, -1, -1):
        strides[a] = strides[a + 1] * shape[a + 1]
    # window of offsets d with |d_a| <= 2, indexed lexicographically (=> increasing flat offsets)
    wsize = 5 ** nd
    wstride = np.ones(nd, np.int64)
    for a in range(nd - 2, -1, -1):
        wstride[a] = wstride[a + 1] * 5
    win = np.zeros(wsize, np.float64)
    coord = np.empty(nd, np.int64)
    qc = np.empty(nd, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    indices = np.empty(0, np.int32)
    data = np.empty(0, np.float64)
    rhs = np.zeros((n, nchan), np.float64)
    for stage in range(2):  # 0: count, 1: fill
        if stage == 1:
            for i in range(n):
                indptr[i + 1] += indptr[i]
            indices = np.empty(indptr[n], np.int32)
            data = np.empty(indptr[n], np.float64)
        for i in range(n):
            p = pix[i]
            rem = p
            inner = True
            for a in range(nd):
                coord[a] = rem // strides[a]
                rem -= coord[a] * strides[a]
                if coord[a] < 2 or coord[a] > shape[a] - 3:
                    inner = False
            k = indptr[i]
            if inner:
                if stage == 0:
                    cnt = 0
                    for t in range(soff.shape[0]):
                        if mask[p + soff[t]]:
                            cnt += 1
                    indptr[i + 1] = cnt
                    continue
                for t in range(soff.shape[0]):
                    j = p + soff[t]
                    if mask[j]:
                        indices[k] = uid[j]
                        data[k] = scoef[t]
                        k += 1
                    else:
                        g = _value_index(j, strides, origin, fstrides)
                        for ch in range(nchan):
                            rhs[i, ch] -= scoef[t] * values[g, ch]
                continue
            win[:] = 0.0
            # L L e_p = sum_q L[p, q] L[q, :]; q runs over p and its in-box axis neighbours
            for qa in range(-1, nd):
                for qs in (-1, 1):
                    if qa == -1 and qs == 1:
                        continue
                    for a in range(nd):
                        qc[a] = coord[a]
                    if qa >= 0:
                        qc[qa] += qs
                        if qc[qa] < 0 or qc[qa] >= shape[qa]:
                            continue
                        wq = 1.0
                    else:
                        wq = 0.0
                        for a in range(nd):
                            wq -= (coord[a] > 0) + (coord[a] < shape[a] - 1)
                    # row q of L: centre -(number of in-box neighbours), neighbours 1
                    cq = 0.0
                    for a in range(nd):
                        cq -= (qc[a] > 0) + (qc[a] < shape[a] - 1)
                    w0 = 0
                    for a in range(nd):
                        w0 += (qc[a] - coord[a] + 2) * wstride[a]
                    win[w0] += wq * cq
                    for a in range(nd):
                        for s in (-1, 1):
                            r = qc[a] + s
                            if r < 0 or r >= shape[a]:
                                continue
                            win[w0 + s * wstride[a]] += wq
            cnt = 0
            for w in range(wsize):
                c = win[w]
                if c == 0.0:
                    continue
                off = 0
                rem = w
                for a in range(nd):
                    d = rem // wstride[a] - 2
                    rem -= (d + 2) * wstride[a]
                    off += d * strides[a]
                j = p + off
                if mask[j]:
                    if stage == 1:
                        indices[k] = uid[j]
                        data[k] = c
                        k += 1
                    cnt += 1
                elif stage == 1:
                    g = _value_index(j, strides, origin, fstrides)
                    for ch in range(nchan):
                        rhs[i, ch] -= c * values[g, ch]
            if stage == 0:
                indptr[i + 1] = cnt
    return indptr, indices, data, rhs


def assemble(values: np.ndarray, mask: np.ndarray, origin=None):
    """The biharmonic system of a ``(*spatial, C)`` image and a boolean mask.

    No copy of ``values`` is made when it is C-contiguous float64.

    Parameters
    ----------
    values : numpy.ndarray of float
        The whole ``(*spatial, C)`` image (hole values are ignored).
    mask : numpy.ndarray of bool
        The holes, over the whole image (``origin=None``) or over a box of it; a box must hold its
        holes at least two pixels inside any edge that is not the image's (its edges are treated as
        the image border).
    origin : sequence of int, optional
        The coordinates of the box's first pixel in the image (default None: the whole image).

    Returns
    -------
    A : scipy.sparse.csr_array
        ``(n, n)``: the bi-Laplacian rows and columns of the ``n`` hole pixels.
    b : numpy.ndarray
        ``(n, C)`` right-hand side (the known values moved over).
    pix : numpy.ndarray
        ``(n,)`` flat indices of the hole pixels in ``mask`` (C order).

    Raises
    ------
    ValueError
        When ``mask`` does not have the image's shape (``origin=None``), or holds too many hole
        pixels for 32-bit indices.
    """
    from scipy import sparse

    full = values.shape[:-1]
    if origin is None:
        if full != mask.shape:
            raise ValueError(f"mask shape {mask.shape} does not match the image's {full}")
        origin = (0,) * mask.ndim
    shape = np.asarray(mask.shape, dtype=np.int64)
    mflat = np.ascontiguousarray(mask).reshape(-1)
    pix = np.flatnonzero(mflat)
    if pix.size >= np.iinfo(np.int32).max:
        raise ValueError(f"mask has too many hole pixels ({pix.size}) for the biharmonic solver")
    uid = np.full(mflat.size, -1, dtype=np.int32)
    uid[pix] = np.arange(pix.size, dtype=np.int32)
    vals = np.ascontiguousarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
    fstrides = np.array([int(np.prod(full[a + 1:])) for a in range(len(full))], dtype=np.int64)
    stencil = bilaplace_stencil(mask.ndim)
    nz = np.argwhere(stencil != 0)
    strides = np.array([int(np.prod(mask.shape[a + 1:])) for a in range(mask.ndim)], dtype=np.int64)
    soff = (nz - 2) @ strides  # argwhere is lexicographic: increasing offsets
    scoef = stencil[tuple(nz.T)]
    indptr, indices, data, rhs = _assemble_kernel(shape, mflat, uid, pix, vals, np.asarray(origin, dtype=np.int64),
                                                  fstrides, soff, scoef)
    a = sparse.csr_array((data, indices, indptr), shape=(pix.size, pix.size))
    return a, rhs, pix


# --------------------------------------------------------------------------------------------------
# geometric multigrid
# --------------------------------------------------------------------------------------------------
#: every level lives on a grid padded by this many zeros (the stencils reach two nodes out)
PAD = 2


# The kernels below work channel-major: every channel's values are a contiguous 1-D array (the work
# grids are ``(C, grid size)``, vectors ``(C, n)``), and a level's constant stencil is passed as tuples
# of offsets and coefficients, which numba compiles per stencil length: the offsets and coefficients
# then live in registers, since they cannot alias the arrays being written (with the stencil in arrays
# and ``(size, C)`` grids, a residual pass took 1.8x as long).


@njit(cache=True, nogil=True, inline="always")
def _stencil_sum(x, p, off, coef):
    """``sum_k coef[k] x[p + off[k]]`` (``off``, ``coef``: tuples) with two partial sums."""
    nk = len(off)
    s0 = 0.0
    s1 = 0.0
    for k in range(0, nk - 1, 2):
        s0 += coef[k] * x[p + off[k]]
        s1 += coef[k + 1] * x[p + off[k + 1]]
    if nk % 2 == 1:
        s0 += coef[nk - 1] * x[p + off[nk - 1]]
    return s0 + s1


@njit(cache=True, nogil=True)
def _prolong_backward(pos, reg, off, coef, c0, indptr, indices, data, diag, reach, p_indptr, p_cpos, p_weight,
                      scale, xcg, xg, b, xout):
    """The coarse-grid correction ``x += scale * P xc`` followed by one backward Gauss-Seidel sweep for
    ``A x = b``, in one pass; the result is written to ``xout`` (``(C, n)``) and to the padded grid ``xg``.

    Regular rows (``reg``) are the level's constant stencil ``(off, coef, c0)`` (``off`` without the
    centre) applied to the grid, whose entries off the unknowns are zero; the other rows come from the
    CSR matrix. Unknown ``i``'s update reads only its neighbours (the old ``x_i`` is not used), so the
    correction of unknown ``m`` is added just before the sweep reaches the first unknown that couples
    to it (grid position ``pos[m] + reach``).
    """
    n = pos.shape[0]
    inv0 = 1.0 / c0
    for ch in range(b.shape[0]):
        x = xg[ch]
        xc = xcg[ch]
        bc = b[ch]
        xo = xout[ch]
        m = n - 1
        for i in range(n - 1, -1, -1):
            p = pos[i]
            while m >= 0 and pos[m] + reach >= p:
                acc = 0.0
                for k in range(p_indptr[m], p_indptr[m + 1]):
                    acc += p_weight[k] * xc[p_cpos[k]]
                x[pos[m]] += scale * acc
                m -= 1
            if reg[i]:
                v = (bc[i] - _stencil_sum(x, p, off, coef)) * inv0
            else:
                acc = bc[i]
                for kk in range(indptr[i], indptr[i + 1]):
                    j = indices[kk]
                    if j != i:
                        acc -= data[kk] * x[pos[j]]
                v = acc / diag[i]
            x[p] = v
            xo[i] = v


@njit(cache=True, nogil=True)
def _forward_from_zero(pos, reg, loff, lcoef, uoff, ucoef, c0, indptr, indices, data, diag, reach, xg, b, rg):
    """One forward Gauss-Seidel sweep for ``A x = b`` from ``x = 0`` (into the padded grid ``xg``) and
    the residual it leaves (into the padded grid ``rg``).

    Regular rows (``reg``) are the level's constant stencil, split into the offsets to earlier
    unknowns ``(loff, lcoef)`` and to later ones ``(uoff, ucoef)``, with centre ``c0``, applied to the
    grid; the other rows come from the CSR matrix. Row ``i`` reads only the unknowns ``j < i``,
    already swept, so ``xg`` need not be zeroed first. The residual of row ``m`` is
    ``-sum_{j > m} a_mj x_j`` (the strict upper part: half a residual).
    """
    n = pos.shape[0]
    inv0 = 1.0 / c0
    for ch in range(b.shape[0]):
        x = xg[ch]
        bc = b[ch]
        r = rg[ch]
        for i in range(n):
            p = pos[i]
            if reg[i]:
                x[p] = (bc[i] - _stencil_sum(x, p, loff, lcoef)) * inv0
            else:
                acc = bc[i]
                for kk in range(indptr[i], indptr[i + 1]):
                    j = indices[kk]
                    if j >= i:
                        break
                    acc -= data[kk] * x[pos[j]]
                x[p] = acc / diag[i]
        # the residual of row m: -sum_{j > m} a_mj x_j (rows j <= m of (D + L) x = b hold exactly); a
        # separate pass, since fusing it into the sweep (while the values are in cache) was slower
        for m in range(n):
            p = pos[m]
            if reg[m]:
                r[p] = -_stencil_sum(x, p, uoff, ucoef)
            else:
                acc = 0.0
                kk = indptr[m + 1] - 1
                while kk >= indptr[m] and indices[kk] > m:
                    acc += data[kk] * x[pos[indices[kk]]]
                    kk -= 1
                r[p] = -acc


@njit(cache=True, nogil=True)
def _residual(pos, reg, off, coef, c0, indptr, indices, data, xg, b, out, mode):
    """``A x`` for ``x`` in the padded grid ``xg`` (``(C, size)``).

    ``mode`` 0: ``out[:, i] = (A x)_i`` (``b`` is not read); 1: ``out[:, i] = b_i - (A x)_i``; 2: the
    same into the padded grid ``out[:, pos[i]]``.
    """
    n = pos.shape[0]
    for ch in range(xg.shape[0]):
        x = xg[ch]
        bc = b[ch]
        o = out[ch]
        for i in range(n):
            p = pos[i]
            if reg[i]:
                acc = c0 * x[p] + _stencil_sum(x, p, off, coef)
            else:
                acc = 0.0
                for kk in range(indptr[i], indptr[i + 1]):
                    acc += data[kk] * x[pos[indices[kk]]]
            if mode == 0:
                o[i] = acc
            elif mode == 1:
                o[i] = bc[i] - acc
            else:
                o[p] = bc[i] - acc


@njit(cache=True, nogil=True)
def _restrict(fpos, hoff, hw, rg, out):
    """``out = P^T r``: each coarse unknown (at fine grid position ``fpos``) gathers the fine residual
    grid ``rg`` (``(C, size)``, zero off the unknowns) with the multilinear hat weights ``(hoff, hw)``
    (tuples)."""
    for ch in range(rg.shape[0]):
        r = rg[ch]
        o = out[ch]
        for i in range(fpos.shape[0]):
            o[i] = _stencil_sum(r, fpos[i], hoff, hw)


@njit(cache=True, nogil=True)
def _scatter(pos, x, xg):
    """``xg[:, pos] = x`` (``x``: ``(C, n)``, ``xg``: ``(C, size)``)."""
    for ch in range(x.shape[0]):
        g = xg[ch]
        v = x[ch]
        for i in range(pos.shape[0]):
            g[pos[i]] = v[i]


@njit(cache=True, nogil=True)
def _regular_rows(pos, uidgrid, offall, coefall, indptr, indices, data, tol):
    """Which CSR rows equal the constant stencil ``(offall, coefall)`` restricted to the unknowns.

    ``offall`` is sorted and includes the centre; ``uidgrid`` maps padded grid positions to unknown
    numbers (increasing with position) or -1.
    """
    n = pos.shape[0]
    reg = np.zeros(n, np.bool_)
    for i in range(n):
        p = pos[i]
        kk = indptr[i]
        end = indptr[i + 1]
        ok = True
        for k in range(offall.shape[0]):
            j = uidgrid[p + offall[k]]
            if j < 0:
                continue
            while kk < end and indices[kk] < j:
                if data[kk] != 0.0:
                    ok = False
                kk += 1
            if kk < end and indices[kk] == j:
                if abs(data[kk] - coefall[k]) > tol:
                    ok = False
                kk += 1
            else:
                ok = False
            if not ok:
                break
        while ok and kk < end:
            if data[kk] != 0.0:
                ok = False
            kk += 1
        reg[i] = ok
    return reg


@njit(cache=True, nogil=True)
def _interpolation_kernel(coords, cgrid, cstrides):
    """CSR rows of the multilinear interpolation (see :func:`_interpolation`)."""
    n, nd = coords.shape
    indptr = np.zeros(n + 1, np.int64)
    indices = np.empty(n << nd, np.int32)
    data = np.empty(n << nd, np.float64)
    odd_axes = np.empty(nd, np.int64)
    k = 0
    for i in range(n):
        base = 0
        nodd = 0
        for a in range(nd):
            c = coords[i, a]
            base += (c >> 1) * cstrides[a]
            if c & 1:
                odd_axes[nodd] = a
                nodd += 1
        w = 0.5 ** nodd
        for bits in range(1 << nodd):
            f = base
            for t in range(nodd):
                if (bits >> t) & 1:
                    f += cstrides[odd_axes[t]]
            cid = cgrid[f]
            if cid >= 0:
                indices[k] = cid
                data[k] = w
                k += 1
        indptr[i + 1] = k
    return indptr, indices[:k], data[:k]


def _interpolation(coords: np.ndarray):
    """Multilinear interpolation onto the unknowns at ``coords`` from the next coarser grid.

    Coarse node ``c`` sits at fine coordinates ``2 c``; the coarse unknowns are the fine unknowns with
    all coordinates even. A fine unknown at an odd coordinate along an axis takes half of each of its
    two neighbouring coarse nodes along that axis; weights to coarse nodes that are not unknowns are
    dropped (the correction vanishes on known pixels).

    Returns ``(P, coarse_coords)``, ``P`` a CSR ``(n_fine, n_coarse)`` matrix (None without coarse nodes).
    """
    from scipy import sparse

    even = ~(coords & 1).any(axis=1)
    ccoords = np.ascontiguousarray(coords[even] >> 1)
    nc = ccoords.shape[0]
    if nc == 0:
        return None, ccoords
    cshape = tuple(int(s) + 2 for s in coords.max(axis=0) // 2)
    cgrid = np.full(int(np.prod(cshape)), -1, dtype=np.int32)
    cstrides = np.array([int(np.prod(cshape[a + 1:])) for a in range(len(cshape))], dtype=np.int64)
    cgrid[ccoords @ cstrides] = np.arange(nc, dtype=np.int32)
    indptr, indices, data = _interpolation_kernel(coords, cgrid, cstrides)
    p = sparse.csr_array((data, indices, indptr), shape=(coords.shape[0], nc))
    return p, ccoords


@njit(cache=True, nogil=True)
def _galerkin_kernel(fpos, hoff, hw, uidgrid, a_indptr, a_indices, a_data, p_indptr, p_indices, p_data,
                     ccoords, interior, f2c, st_off, st_val):
    """CSR rows (sorted) of the Galerkin product ``P^T A P``.

    Coarse unknown ``I`` sits at the fine grid position ``fpos[I]``; its column of ``P`` is the hat
    ``(hoff, hw)`` around it restricted to the fine unknowns (``uidgrid``: padded fine grid -> fine
    unknown number or -1; ``f2c``: fine unknown -> coarse unknown or -1). An ``interior`` row (every
    fine node within four nodes is an unknown with the constant stencil) is the coarse stencil
    ``(st_off`` as fine grid offsets, ``st_val)``; any other row sums ``P[f, I] A[f, g] P[g, J]`` in a
    dense ``5**ndim`` window (every ``J`` lies within two coarse nodes of ``I``).
    """
    nc, nd = ccoords.shape
    wsize = 5 ** nd
    win = np.zeros(wsize, np.float64)
    wcol = np.full(wsize, -1, np.int64)
    cap = nc * min(wsize, 32) + wsize
    indices = np.empty(cap, np.int32)
    data = np.empty(cap, np.float64)
    indptr = np.zeros(nc + 1, np.int64)
    k = 0
    for i in range(nc):
        if k + wsize > cap:
            cap = 2 * cap + wsize
            ni = np.empty(cap, np.int32)
            nv = np.empty(cap, np.float64)
            ni[:k] = indices[:k]
            nv[:k] = data[:k]
            indices = ni
            data = nv
        p0 = fpos[i]
        if interior[i]:
            for t in range(st_off.shape[0]):
                indices[k] = f2c[uidgrid[p0 + st_off[t]]]
                data[k] = st_val[t]
                k += 1
            indptr[i + 1] = k
            continue
        for h in range(hoff.shape[0]):
            f = uidgrid[p0 + hoff[h]]
            if f < 0:
                continue
            for kk in range(a_indptr[f], a_indptr[f + 1]):
                g = a_indices[kk]
                v = hw[h] * a_data[kk]
                for m in range(p_indptr[g], p_indptr[g + 1]):
                    j = p_indices[m]
                    w = 0
                    for ax in range(nd):
                        w = w * 5 + (ccoords[j, ax] - ccoords[i, ax] + 2)
                    win[w] += v * p_data[m]
                    wcol[w] = j
        for w in range(wsize):
            if wcol[w] >= 0:
                if win[w] != 0.0:
                    indices[k] = wcol[w]
                    data[k] = win[w]
                    k += 1
                win[w] = 0.0
                wcol[w] = -1
        indptr[i + 1] = k
    return indptr, indices[:k].copy(), data[:k].copy()


def _coarse_stencil(stencil: np.ndarray) -> np.ndarray:
    """Galerkin coarsening of a constant ``5**ndim`` stencil with the multilinear interpolation."""
    from scipy.signal import convolve

    nd = stencil.ndim
    hat = np.ones((1,) * nd)
    for a in range(nd):
        shape = [1] * nd
        shape[a] = 3
        hat = hat * np.array([0.5, 1.0, 0.5]).reshape(shape)
    full = convolve(convolve(stencil, hat), hat)  # 9**ndim, centre 4
    return np.ascontiguousarray(full[(slice(0, None, 2),) * nd])


def bilaplace_stencil(ndim: int) -> np.ndarray:
    """The ``5**ndim`` bi-Laplacian stencil away from the image border."""
    from scipy.ndimage import laplace

    delta = np.zeros((5,) * ndim)
    delta[(2,) * ndim] = 1.0
    return laplace(laplace(delta))


class _Level:
    """One multigrid level: the CSR matrix plus its grid layout and constant interior stencil."""

    def __init__(self, a, coords: np.ndarray, stencil: np.ndarray):
        a = a.tocsr()
        a.sort_indices()
        self.a = a
        self.n = a.shape[0]
        self.coords = coords
        self.indptr = a.indptr
        self.indices = a.indices
        self.data = a.data
        self.diag = a.diagonal()
        self.stencil = stencil
        nd = coords.shape[1]
        gshape = tuple(int(s) + 1 + 2 * PAD for s in coords.max(axis=0))
        gstrides = np.array([int(np.prod(gshape[a + 1:])) for a in range(nd)], dtype=np.int64)
        self.size = int(np.prod(gshape))
        self.gstrides = gstrides
        self.pos = (coords + PAD) @ gstrides
        # the stencil as sorted flat offsets
        nz = np.argwhere(stencil != 0)
        offs = (nz - 2) @ gstrides
        order = np.argsort(offs)
        offall = offs[order]
        coefall = stencil[tuple(nz[order].T)]
        centre = offall == 0
        self.c0 = float(coefall[centre][0])
        self.off = np.ascontiguousarray(offall[~centre])
        self.coef = np.ascontiguousarray(coefall[~centre])
        self.first_up = int(np.searchsorted(self.off, 0))  # offsets to later unknowns start here
        self.off_t = tuple(int(v) for v in self.off)  # the kernels' stencil arguments (see above)
        self.coef_t = tuple(float(v) for v in self.coef)
        self.lower_t = (self.off_t[: self.first_up], self.coef_t[: self.first_up])
        self.upper_t = (self.off_t[self.first_up:], self.coef_t[self.first_up:])
        self.reach = int(2 * gstrides.sum())  # largest grid offset between coupled unknowns
        uidgrid = np.full(self.size, -1, dtype=np.int32)
        uidgrid[self.pos] = np.arange(self.n, dtype=np.int32)
        self.gshape = gshape
        self.uidgrid = uidgrid
        tol = 1e-10 * abs(self.c0)
        self.reg = _regular_rows(self.pos, uidgrid, offall, coefall, self.indptr, self.indices, self.data, tol)
        self.buffers = {}

    def galerkin(self, p, even: np.ndarray, cstencil: np.ndarray):
        """The coarse matrix ``P^T A P`` (CSR) for the interpolation ``p`` from the unknowns at
        ``even``; ``cstencil`` is its constant interior stencil."""
        from scipy import sparse
        from scipy.ndimage import minimum_filter

        nd = self.coords.shape[1]
        fpos = np.ascontiguousarray(self.pos[even])
        hat = np.argwhere(np.ones((3,) * nd)) - 1
        regular = np.zeros(self.size, np.uint8)
        regular[self.pos[self.reg]] = 1
        interior = minimum_filter(regular.reshape(self.gshape), size=9, mode="constant").reshape(-1)[fpos]
        f2c = np.full(self.n, -1, dtype=np.int32)
        f2c[even] = np.arange(int(even.sum()), dtype=np.int32)
        nz = np.argwhere(cstencil != 0)  # lexicographic: increasing coarse unknown numbers
        st_off = (2 * (nz - 2)) @ self.gstrides
        st_val = cstencil[tuple(nz.T)]
        ccoords = np.ascontiguousarray(self.coords[even] >> 1)
        indptr, indices, data = _galerkin_kernel(
            fpos, hat @ self.gstrides, np.ldexp(1.0, -np.abs(hat).sum(axis=1)), self.uidgrid, self.indptr,
            self.indices, self.data, p.indptr, p.indices, p.data, ccoords, interior.astype(np.bool_), f2c,
            st_off, st_val)
        return sparse.csr_array((data, indices, indptr), shape=(p.shape[1], p.shape[1]))

    def link(self, coarse: "_Level", p, even: np.ndarray):
        """Precompute the grid transfers to ``coarse`` (whose unknowns are ours at ``even``; ``p`` the
        interpolation matrix)."""
        nd = self.coords.shape[1]
        self.fpos = np.ascontiguousarray(self.pos[even])
        hat = np.argwhere(np.ones((3,) * nd)) - 1
        self.hoff = tuple(int(v) for v in hat @ self.gstrides)
        self.hw = tuple(float(v) for v in np.ldexp(1.0, -np.abs(hat).sum(axis=1)))
        self.p_indptr = p.indptr
        self.p_cpos = coarse.pos[p.indices]
        self.p_weight = p.data

    def grid(self, nchan: int, which: int = 0) -> np.ndarray:
        """Zero-initialised padded work grid ``which`` (0: solution, 1: residual), ``(nchan, size)``;
        entries off ``pos`` are never written and stay zero."""
        key = (nchan, which)
        if key not in self.buffers:
            self.buffers[key] = np.zeros((nchan, self.size))
        return self.buffers[key]

    def args(self):
        return self.pos, self.reg, self.off_t, self.coef_t, self.c0, self.indptr, self.indices, self.data


class Multigrid:
    """Geometric multigrid hierarchy for the biharmonic system on a set of unknowns.

    Parameters
    ----------
    a : the SPD system matrix (CSR), unknowns in C order of their coordinates.
    coords : ``(n, ndim)`` integer pixel coordinates of the unknowns (any common origin).
    omega : over-correction factor of every coarse-grid correction (``0 < omega < 2``).
    """

    def __init__(self, a, coords: np.ndarray, omega: float = OMEGA):
        from scipy.sparse.linalg import splu

        self.omega = omega
        coords = np.ascontiguousarray(coords - coords.min(axis=0), dtype=np.int64)
        stencil = bilaplace_stencil(coords.shape[1])
        self.levels = [_Level(a, coords, stencil)]
        while self.levels[-1].n > COARSEST_MAX:
            lvl = self.levels[-1]
            p, ccoords = _interpolation(lvl.coords)
            if p is None or ccoords.shape[0] >= lvl.n:
                break
            even = ~(lvl.coords & 1).any(axis=1)
            cstencil = _coarse_stencil(lvl.stencil)
            coarse = _Level(lvl.galerkin(p, even, cstencil), ccoords, cstencil)
            lvl.link(coarse, p, even)
            lvl.uidgrid = None  # only needed for the Galerkin product
            self.levels.append(coarse)
        # SuperLU rather than a dense LAPACK Cholesky: no BLAS threads to fight over on a busy machine
        self.coarse_lu = splu(self.levels[-1].a.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                              options={"SymmetricMode": True})

    def cycle(self, b: np.ndarray) -> np.ndarray:
        """One symmetric W-cycle for ``A x = b`` (``b``: ``(n, C)``) from ``x = 0``; returns ``x``.

        Gauss-Seidel forward, coarse-grid correction(s) scaled by ``omega``, Gauss-Seidel backward.
        Every level between the finest and the coarsest is visited twice per visit of the level above
        (the second visit corrects the residual the first one left); the coarsest is solved exactly.
        """
        return self._cycle(np.ascontiguousarray(b.T), 0).T

    def _cycle(self, b: np.ndarray, level: int) -> np.ndarray:
        """:meth:`cycle` on level ``level`` for a channel-major ``b`` (``(C, n)``); returns ``x``
        (``(C, n)``) and leaves it in the level's work grid too."""
        lvl = self.levels[level]
        nchan = b.shape[0]
        if level == len(self.levels) - 1:
            x = self.coarse_lu.solve(np.ascontiguousarray(b.T)).reshape(b.shape[1], nchan)
            x = np.ascontiguousarray(x.T)
            if level > 0:
                _scatter(lvl.pos, x, lvl.grid(nchan))
            return x
        xg = lvl.grid(nchan)
        rg = lvl.grid(nchan, 1)
        _forward_from_zero(lvl.pos, lvl.reg, *lvl.lower_t, *lvl.upper_t, lvl.c0, lvl.indptr, lvl.indices,
                           lvl.data, lvl.diag, lvl.reach, xg, b, rg)
        nxt = self.levels[level + 1]
        rc = np.empty((nchan, nxt.n))
        _restrict(lvl.fpos, lvl.hoff, lvl.hw, rg, rc)
        xc = self._cycle(rc, level + 1)
        xcg = nxt.grid(nchan)
        scale = self.omega
        if level + 1 < len(self.levels) - 1:
            xc *= self.omega
            _scatter(nxt.pos, xc, xcg)
            rc2 = np.empty_like(rc)
            _residual(*nxt.args(), xcg, rc, rc2, 1)
            xc2 = self._cycle(rc2, level + 1)
            xc2 *= self.omega
            xc += xc2
            _scatter(nxt.pos, xc, xcg)
            scale = 1.0
        x = np.empty_like(b)
        _prolong_backward(*lvl.args(), lvl.diag, lvl.reach, lvl.p_indptr, lvl.p_cpos, lvl.p_weight, scale, xcg,
                          xg, b, x)
        return x

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """``A x`` on the finest level (``x``: ``(n, C)``)."""
        lvl = self.levels[0]
        xt = np.ascontiguousarray(x.T)
        xg = lvl.grid(xt.shape[0])
        _scatter(lvl.pos, xt, xg)
        out = np.empty_like(xt)
        _residual(*lvl.args(), xg, xt, out, 0)
        return out.T


class IndefinitePreconditioner(ArithmeticError):
    """Raised by :func:`pcg` when ``r^T M r <= 0`` or ``p^T A p <= 0`` before convergence."""


def pcg(matvec, b: np.ndarray, precond, rtol: float = RTOL, maxiter: int = MAXITER,
        x0: np.ndarray | None = None) -> np.ndarray:
    """Preconditioned conjugate gradients on every column of ``b`` at once.

    Each column has its own step sizes; iteration stops when every column's residual norm is at most
    ``rtol`` times its right-hand side's norm (so a good initial guess ``x0`` saves iterations without
    changing the accuracy reached). Raises :class:`IndefinitePreconditioner` when a column that has
    not converged meets a non-positive curvature (the preconditioner is not SPD).
    """
    bnorm = np.linalg.norm(b, axis=0)
    goal = rtol * bnorm
    if x0 is None:
        x = np.zeros_like(b)
        r = b.copy()
    else:
        x = np.array(x0, dtype=b.dtype, copy=True).reshape(b.shape)
        r = b - matvec(x)
    if not (np.linalg.norm(r, axis=0) > goal).any():
        return x
    z = precond(r)
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    for _ in range(maxiter):
        active = np.linalg.norm(r, axis=0) > goal
        if not active.any():
            break
        q = matvec(p)
        pq = np.einsum("ij,ij->j", p, q)
        if ((pq <= 0) & active).any() or ((rz <= 0) & active).any():
            raise IndefinitePreconditioner("non-positive curvature in preconditioned CG")
        alpha = np.where(active, rz / np.where(active, pq, 1.0), 0.0)
        x += alpha * p
        r -= alpha * q
        z = precond(r)
        rz_new = np.einsum("ij,ij->j", r, z)
        beta = np.where(active, rz_new / np.where(active, rz, 1.0), 0.0)
        rz = rz_new
        p *= beta
        p += z
    return x


def _solve_direct(values: np.ndarray, mask: np.ndarray):
    """``(flat pixel indices, solution)`` of the blocks in ``mask``, stacked into one direct solve."""
    from scipy.sparse.linalg import splu

    a, b, pix = assemble(values, mask)
    lu = splu(a.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return pix, lu.solve(b).reshape(pix.size, -1)


def _ring_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel mean of the known pixels that touch the hole ``mask`` (the initial guess of CG)."""
    from scipy import ndimage as ndi

    ring = ndi.binary_dilation(mask, ndi.generate_binary_structure(mask.ndim, 1)) & ~mask
    if not ring.any():
        return np.zeros(values.shape[-1])
    return values[ring].mean(axis=0)


def _solve_multigrid(values: np.ndarray, mask: np.ndarray, box: tuple) -> np.ndarray:
    """The solution at ``mask`` (C order, a boolean array over ``values[box]``) of one block too large
    for a direct solve: CG preconditioned with the multigrid W-cycle, started from the mean of the
    known pixels around the hole."""
    a, b, pix = assemble(values, mask, origin=tuple(s.start for s in box))
    coords = np.stack(np.unravel_index(pix, mask.shape), axis=1)
    mg = Multigrid(a, coords)
    x0 = np.broadcast_to(_ring_mean(values[box], mask), b.shape)
    try:
        return pcg(mg.matvec, b, mg.cycle, x0=x0)
    except IndefinitePreconditioner:  # over-correction too strong for this hole: plain W-cycle
        mg.omega = 1.0
        return pcg(mg.matvec, b, mg.cycle, x0=x0)


def biharmonic_solve(values: np.ndarray, mask: np.ndarray, threads: int | None = None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """The biharmonic solution at the hole pixels.

    The hole splits into independent blocks; the small ones are solved together by one sparse direct
    factorisation, every large one on its own bounding box (plus the two-pixel reach of the stencil)
    by multigrid-preconditioned CG. The large blocks run in a thread pool, largest first: the numba
    kernels release the GIL, and a thread that finds no free core merely waits its turn (no spinning).

    Parameters
    ----------
    values : numpy.ndarray of float
        ``(*spatial, C)`` image; the values at the hole pixels are ignored.
    mask : numpy.ndarray of bool
        ``spatial``: the holes.
    threads : int, optional
        How many independent blocks are solved at once (default None:
        :func:`inpaint_plugin._config.num_threads`); the result does not depend on it.
    out : numpy.ndarray, optional
        A ``(npix, C)`` array (e.g. a flat view of ``values``) whose hole rows receive the solution.

    Returns
    -------
    numpy.ndarray
        Without ``out``: the solution as ``(n_hole, C)`` float64, hole pixels in C order. With
        ``out``: ``out`` itself, its hole rows written.
    """
    from scipy import ndimage as ndi

    from .._config import num_threads

    # Independent blocks: two hole pixels are coupled when the stencil (|d|_1 <= 2) links them, i.e.
    # when their cross-shaped neighbourhoods overlap; labelling the dilated mask finds (unions of) blocks.
    cross = ndi.generate_binary_structure(mask.ndim, 1)
    labels, nlab = ndi.label(ndi.binary_dilation(mask, cross), cross)
    sizes = np.bincount(labels[mask], minlength=nlab + 1)
    is_small = (sizes <= DIRECT_MAX) & (sizes > 0)
    tasks = []
    if is_small.any():
        small = is_small[labels] & mask
        tasks.append((int(sizes[is_small].sum()), lambda: _solve_direct(values, small)))
    for lab, box in enumerate(ndi.find_objects(labels), 1):
        if box is None or sizes[lab] <= DIRECT_MAX:
            continue
        # the box of the labelled (dilated) block has a one-pixel ring of known pixels around the hole;
        # one more pixel gives the stencil's two-pixel reach, so every hole pixel is at least two pixels
        # from a cut edge and the cut is invisible to the discretisation (at the image border the box
        # stops there, as the image does)
        box = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, mask.shape))
        tasks.append((int(sizes[lab]), lambda box=box, lab=lab: _solve_box(values, mask, labels, box, lab)))
    tasks.sort(key=lambda t: -t[0])  # largest first: the best greedy schedule

    if out is None:
        pix = np.flatnonzero(mask.reshape(-1))
        x = np.empty((pix.size, values.shape[-1]))

        def store(result):
            where, xb = result
            x[np.searchsorted(pix, where)] = xb
    else:
        x = out

        def store(result):
            where, xb = result
            out[where] = xb

    nthreads = min(num_threads() if threads is None else max(int(threads), 1), len(tasks))
    if nthreads <= 1:
        for _, run in tasks:
            store(run())
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=nthreads, thread_name_prefix="inpaint-biharmonic") as pool:
            for result in pool.map(lambda t: t[1](), tasks):
                store(result)
    return x


def _solve_box(values: np.ndarray, mask: np.ndarray, labels: np.ndarray, box: tuple, lab: int):
    """One large block (label ``lab``) solved on its bounding ``box``; returns its flat pixel indices in
    the whole image and the solution."""
    bmask = (labels[box] == lab) & mask[box]
    xb = _solve_multigrid(values, bmask, box)
    local = np.nonzero(bmask)
    glob = tuple(idx + s.start for idx, s in zip(local, box))
    return np.ravel_multi_index(glob, mask.shape), xb
