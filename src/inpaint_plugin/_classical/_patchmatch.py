"""Exemplar-based hole filling: multi-scale expectation-maximisation over a PatchMatch field.

The method follows Wexler, Shechtman & Irani, "Space-time completion of video" (PAMI 2007), with
the nearest-neighbour field (NNF) found by PatchMatch (Barnes, Shechtman, Finkelstein & Goldman,
SIGGRAPH 2009):

1. A pyramid is built by halving the image with a mask-aware ``[1, 5, 10, 10, 5, 1]`` binomial
   filter; a coarse pixel is a hole only when its whole 6 x 6 footprint is, so thin scratches and
   scattered dead pixels vanish from coarse levels instead of swallowing them. The number of levels
   follows the hole size (:func:`auto_levels`).
2. At the coarsest level with holes, they are initialised by Telea's fast marching fill; at finer
   levels by bilinear upsampling of the coarser result.
3. *Targets* are the pixels whose patch overlaps the hole; *sources* the patches fully inside the
   image without hole pixels. The NNF starts from the coarser NNF (offsets doubled) or, without one,
   from the nearest source, which is already a good match for small holes.
4. EM iterations alternate
   - *search*: PatchMatch propagation and random search (sweeps in alternating scan order: two in
     the first iteration of a level, one later) for the source patch with the smallest sum of
     squared differences over all channels; after the first iteration only targets whose patch
     changed noticeably are searched again, and
   - *vote*: every hole pixel becomes the weighted mean of what the matched source patches of all
     targets covering it put there, a patch weighing ``exp(-d / (2 sigma^2))`` with ``d`` its mean
     squared difference and ``sigma^2`` the 75th percentile of ``d`` (Wexler's similarity weight);
   until the fill stops changing or the iteration budget of the level is spent.

Everything runs in float32 on images rescaled per channel to the [0, 1] range of their known pixels,
so any channel count and value range works; the random search draws from a private xorshift
generator seeded by ``seed``, so results are reproducible.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["auto_levels", "patchmatch_inpaint"]

#: EM stops early at a level once the mean absolute change of the hole pixels (in units of the
#: known range of each channel) falls below this ...
_TOL = 5e-4
#: ... or once no patch changed by more than this anywhere (same units). Later EM iterations only
#: search again for the targets whose patch changed by more than this in the previous vote.
_ACTIVE = 0.01
#: PatchMatch sweeps (alternating scan order) in the first EM iteration of a level and in the later ones.
_SWEEPS_FIRST = 2
_SWEEPS_LATER = 1
#: Percentile of the patch distances used as ``2 sigma^2`` scale of the vote weights (Wexler et al.).
_SIGMA_PERCENTILE = 75
#: Below this many fully known source patches a level also accepts patches with hole pixels.
_MIN_SOURCES = 25


# --- random numbers ------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _rand(state):
    """Uniform float in [0, 1) from the xorshift64* generator whose state is ``state[0]``."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return ((x * np.uint64(2685821657736338717)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def _seed_state(seed: int) -> np.ndarray:
    """A non-zero generator state derived from ``seed`` (splitmix64 finaliser)."""
    z = (int(seed) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return np.array([z or 1], dtype=np.uint64)


# --- patch distance, search and vote -------------------------------------------------------------

@njit(cache=True, nogil=True)
def _patch_ssd(img, ty, tx, sy, sx, r, bound):
    """Sum of squared differences between the patches centred at ``(ty, tx)`` and ``(sy, sx)``.

    Target offsets falling outside the image are skipped (the source patch is always inside).
    Stops early and returns a value ``> bound`` once the partial sum exceeds ``bound``.
    """
    h, w, nc = img.shape
    y0 = max(-r, -ty)
    y1 = min(r, h - 1 - ty)
    x0 = max(-r, -tx)
    x1 = min(r, w - 1 - tx)
    s = 0.0
    for dy in range(y0, y1 + 1):
        for dx in range(x0, x1 + 1):
            for c in range(nc):
                d = img[ty + dy, tx + dx, c] - img[sy + dy, sx + dx, c]
                s += d * d
        if s > bound:
            return s
    return s


@njit(cache=True, nogil=True)
def _all_ssd(img, tys, txs, nnf, r, dist):
    """Fill ``dist[k]`` with the exact patch distance of target ``k`` to its current match."""
    for k in range(tys.shape[0]):
        ty = tys[k]
        tx = txs[k]
        dist[k] = _patch_ssd(img, ty, tx, nnf[k, 0], nnf[k, 1], r, np.inf)


@njit(cache=True, nogil=True)
def _search(img, tys, txs, tindex, nnf, dist, valid, r, passes, first_pass, state, active):
    """PatchMatch propagation + random search for the ``active`` targets, ``passes`` sweeps.

    Even sweeps run in scan order and propagate from the left and upper neighbours, odd sweeps in
    reverse order from the right and lower neighbours; the random search then samples windows of
    half the previous size around the best match, starting from the whole image (Barnes et al. 2009).
    """
    h, w, _ = img.shape
    n = tys.shape[0]
    ylo, yhi = r, h - 1 - r
    xlo, xhi = r, w - 1 - r
    for sweep in range(first_pass, first_pass + passes):
        forward = sweep % 2 == 0
        step = 1 if forward else -1
        for kk in range(n):
            k = kk if forward else n - 1 - kk
            if not active[k]:
                continue
            ty = tys[k]
            tx = txs[k]
            by = nnf[k, 0]
            bx = nnf[k, 1]
            bd = dist[k]
            # propagation: the neighbour's match shifted by one pixel
            for axis in range(2):
                ny = ty - step if axis == 0 else ty
                nx = tx - step if axis == 1 else tx
                if ny < 0 or ny >= h or nx < 0 or nx >= w:
                    continue
                nk = tindex[ny, nx]
                if nk < 0:
                    continue
                cy = nnf[nk, 0] + (ty - ny)
                cx = nnf[nk, 1] + (tx - nx)
                if cy < ylo or cy > yhi or cx < xlo or cx > xhi or not valid[cy, cx]:
                    continue
                if cy == by and cx == bx:
                    continue
                d = _patch_ssd(img, ty, tx, cy, cx, r, bd)
                if d < bd:
                    by, bx, bd = cy, cx, d
            # random search around the current best, halving the window
            rad = float(max(h, w))
            while rad >= 1.0:
                cy = by + int(np.floor((2.0 * _rand(state) - 1.0) * rad + 0.5))
                cx = bx + int(np.floor((2.0 * _rand(state) - 1.0) * rad + 0.5))
                cy = min(max(cy, ylo), yhi)
                cx = min(max(cx, xlo), xhi)
                if valid[cy, cx] and not (cy == by and cx == bx):
                    d = _patch_ssd(img, ty, tx, cy, cx, r, bd)
                    if d < bd:
                        by, bx, bd = cy, cx, d
                rad *= 0.5
            nnf[k, 0] = by
            nnf[k, 1] = bx
            dist[k] = bd


@njit(cache=True, nogil=True)
def _vote(img, mask, tys, txs, nnf, weight, r):
    """Set every hole pixel to the weighted mean of what the matched source patches put there."""
    h, w, nc = img.shape
    acc = np.zeros((h, w, nc), np.float64)
    wacc = np.zeros((h, w), np.float64)
    for k in range(tys.shape[0]):
        ty = tys[k]
        tx = txs[k]
        sy = nnf[k, 0]
        sx = nnf[k, 1]
        wk = weight[k]
        for dy in range(max(-r, -ty), min(r, h - 1 - ty) + 1):
            for dx in range(max(-r, -tx), min(r, w - 1 - tx) + 1):
                y = ty + dy
                x = tx + dx
                if not mask[y, x]:
                    continue
                for c in range(nc):
                    acc[y, x, c] += wk * img[sy + dy, sx + dx, c]
                wacc[y, x] += wk
    for y in range(h):
        for x in range(w):
            if mask[y, x] and wacc[y, x] > 0.0:
                for c in range(nc):
                    img[y, x, c] = acc[y, x, c] / wacc[y, x]


@njit(cache=True, nogil=True)
def _upsample_nnf(coarse_nnf, coarse_index, tys, txs, valid, near_y, near_x, r):
    """Initial fine NNF: each target inherits its coarse parent's match, offsets doubled.

    Targets without a coarse parent target, or whose inherited source is not valid, start from
    the valid source nearest to them (``near_y``, ``near_x``).
    """
    h, w = valid.shape
    hc, wc = coarse_index.shape
    n = tys.shape[0]
    nnf = np.empty((n, 2), np.int64)
    for k in range(n):
        ty = tys[k]
        tx = txs[k]
        cy = min(ty // 2, hc - 1)
        cx = min(tx // 2, wc - 1)
        ck = coarse_index[cy, cx]
        nnf[k, 0] = near_y[ty, tx]
        nnf[k, 1] = near_x[ty, tx]
        if ck >= 0:
            sy = 2 * coarse_nnf[ck, 0] + (ty - 2 * cy)
            sx = 2 * coarse_nnf[ck, 1] + (tx - 2 * cx)
            if r <= sy < h - r and r <= sx < w - r and valid[sy, sx]:
                nnf[k, 0] = sy
                nnf[k, 1] = sx
    return nnf


# --- pyramid and orchestration (numpy) -----------------------------------------------------------

_KERNEL = np.array([1.0, 5.0, 10.0, 10.0, 5.0, 1.0])


def _downsample(img: np.ndarray, mask: np.ndarray):
    """Halve ``img`` (H, W, C) and ``mask`` by a mask-aware binomial filter.

    A coarse pixel is the normalised ``[1, 5, 10, 10, 5, 1]``-weighted mean of the known pixels of
    its 6 x 6 footprint and a hole pixel only when none is known, so thin or scattered holes vanish
    from the coarse levels.
    """
    from scipy.ndimage import correlate1d

    known = (~mask).astype(np.float64)
    num = img * known[..., None]
    den = known
    for axis in (0, 1):
        # the 6-tap kernel centred between pixels 2i and 2i+1: taps 2i-2 .. 2i+3
        num = correlate1d(num, _KERNEL, axis=axis, mode="constant", origin=-1)
        den = correlate1d(den, _KERNEL, axis=axis, mode="constant", origin=-1)
    num = num[::2, ::2]
    den = den[::2, ::2]
    cmask = den <= 1e-9
    out = num / np.where(cmask, 1.0, den)[..., None]
    return out.astype(np.float32), cmask


def _upsample(coarse: np.ndarray, shape) -> np.ndarray:
    """Bilinear upsampling of a (h, w, C) image by two, to ``shape``."""
    from scipy.ndimage import zoom

    up = zoom(coarse, (2.0, 2.0, 1.0), order=1, mode="nearest", grid_mode=True)
    return up[: shape[0], : shape[1]]


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Pixels within Chebyshev distance ``r`` of ``mask`` (square patch footprint)."""
    from scipy.ndimage import maximum_filter

    return maximum_filter(mask, size=2 * r + 1, mode="constant", cval=False)


def _valid_sources(mask: np.ndarray, r: int) -> np.ndarray:
    """Centres whose full ``(2r+1)^2`` patch lies inside the image and holds no hole pixel."""
    h, w = mask.shape
    valid = ~_dilate(mask, r)
    valid[:r] = False
    valid[h - r:] = False
    valid[:, :r] = False
    valid[:, w - r:] = False
    return valid


def auto_levels(mask: np.ndarray, patch_size: int) -> int:
    """Number of pyramid levels so that the coarsest hole is about one patch across.

    Halves while the largest distance from a hole pixel to the known region exceeds the patch
    radius and the halved image still holds a few patches (its shorter side >= 4 patch sizes).

    Parameters
    ----------
    mask : numpy.ndarray of bool
        The 2-D hole mask (True = fill) at full resolution.
    patch_size : int
        The side of the square patches, in pixels.

    Returns
    -------
    int
        The number of levels, at least 1 (1 = full resolution only).
    """
    from scipy.ndimage import distance_transform_edt

    r = patch_size // 2
    depth = float(distance_transform_edt(mask).max())
    side = min(mask.shape)
    levels = 1
    while depth > r and side // 2 >= 4 * patch_size:
        depth /= 2.0
        side //= 2
        levels += 1
    return levels


def _max_levels(shape, patch_size: int) -> int:
    """The most levels whose coarsest image still fits one patch."""
    side = min(shape)
    levels = 1
    while side // 2 >= patch_size:
        side //= 2
        levels += 1
    return levels


def _similarity_weights(dist: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Wexler's patch weights ``exp(-d / (2 sigma^2))`` from the per-pixel mean distances ``d``."""
    d = dist / counts
    sigma2 = float(np.percentile(d, _SIGMA_PERCENTILE)) + 1e-12
    return np.exp(-d / (2.0 * sigma2)) + 1e-6


def _sources(lmask: np.ndarray, r: int) -> np.ndarray:
    """The valid source centres of one level (see :func:`_valid_sources`), relaxed if too few.

    With dense holes (e.g. many dead pixels) hardly any patch is fully known; then every patch
    whose centre is known is accepted (its hole pixels hold the current estimate), and failing
    that every patch inside the image.
    """
    valid = _valid_sources(lmask, r)
    if np.count_nonzero(valid) >= _MIN_SOURCES:
        return valid
    inside = np.zeros_like(lmask)
    inside[r:lmask.shape[0] - r, r:lmask.shape[1] - r] = True
    valid = inside & ~lmask
    return valid if valid.any() else inside


def patchmatch_inpaint(image: np.ndarray, mask: np.ndarray, *, patch_size: int = 7, iterations: int = 10,
                       levels: int | None = None, seed: int = 0) -> np.ndarray:
    """Fill ``image[mask]`` by multi-scale PatchMatch EM.

    Parameters
    ----------
    image : ndarray, shape (H, W, C)
        Float image; values under ``mask`` are ignored.
    mask : ndarray of bool, shape (H, W)
        True where to fill; must leave at least one known pixel.
    patch_size : int
        Side of the square patches (odd; an even value is rounded up). Capped to fit the image.
    iterations : int
        Most EM iterations at the finest level; level ``l`` (0 = finest) allows ``iterations + 2 l``
        (coarse levels are cheap and fix the layout). A level stops early once its fill has settled
        (see ``_TOL`` and ``_ACTIVE``), typically after 2 to 5 iterations on natural images;
        regular textures in large holes may use them all to lock in.
    levels : int or None
        Pyramid levels; None picks them from the hole size (:func:`auto_levels`). Capped so that the
        coarsest image still holds a patch.
    seed : int
        Seed of the random search.

    Returns
    -------
    ndarray, shape (H, W, C), float64
        The filled image (known pixels unchanged).
    """
    from scipy.ndimage import distance_transform_edt

    from ._fmm import telea_inpaint

    image = np.asarray(image, dtype=np.float64)
    h, w, nc = image.shape
    if mask.all():
        raise ValueError("mask covers the whole image; patchmatch needs known pixels to copy from")
    r = min(patch_size // 2, (min(h, w) - 1) // 2)
    if r < 1:
        # no patch fits (an image one or two pixels thin): fast marching is the best we can do
        return telea_inpaint(np.ascontiguousarray(image), mask, 3)
    ps = 2 * r + 1
    known = ~mask
    lo = image[known].min(axis=0)
    span = image[known].max(axis=0) - lo
    span = np.where(span > 0, span, 1.0)
    work = ((image - lo) / span).astype(np.float32)
    work[mask] = 0.0

    n_levels = auto_levels(mask, ps) if levels is None else levels
    n_levels = max(1, min(n_levels, _max_levels(mask.shape, ps)))
    pyramid = [(work, mask)]
    for _ in range(n_levels - 1):
        pyramid.append(_downsample(*pyramid[-1]))

    state = _seed_state(seed)
    sweep = 0
    prev_img = prev_nnf = prev_index = None
    for level in range(n_levels - 1, -1, -1):
        img, lmask = pyramid[level]
        img = img.copy()
        if prev_img is not None:
            img[lmask] = _upsample(prev_img, lmask.shape)[lmask]
        if not lmask.any():  # the holes vanished at this scale
            prev_img, prev_nnf, prev_index = img, None, None
            continue
        if prev_img is None:
            img[lmask] = telea_inpaint(img.astype(np.float64), lmask, 5)[lmask]

        target = _dilate(lmask, r)
        tys, txs = (a.astype(np.int64) for a in np.nonzero(target))
        tindex = np.full(lmask.shape, -1, np.int64)
        tindex[tys, txs] = np.arange(tys.size)
        valid = _sources(lmask, r)
        _, (near_y, near_x) = distance_transform_edt(~valid, return_indices=True)
        if prev_nnf is not None:
            nnf = _upsample_nnf(prev_nnf, prev_index, tys, txs, valid, near_y, near_x, r)
        else:
            nnf = np.stack([near_y[tys, txs], near_x[tys, txs]], axis=1).astype(np.int64)
        # patch pixels inside the image, for the per-pixel distance of the weights
        counts = ((np.minimum(tys, r) + np.minimum(lmask.shape[0] - 1 - tys, r) + 1)
                  * (np.minimum(txs, r) + np.minimum(lmask.shape[1] - 1 - txs, r) + 1) * nc).astype(np.float64)

        dist = np.empty(tys.size, np.float64)
        active = np.ones(tys.size, bool)
        for em in range(iterations + 2 * level):
            _all_ssd(img, tys, txs, nnf, r, dist)
            nsw = _SWEEPS_FIRST if em == 0 else _SWEEPS_LATER
            _search(img, tys, txs, tindex, nnf, dist, valid, r, nsw, sweep, state, active)
            sweep += nsw
            before = img[lmask]
            _vote(img, lmask, tys, txs, nnf, _similarity_weights(dist, counts), r)
            delta = np.abs(img[lmask] - before)
            if delta.mean() < _TOL:
                break
            change = np.zeros(lmask.shape, np.float32)
            change[lmask] = delta.max(axis=-1)
            active = _dilate(change, r)[tys, txs] > _ACTIVE
            if not active.any():
                break
        prev_img, prev_nnf, prev_index = img, nnf, tindex

    out = prev_img.astype(np.float64) * span + lo
    out[known] = image[known]
    return out
