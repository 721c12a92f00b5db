"""Telea's fast-marching inpainting (numba kernel).

A. Telea, "An image inpainting technique based on the fast marching method", Journal of Graphics
Tools 9(1), 2004. The hole pixels are visited in order of their distance ``T`` to the hole boundary,
computed on the fly by the fast marching method (Sethian 1996); a pixel gets its value the moment the
marching front reaches it, as a weighted mean over the already known pixels ``q`` within ``radius``:

    I(p) = sum_q w(p, q) [I(q) + grad I(q) . (p - q)] / sum_q w(p, q)
    w(p, q) = dir * dst * lev,  dir = |N(p) . (p - q)| / |p - q|,  dst = 1 / |p - q|^2,
    lev = 1 / (1 + |T(p) - T(q)|)

with ``N`` the unit front normal ``grad T``. ``T`` is also marched ``radius`` pixels *outside* the hole
(stored negative), as in the paper, so that the normal and ``lev`` are smooth across the boundary.

One deliberate difference to the paper: the first-order term ``grad I(q)`` is taken from the original
known pixels only (one-sided or central differences of known pixels); pixels filled earlier contribute
their value only. Extrapolating from gradients of filled pixels compounds the errors of every ring and
diverges on large holes (measured: hole PSNR below 0 dB on 128 x 128 boxes of the shared bench), while
this form keeps the paper's sharp first-order boundary behaviour (exact on linear ramps next to the
boundary, +2.8 dB over OpenCV's ``INPAINT_TELEA`` on dead pixels) and stays a bounded weighted mean
inside large holes.

All channels are filled in one march (they share the weights). The kernels are compiled with
``cache=True`` so the first call in a fresh environment pays the compilation once.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["telea_inpaint"]

_KNOWN = 0
_BAND = 1
_INSIDE = 2


@njit(cache=True, nogil=True)
def _heap_push(keys, vals, size, key, val):
    """Push ``(key, val)`` onto the binary min-heap stored in ``keys[:size]``/``vals[:size]``."""
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        # ties are broken by the pixel index so the visiting order never depends on anything else
        if keys[parent] < keys[i] or (keys[parent] == keys[i] and vals[parent] <= vals[i]):
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(keys, vals, size):
    """Remove the smallest entry; returns ``(key, val, new_size)``."""
    key = keys[0]
    val = vals[0]
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and (keys[right] < keys[left] or (keys[right] == keys[left] and vals[right] < vals[left])):
            child = right
        if keys[i] < keys[child] or (keys[i] == keys[child] and vals[i] <= vals[child]):
            break
        keys[child], keys[i] = keys[i], keys[child]
        vals[child], vals[i] = vals[i], vals[child]
        i = child
    return key, val, size


@njit(cache=True, nogil=True)
def _solve_pair(flag, t, i1, j1, i2, j2):
    """Eikonal update from one vertical neighbour ``(i1, j1)`` and one horizontal ``(i2, j2)``."""
    h, w = flag.shape
    ok1 = 0 <= i1 < h and flag[i1, j1] != _INSIDE
    ok2 = 0 <= j2 < w and flag[i2, j2] != _INSIDE
    if ok1 and ok2:
        a = t[i1, j1]
        b = t[i2, j2]
        if abs(a - b) >= 1.0:
            return 1.0 + min(a, b)
        return 0.5 * (a + b + np.sqrt(2.0 - (a - b) * (a - b)))
    if ok1:
        return 1.0 + t[i1, j1]
    if ok2:
        return 1.0 + t[i2, j2]
    return np.inf


@njit(cache=True, nogil=True)
def _solve(flag, t, i, j):
    """Arrival time of pixel ``(i, j)`` from its non-inside 4-neighbours."""
    return min(
        min(_solve_pair(flag, t, i - 1, j, i, j - 1), _solve_pair(flag, t, i + 1, j, i, j - 1)),
        min(_solve_pair(flag, t, i - 1, j, i, j + 1), _solve_pair(flag, t, i + 1, j, i, j + 1)),
    )


@njit(cache=True, nogil=True)
def _known_diff(img, mask, i, j, c, di, dj):
    """Derivative of channel ``c`` at known pixel ``(i, j)`` along ``(di, dj)`` from known pixels only."""
    h, w = mask.shape
    ip, jp = i + di, j + dj
    im, jm = i - di, j - dj
    okp = 0 <= ip < h and 0 <= jp < w and not mask[ip, jp]
    okm = 0 <= im < h and 0 <= jm < w and not mask[im, jm]
    if okp and okm:
        return 0.5 * (img[ip, jp, c] - img[im, jm, c])
    if okp:
        return img[ip, jp, c] - img[i, j, c]
    if okm:
        return img[i, j, c] - img[im, jm, c]
    return 0.0


@njit(cache=True, nogil=True)
def _outside_distance(mask, flag, t, radius):
    """March ``T`` from the hole boundary into the known region up to ``radius + 1``; store ``-T``.

    ``flag`` and ``t`` are the arrays of the main march (boundary pixels are BAND with ``T = 0``);
    they are left unchanged apart from ``t`` of the known pixels reached.
    """
    h, w = mask.shape
    # in this march only the boundary is known; hole pixels are never entered
    oflag = np.full((h, w), _INSIDE, np.uint8)
    for i in range(h):
        for j in range(w):
            if flag[i, j] == _BAND:
                oflag[i, j] = _KNOWN
    keys = np.empty(h * w, np.float64)
    vals = np.empty(h * w, np.int64)
    size = 0
    for i in range(h):
        for j in range(w):
            if flag[i, j] == _BAND:
                size = _heap_push(keys, vals, size, 0.0, i * w + j)
    limit = radius + 1.0
    while size > 0:
        key, v, size = _heap_pop(keys, vals, size)
        if key > limit:
            break
        i0 = v // w
        j0 = v - i0 * w
        for q in range(4):
            i = i0 + (-1 if q == 0 else (1 if q == 1 else 0))
            j = j0 + (-1 if q == 2 else (1 if q == 3 else 0))
            if i < 0 or j < 0 or i >= h or j >= w or oflag[i, j] != _INSIDE or mask[i, j]:
                continue
            d = _solve(oflag, t, i, j)
            t[i, j] = d
            oflag[i, j] = _BAND
            size = _heap_push(keys, vals, size, d, i * w + j)
    for i in range(h):
        for j in range(w):
            if not mask[i, j] and flag[i, j] != _BAND:
                if oflag[i, j] == _INSIDE:
                    t[i, j] = -(limit + 1.0)
                else:
                    t[i, j] = -t[i, j]


@njit(cache=True, nogil=True)
def _axis_diff_t(t, flag, i, j, di, dj):
    """Derivative of the arrival time ``t`` at ``(i, j)`` along ``(di, dj)`` from non-inside neighbours."""
    h, w = flag.shape
    ip, jp = i + di, j + dj
    im, jm = i - di, j - dj
    okp = 0 <= ip < h and 0 <= jp < w and flag[ip, jp] != _INSIDE
    okm = 0 <= im < h and 0 <= jm < w and flag[im, jm] != _INSIDE
    if okp and okm:
        return 0.5 * (t[ip, jp] - t[im, jm])
    if okp:
        return t[ip, jp] - t[i, j]
    if okm:
        return t[i, j] - t[im, jm]
    return 0.0


@njit(cache=True, nogil=True)
def telea_inpaint(image, mask, radius):
    """Fill ``image[mask]`` by Telea's fast marching method.

    Parameters
    ----------
    image : ndarray, shape (H, W, C), float64
        Image; values under ``mask`` are ignored.
    mask : ndarray of bool, shape (H, W)
        True where to fill; every hole pixel must be 4-connected to a known pixel (true whenever
        the mask is not full).
    radius : int
        Radius (pixels) of the neighbourhood each filled pixel is computed from, >= 1.

    Returns
    -------
    ndarray
        A filled copy of ``image``.
    """
    h, w, nc = image.shape
    out = image.copy()
    flag = np.full((h, w), _KNOWN, np.uint8)
    t = np.zeros((h, w), np.float64)
    keys = np.empty(h * w, np.float64)
    vals = np.empty(h * w, np.int64)
    size = 0
    for i in range(h):
        for j in range(w):
            if mask[i, j]:
                flag[i, j] = _INSIDE
                t[i, j] = np.inf
    # the initial front: known pixels 4-adjacent to the hole, at T = 0
    for i in range(h):
        for j in range(w):
            if mask[i, j]:
                continue
            if ((i > 0 and mask[i - 1, j]) or (i < h - 1 and mask[i + 1, j])
                    or (j > 0 and mask[i, j - 1]) or (j < w - 1 and mask[i, j + 1])):
                flag[i, j] = _BAND
                size = _heap_push(keys, vals, size, 0.0, i * w + j)
    _outside_distance(mask, flag, t, radius)

    r2max = radius * radius
    acc = np.zeros(nc, np.float64)
    while size > 0:
        _, v, size = _heap_pop(keys, vals, size)
        i0 = v // w
        j0 = v - i0 * w
        flag[i0, j0] = _KNOWN
        for q in range(4):
            i = i0 + (-1 if q == 0 else (1 if q == 1 else 0))
            j = j0 + (-1 if q == 2 else (1 if q == 3 else 0))
            if i < 0 or j < 0 or i >= h or j >= w or flag[i, j] != _INSIDE:
                continue
            ti = _solve(flag, t, i, j)
            t[i, j] = ti
            # unit front normal N = grad T at (i, j), from the already marched neighbours
            gx = _axis_diff_t(t, flag, i, j, 0, 1)
            gy = _axis_diff_t(t, flag, i, j, 1, 0)
            gn = np.sqrt(gx * gx + gy * gy)
            if gn > 0.0:
                gx /= gn
                gy /= gn
            acc[:] = 0.0
            wsum = 0.0
            for k in range(max(i - radius, 0), min(i + radius, h - 1) + 1):
                for l in range(max(j - radius, 0), min(j + radius, w - 1) + 1):
                    if flag[k, l] == _INSIDE:
                        continue
                    ry = float(i - k)
                    rx = float(j - l)
                    r2 = ry * ry + rx * rx
                    if r2 > r2max:
                        continue
                    # a tiny floor keeps pixels along the front usable (as OpenCV does)
                    dirw = max(abs(rx * gx + ry * gy) / np.sqrt(r2), 0.01) if gn > 0.0 else 1.0
                    wgt = dirw / r2 / (1.0 + abs(t[k, l] - ti))
                    wsum += wgt
                    if mask[k, l]:  # filled earlier: zero-order only (see the module docstring)
                        for c in range(nc):
                            acc[c] += wgt * out[k, l, c]
                    else:
                        for c in range(nc):
                            dx = _known_diff(image, mask, k, l, c, 0, 1)
                            dy = _known_diff(image, mask, k, l, c, 1, 0)
                            acc[c] += wgt * (out[k, l, c] + dx * rx + dy * ry)
            for c in range(nc):
                out[i, j, c] = acc[c] / wsum
            flag[i, j] = _BAND
            size = _heap_push(keys, vals, size, ti, i * w + j)
    return out
