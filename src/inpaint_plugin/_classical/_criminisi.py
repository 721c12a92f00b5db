"""Criminisi et al.'s exemplar-based inpainting (numba kernel).

A. Criminisi, P. Perez and K. Toyama, "Region filling and object removal by exemplar-based image
inpainting", IEEE TIP 13(9), 2004. The hole is filled one patch at a time, in priority order:

1. on the fill front (hole pixels 4-adjacent to known or already filled pixels) every pixel ``p``
   gets the priority ``P(p) = C(p) * D(p)``: the confidence ``C(p)`` is the mean confidence of its
   patch (1 for original pixels, inherited by filled ones), the data term
   ``D(p) = |isophote(p) . n(p)| + eps`` measures how strongly an image edge runs into the hole
   (``n`` the front normal, the isophote the largest image gradient in the patch turned by 90
   degrees, all channels combined); ``eps`` keeps flat regions progressing in confidence order;
2. the front pixel with the highest priority is taken and the source patch (fully inside the image,
   only original known pixels) with the smallest sum of squared differences on the patch's already
   known pixels is searched exhaustively, within ``search_radius`` of the target if given;
3. its pixels are copied into the target's hole pixels, which inherit the target's confidence.

Ties are broken by scan order, so the result is deterministic. Values are expected rescaled to
about [0, 1] per channel (``eps`` and the gradients assume that scale).
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["criminisi_inpaint"]

#: added to the data term so that flat regions are filled in confidence (onion-peel) order
_EPS = 1e-3


@njit(cache=True, nogil=True)
def _grad(img, filled, y, x, c):
    """Central (or one-sided) differences of channel ``c`` at a filled pixel from filled neighbours."""
    h, w, _ = img.shape
    gy = 0.0
    gx = 0.0
    up = y > 0 and filled[y - 1, x]
    dn = y < h - 1 and filled[y + 1, x]
    if up and dn:
        gy = 0.5 * (img[y + 1, x, c] - img[y - 1, x, c])
    elif dn:
        gy = img[y + 1, x, c] - img[y, x, c]
    elif up:
        gy = img[y, x, c] - img[y - 1, x, c]
    lf = x > 0 and filled[y, x - 1]
    rt = x < w - 1 and filled[y, x + 1]
    if lf and rt:
        gx = 0.5 * (img[y, x + 1, c] - img[y, x - 1, c])
    elif rt:
        gx = img[y, x + 1, c] - img[y, x, c]
    elif lf:
        gx = img[y, x, c] - img[y, x - 1, c]
    return gy, gx


@njit(cache=True, nogil=True)
def _priority(img, filled, conf, y, x, r):
    """``C(p) * D(p)`` of the front pixel ``(y, x)`` (see the module docstring)."""
    h, w, nc = img.shape
    csum = 0.0
    # front normal: gradient of the "filled" indicator (3 x 3 Sobel), pointing into the hole
    ny = 0.0
    nx = 0.0
    for dy in range(-1, 2):
        for dx in range(-1, 2):
            yy = min(max(y + dy, 0), h - 1)
            xx = min(max(x + dx, 0), w - 1)
            v = 1.0 if filled[yy, xx] else 0.0
            wy = (2.0 if dx == 0 else 1.0) * dy
            wx = (2.0 if dy == 0 else 1.0) * dx
            ny += wy * v
            nx += wx * v
    nn = np.sqrt(ny * ny + nx * nx)
    if nn > 0.0:
        ny /= nn
        nx /= nn
    # isophote: the strongest gradient among the filled pixels of the patch, turned by 90 degrees
    best = -1.0
    data = 0.0
    for yy in range(max(y - r, 0), min(y + r, h - 1) + 1):
        for xx in range(max(x - r, 0), min(x + r, w - 1) + 1):
            if not filled[yy, xx]:
                continue
            csum += conf[yy, xx]
            g2 = 0.0
            dot2 = 0.0
            for c in range(nc):
                gy, gx = _grad(img, filled, yy, xx, c)
                g2 += gy * gy + gx * gx
                # isophote (-gx, gy) in (y, x) order, dotted with the normal
                dd = -gx * ny + gy * nx
                dot2 += dd * dd
            if g2 > best:
                best = g2
                data = np.sqrt(dot2)
    area = (2 * r + 1) * (2 * r + 1)
    return csum / area * (data + _EPS), csum / area


@njit(cache=True, nogil=True)
def _best_source(img, filled, valid_y, valid_x, ty, tx, r, radius):
    """The valid source centre whose patch best matches the filled pixels around ``(ty, tx)``."""
    h, w, nc = img.shape
    y0 = max(-r, -ty)
    y1 = min(r, h - 1 - ty)
    x0 = max(-r, -tx)
    x1 = min(r, w - 1 - tx)
    best = np.inf
    by = valid_y[0]
    bx = valid_x[0]
    for k in range(valid_y.shape[0]):
        sy = valid_y[k]
        sx = valid_x[k]
        if radius >= 0 and (abs(sy - ty) > radius or abs(sx - tx) > radius):
            continue
        s = 0.0
        for dy in range(y0, y1 + 1):
            for dx in range(x0, x1 + 1):
                if not filled[ty + dy, tx + dx]:
                    continue
                for c in range(nc):
                    d = img[ty + dy, tx + dx, c] - img[sy + dy, sx + dx, c]
                    s += d * d
            if s >= best:
                break
        if s < best:
            best = s
            by = sy
            bx = sx
    return by, bx


@njit(cache=True, nogil=True)
def criminisi_inpaint(image, mask, valid_y, valid_x, patch_size, search_radius):
    """Fill ``image[mask]`` patch by patch in priority order.

    Parameters
    ----------
    image : ndarray, shape (H, W, C), float64
        Image scaled to about [0, 1] per channel; values under ``mask`` are ignored.
    mask : ndarray of bool, shape (H, W)
        True where to fill.
    valid_y, valid_x : ndarray of int64
        Centres of the source patches (fully inside the image, no hole pixel), at least one.
    patch_size : int
        Odd patch side.
    search_radius : int
        Only sources within this Chebyshev distance of the target are searched; -1 for all.

    Returns
    -------
    ndarray
        The filled copy of ``image``.
    """
    h, w, nc = image.shape
    r = patch_size // 2
    img = image.copy()
    filled = ~mask
    conf = np.where(mask, 0.0, 1.0)
    prio = np.full((h, w), -1.0)  # priority of front pixels, -1 elsewhere
    pconf = np.zeros((h, w))
    remaining = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                remaining += 1
    # front pixels whose priority must be (re)computed: start with the whole image
    dirty_y0, dirty_y1, dirty_x0, dirty_x1 = 0, h - 1, 0, w - 1
    while remaining > 0:
        for y in range(dirty_y0, dirty_y1 + 1):
            for x in range(dirty_x0, dirty_x1 + 1):
                if filled[y, x]:
                    prio[y, x] = -1.0
                    continue
                front = ((y > 0 and filled[y - 1, x]) or (y < h - 1 and filled[y + 1, x])
                         or (x > 0 and filled[y, x - 1]) or (x < w - 1 and filled[y, x + 1]))
                if front:
                    prio[y, x], pconf[y, x] = _priority(img, filled, conf, y, x, r)
                else:
                    prio[y, x] = -1.0
        best = -1.0
        ty = -1
        tx = -1
        for y in range(h):
            for x in range(w):
                if prio[y, x] > best:
                    best = prio[y, x]
                    ty = y
                    tx = x
        if ty < 0:  # cannot happen while holes remain (the image is connected); stay safe
            break
        sy, sx = _best_source(img, filled, valid_y, valid_x, ty, tx, r, search_radius)
        c_new = pconf[ty, tx]
        for dy in range(max(-r, -ty), min(r, h - 1 - ty) + 1):
            for dx in range(max(-r, -tx), min(r, w - 1 - tx) + 1):
                y = ty + dy
                x = tx + dx
                if filled[y, x]:
                    continue
                for c in range(nc):
                    img[y, x, c] = img[sy + dy, sx + dx, c]
                filled[y, x] = True
                conf[y, x] = c_new
                remaining -= 1
        # priorities change where the patch of a pixel overlaps the updated patch (plus the normal)
        reach = 2 * r + 2
        dirty_y0 = max(ty - reach, 0)
        dirty_y1 = min(ty + reach, h - 1)
        dirty_x0 = max(tx - reach, 0)
        dirty_x1 = min(tx + reach, w - 1)
    return img
