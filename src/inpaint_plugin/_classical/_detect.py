"""Compiled kernels of :func:`inpaint_plugin.detect` on 2-D planes.

They compute what ``scipy.ndimage`` filters compute (``mode="reflect"``: ``d c b a | a b c d``), in
one pass per plane and in parallel over rows, instead of one full-image pass (and temporary) per
statistic: on a 2048² float image the detector went from about 22 s to about 2 s.

- :func:`neighbour_stats`: per pixel, the largest, second largest, smallest and second smallest of
  its 8 neighbours;
- :func:`median7` / :func:`median7_at`: the median of the 7x7 window (everywhere / at given pixels);
- :func:`line_scores`: the signed deviation of each pixel beyond both neighbouring lines (distance 1
  and 2, edges repeated), see ``_detect._line_scores``.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["line_scores", "median7", "median7_at", "neighbour_stats"]


@numba.njit(inline="always")
def _reflect(i, n):
    # scipy's "reflect": -1 -> 0, -2 -> 1, n -> n - 1, n + 1 -> n - 2 (n >= 1)
    if n == 1:
        return 0
    period = 2 * n
    i = i % period
    if i < 0:
        i += period
    return i if i < n else period - 1 - i


@numba.njit(parallel=True, cache=True, nogil=True)
def neighbour_stats(x):
    """``(top, second_top, bottom, second_bottom)`` of the 8 neighbours of each pixel of a 2-D float64
    plane (one pass instead of four filters)."""
    h, w = x.shape
    cols = np.empty(w + 2, np.int64)  # reflected column indices, computed once
    for k in range(w + 2):
        cols[k] = _reflect(k - 1, w)
    top = np.empty((h, w))
    top2 = np.empty((h, w))
    bot = np.empty((h, w))
    bot2 = np.empty((h, w))
    for r in numba.prange(h):
        for c in range(w):
            t1 = -np.inf
            t2 = -np.inf
            b1 = np.inf
            b2 = np.inf
            for dr in range(-1, 2):
                rr = _reflect(r + dr, h)
                for dc in range(-1, 2):
                    if dr == 0 and dc == 0:
                        continue
                    v = x[rr, cols[c + dc + 1]]
                    if v > t1:
                        t2 = t1
                        t1 = v
                    elif v > t2:
                        t2 = v
                    if v < b1:
                        b2 = b1
                        b1 = v
                    elif v < b2:
                        b2 = v
            top[r, c] = t1
            top2[r, c] = t2
            bot[r, c] = b1
            bot2[r, c] = b2
    return top, top2, bot, bot2


@numba.njit(inline="always")
def _select(a, n, k):
    """The k-th smallest of ``a[:n]`` (partially reorders ``a``): quickselect, Lomuto-free."""
    lo = 0
    hi = n - 1
    while hi > lo:
        pivot = a[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@numba.njit(parallel=True, cache=True, nogil=True)
def median7_at(x, rows, cols):
    """The 7x7 median (scipy's reflect mode) of a 2-D float64 plane at the pixels ``(rows, cols)``."""
    h, w = x.shape
    n = rows.shape[0]
    out = np.empty(n)
    for i in numba.prange(n):
        win = np.empty(49)
        k = 0
        for dr in range(-3, 4):
            rr = _reflect(rows[i] + dr, h)
            for dc in range(-3, 4):
                win[k] = x[rr, _reflect(cols[i] + dc, w)]
                k += 1
        out[i] = _select(win, 49, 24)
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def median7(x):
    """The median of the 7x7 window of each pixel of a 2-D float64 plane (scipy's reflect mode)."""
    h, w = x.shape
    cols = np.empty(w + 6, np.int64)  # reflected column indices, computed once
    for k in range(w + 6):
        cols[k] = _reflect(k - 3, w)
    out = np.empty((h, w))
    for r in numba.prange(h):
        win = np.empty(49)
        band = np.empty((7, w + 6))  # the 7 rows of the window, columns reflected: contiguous reads
        for d in range(7):
            rr = _reflect(r + d - 3, h)
            for k in range(w + 6):
                band[d, k] = x[rr, cols[k]]
        for c in range(w):
            k = 0
            for d in range(7):
                for dc in range(7):
                    win[k] = band[d, c + dc]
                    k += 1
            out[r, c] = _select(win, 49, 24)
    return out


@numba.njit(inline="always")
def _beyond(a, b):
    # a, b: differences to the lines before and after; the deviation beyond both, signed (0 if between)
    if a > 0 and b > 0:
        return min(a, b)
    if a < 0 and b < 0:
        return max(a, b)
    return 0.0


@numba.njit(parallel=True, cache=True, nogil=True)
def line_scores(x, axis):
    """Signed deviation of each pixel of a 2-D float64 plane beyond both neighbouring lines along
    ``axis`` (0: rows are compared with the rows above and below), neighbours at distance (1, 1),
    (1, 2) and (2, 1), edges repeated; the largest in magnitude is kept (the first on ties)."""
    h, w = x.shape
    n = h if axis == 0 else w
    out = np.zeros((h, w))
    if n < 3:
        return out
    for r0 in numba.prange(h):
        r = np.int64(r0)  # prange's index may be unsigned: mixed with int64 it would become a float
        for c in range(w):
            i = r if axis == 0 else c
            v = x[r, c]
            best = 0.0
            for pair in range(3):
                ib = i - (2 if pair == 2 else 1)
                ia = i + (2 if pair == 1 else 1)
                if ib < 0:
                    ib = 0
                if ia > n - 1:
                    ia = n - 1
                if axis == 0:
                    s = _beyond(v - x[ib, c], v - x[ia, c])
                else:
                    s = _beyond(v - x[r, ib], v - x[r, ia])
                if abs(s) > abs(best):
                    best = s
            out[r, c] = best
    return out
