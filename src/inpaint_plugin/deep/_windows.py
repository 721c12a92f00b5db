"""Windows of an image fed to a network: overlapping tiles blended with ramps, crops around holes, and
windows planned around the holes by estimated cost (:func:`plan_holes`, ``resolution="auto"``).

``predict(image, mask) -> filled`` is any callable that fills one window (see ``_run.Predictor``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["crop_windows", "plan_holes", "plan_windows", "resize", "run_crops", "run_plan", "run_tiles", "run_windows",
           "tile_boxes", "tile_starts", "window_weights"]


def resize(t, size):
    """Bilinear (antialiased when shrinking) resize of a (B, C, h, w) tensor to ``size``.

    Parameters
    ----------
    t : torch.Tensor
        ``(B, C, h, w)``.
    size : tuple of int
        ``(height, width)`` wanted.

    Returns
    -------
    torch.Tensor
        ``(B, C, *size)``; ``t`` itself when it already has that size.
    """
    import torch.nn.functional as F

    if tuple(t.shape[-2:]) == tuple(size):
        return t
    shrink = size[0] < t.shape[-2] or size[1] < t.shape[-1]
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)


def tile_starts(length: int, tile: int, stride: int) -> list:
    """Tile start offsets covering ``[0, length)`` with the last tile flush with the end.

    Parameters
    ----------
    length : int
        Length of the axis, in pixels.
    tile : int
        Tile side.
    stride : int
        Distance between tile starts.

    Returns
    -------
    list of int
        Sorted, distinct start offsets.
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride)) + [length - tile]
    return sorted(set(starts))


def _predict_all(predict, windows, progress, done: int, total: int):
    """Yield ``(index, filled)`` for ``windows`` = ``[(image, mask), ...]``, in batches when ``predict``
    has a ``many`` method (:class:`~._run.Predictor`); ``progress(done, total)`` after each batch."""
    many = getattr(predict, "many", None)
    step = predict.per_batch(windows[0][1].shape) if many and windows else 1
    for start in range(0, len(windows), step):
        chunk = windows[start : start + step]
        outs = many(chunk) if many else [predict(*chunk[0])]
        yield from enumerate(outs, start)
        if progress is not None:
            progress(done + start + len(chunk), total)


def tile_boxes(write, tile: int, overlap: int) -> list:
    """``(r0, c0, th, tw)`` of the overlapping tiles (see :func:`run_tiles`) holding ``write`` pixels.

    Parameters
    ----------
    write : ndarray of bool, shape (H, W)
        The pixels the tiles must cover.
    tile : int
        Tile side (clipped to the image).
    overlap : int
        Overlap of neighbouring tiles, in pixels.

    Returns
    -------
    list of tuple
        ``(r0, c0, th, tw)`` per tile.
    """
    h, w = write.shape
    th, tw = min(tile, h), min(tile, w)
    stride = max(1, tile - overlap)
    return [(r0, c0, th, tw) for r0 in tile_starts(h, th, stride) for c0 in tile_starts(w, tw, stride)
            if write[r0 : r0 + th, c0 : c0 + tw].any()]


def run_tiles(predict, image, mask, tile: int, overlap: int, write=None, progress=None, done: int = 0,
              total=None) -> np.ndarray:
    """Overlapping tiles blended with linear ramps; only tiles holding ``write`` pixels (default: all
    holes) are run, and only those pixels are written.

    Parameters
    ----------
    predict : callable
        ``predict(image, mask) -> filled`` for one window (a :class:`~._run.Predictor`).
    image : ndarray, shape (H, W, 3)
        Float image in [0, 1].
    mask : ndarray of bool, shape (H, W)
        True = hole.
    tile : int
        Tile side.
    overlap : int
        Overlap of neighbouring tiles (the width of the blending ramps).
    write : ndarray of bool, optional
        The pixels to fill (default: ``mask``).
    progress : callable, optional
        ``progress(done + tiles run, total)`` after each batch of tiles; it may raise to cancel.
    done : int
        Units of work done before these tiles (for ``progress``).
    total : int, optional
        Total units of work (default: the number of tiles).

    Returns
    -------
    ndarray
        A copy of ``image`` with the ``write`` pixels filled.
    """
    write = mask if write is None else write
    boxes = tile_boxes(write, tile, overlap)
    total = len(boxes) if total is None else total
    acc = np.zeros(image.shape, np.float64)
    wsum = np.zeros(mask.shape, np.float64)

    def ramp(n):
        i = np.arange(n, dtype=np.float64)
        r = np.minimum(i + 1, n - i) / max(1, overlap)
        return np.clip(r, 1.0 / max(1, overlap), 1.0)

    windows = [(image[r0 : r0 + th, c0 : c0 + tw], mask[r0 : r0 + th, c0 : c0 + tw]) for r0, c0, th, tw in boxes]
    for i, out in _predict_all(predict, windows, progress, done, total):
        r0, c0, th, tw = boxes[i]
        win = (slice(r0, r0 + th), slice(c0, c0 + tw))
        wt = np.outer(ramp(th), ramp(tw))
        acc[win] += out * wt[..., None]
        wsum[win] += wt
    result = image.copy()
    result[write] = (acc[write] / wsum[write][:, None]).astype(image.dtype)
    return result


def _place(center: float, size: int, length: int) -> tuple:
    """``(start, size)`` of a window of ``size`` (at most ``length``) centred on ``center`` and shifted
    inside ``[0, length)``."""
    size = min(size, length)
    start = round(center - size / 2)
    return max(0, min(start, length - size)), size


def _classify_holes(mask: np.ndarray, side: int, margin: int) -> tuple:
    """Sort the holes (8-connected) by size: ``(labels, small, thin, large)``.

    ``small``: ``(row0, col0, row1, col1, label)`` of the holes whose box plus margin fits in ``side``;
    ``thin``: bool mask of the larger holes that are thin (twice their largest distance to a known
    pixel, plus margin, fits in ``side``: scratches, stripes); ``large``: one window ``(r0, r1, c0, c1,
    write_mask)`` of about 1.5x its size plus margin (at least ``side``), centred on it, for each other hole.
    """
    from scipy import ndimage

    h, w = mask.shape
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    small, large = [], []
    thin = np.zeros(mask.shape, bool)

    for idx, (rs, cs) in enumerate(ndimage.find_objects(labels), start=1):
        bh, bw = rs.stop - rs.start, cs.stop - cs.start
        if max(bh, bw) + 2 * margin <= side:
            small.append((rs.start, cs.start, rs.stop, cs.stop, idx))
            continue
        own = np.pad(labels[rs, cs] == idx, 1)
        if 2 * ndimage.distance_transform_edt(own).max() + 2 * margin <= side:
            thin[rs, cs] |= own[1:-1, 1:-1]
            continue
        size = max(side, math.ceil(max(bh, bw) * 1.5) + 2 * margin)
        r0, sh = _place((rs.start + rs.stop) / 2, size, h)
        c0, sw = _place((cs.start + cs.stop) / 2, size, w)
        large.append((r0, r0 + sh, c0, c0 + sw, labels[r0:r0 + sh, c0:c0 + sw] == idx))
    return labels, small, thin, large


def crop_windows(mask: np.ndarray, side: int, margin: int) -> tuple:
    """Plan the crops: ``(windows, thin)`` covering every hole with ``margin`` context.

    ``windows`` is a list of ``(r0, r1, c0, c1, write_mask)``; ``write_mask`` marks the hole pixels that
    window is responsible for. Holes whose box plus margin fits in ``side`` are grouped greedily (in
    bands of rows, then left to right) into windows of ``side`` x ``side`` (clipped to the image).
    Larger holes that are thin (twice their largest distance to a known pixel, plus margin, fits in
    ``side``: scratches, stripes) are returned in the boolean mask ``thin``, to be filled by overlapping
    tiles at full resolution. Other large holes get their own window of about 1.5x their size plus
    margin, centred on them (resized to the network). Windows inside another one of at most ``side``
    (or an identical one) are merged into it. An image not larger than ``side`` is a single window.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        True = hole.
    side : int
        Side of the network's windows.
    margin : int
        Context kept around each hole, in pixels.

    Returns
    -------
    tuple
        ``(windows, thin)`` as described above.
    """
    h, w = mask.shape
    if h <= side and w <= side:  # the whole image is one window at full resolution
        return [(0, h, 0, w, mask.copy())], np.zeros(mask.shape, bool)
    labels, small, thin, windows = _classify_holes(mask, side, margin)

    # small holes: bands of rows starting at the topmost remaining hole; in each band, windows placed
    # left to right starting at the leftmost remaining hole of the band; a hole joins a window when its
    # box plus margin (clipped to the image) lies inside
    def inside(lo, hi, start, size, length):
        return max(lo - margin, 0) >= start and min(hi + margin, length) <= start + size

    remaining = sorted(small)
    while remaining:
        r0, sh = _place(remaining[0][0] - margin + side / 2, side, h)
        band = sorted((c for c in remaining if inside(c[0], c[2], r0, sh, h)), key=lambda c: c[1])
        taken = set()
        while band:
            c0, sw = _place(band[0][1] - margin + side / 2, side, w)
            members = [c[4] for c in band if inside(c[1], c[3], c0, sw, w)]
            taken.update(members)
            band = [c for c in band if c[4] not in taken]
            windows.append((r0, r0 + sh, c0, c0 + sw, np.isin(labels[r0:r0 + sh, c0:c0 + sw], members)))
        remaining = [c for c in remaining if c[4] not in taken]

    # a window inside another one that is run at full resolution (not larger than `side`), or inside an
    # identical one, is merged into it: one network run instead of two
    merged: list[tuple[int, int, int, int, np.ndarray]] = []
    for r0, r1, c0, c1, write in sorted(windows, key=lambda t: (t[1] - t[0]) * (t[3] - t[2]), reverse=True):
        for target in merged:
            t0, t1, u0, u1, twrite = target
            same = (t0, t1, u0, u1) == (r0, r1, c0, c1)
            native = t1 - t0 <= side and u1 - u0 <= side
            if t0 <= r0 and r1 <= t1 and u0 <= c0 and c1 <= u1 and (same or native):
                twrite[r0 - t0:r1 - t0, c0 - u0:c1 - u0] |= write
                break
        else:
            merged.append((r0, r1, c0, c1, write.copy()))
    return merged, thin


def run_crops(predict, image, mask, side: int, margin: int, progress=None) -> np.ndarray:
    """Fill the holes with the windows of :func:`crop_windows` (thin holes: :func:`run_tiles`).

    Parameters
    ----------
    predict : callable
        ``predict(image, mask) -> filled`` for one window (a :class:`~._run.Predictor`).
    image : ndarray, shape (H, W, 3)
        Float image in [0, 1].
    mask : ndarray of bool, shape (H, W)
        True = hole.
    side : int
        Side of the network's windows.
    margin : int
        Context kept around each hole, in pixels.
    progress : callable, optional
        ``progress(done, total)`` after each batch, ``total`` = tiles + windows; it may raise to cancel.

    Returns
    -------
    ndarray
        A copy of ``image`` with the holes filled.
    """
    windows, thin = crop_windows(mask, side, margin)
    overlap = max(1, side // 4)
    n_tiles = len(tile_boxes(thin, side, overlap)) if thin.any() else 0
    total = n_tiles + len(windows)
    result = (run_tiles(predict, image, mask, side, overlap, write=thin, progress=progress, total=total)
              if n_tiles else image.copy())
    crops = [(image[r0:r1, c0:c1], mask[r0:r1, c0:c1]) for r0, r1, c0, c1, _ in windows]
    for i, out in _predict_all(predict, crops, progress, n_tiles, total):
        r0, r1, c0, c1, write = windows[i]
        result[r0:r1, c0:c1][write] = out[write]
    return result


# ------------------------------------------------------------------------------------- planned windows
#
# A plan covers the holes to fill with windows whose cost is estimated before any network runs. The
# holes are grouped into regions (holes closer than 2 ``margin`` share one); each region is cut by a
# grid of ny x nx cells (cuts placed so that the windows of a row / column of cells have equal sides)
# and every cell holding holes feeds the network one window: the bounding box of its holes plus
# ``margin`` context on each side (or up to the image border). Neighbouring cells overlap by ``blend``
# pixels across each cut, where their fills are mixed with complementary linear ramps (the weights of
# a region's windows sum to one at each of its hole pixels, as in :func:`run_tiles`), so that no seam
# shows where a hole crosses a cut. Per region the grid of least estimated cost (the caller's
# ``cost(height, width)`` of one window, summed) is kept, and the regions' plans are compared with one
# grid over all holes: windows shrink to localised holes, and dense holes get windows whose size
# balances the context each window repeats against a cost per pixel that grows with the window
# (global attention).


def _grow(lo: int, hi: int, size: int, length: int) -> tuple:
    """``[lo, hi)`` grown about its centre to ``size`` pixels (at most ``length``), inside ``[0, length)``."""
    size = min(size, length)
    if hi - lo >= size:
        return lo, hi
    start = max(0, min(lo - (size - (hi - lo)) // 2, length - size))
    return start, start + size


def _weights_1d(lo, hi, blend: int, start: int, stop: int) -> np.ndarray:
    """Weights of pixels ``start .. stop - 1`` for a cell side ``[lo, hi)`` (None: no cut on that side):
    1 inside, linear ramps of ``blend`` pixels centred on the cuts, 0 beyond. The ramps of the two
    cells beside one cut sum to 1."""
    i = np.arange(start, stop, dtype=np.float64) + 0.5
    w = np.ones(stop - start)
    if lo is not None:
        w *= np.clip((i - (lo - blend / 2)) / blend, 0.0, 1.0)
    if hi is not None:
        w *= np.clip(((hi + blend / 2) - i) / blend, 0.0, 1.0)
    return w


def window_weights(window: tuple, blend: int) -> np.ndarray:
    """Blending weights over the pixels of one planned window (see :func:`plan_windows`).

    Parameters
    ----------
    window : tuple
        ``(r0, r1, c0, c1, (y0, y1, x0, x1), region)``: the pixels fed to the network, the cell that
        owns them (None where a side is no cut) and the region.
    blend : int
        Width of the ramps across each cut.

    Returns
    -------
    ndarray, shape (r1 - r0, c1 - c0)
        Weights in [0, 1]; over the windows of one region they sum to 1 at each of its hole pixels.
    """
    r0, r1, c0, c1, (y0, y1, x0, x1), _ = window
    return np.outer(_weights_1d(y0, y1, blend, r0, r1), _weights_1d(x0, x1, blend, c0, c1))


def _blend_grid(margin: int, blend: int | None) -> tuple:
    """``(blend, grid)``: the ramp width (default ``margin``), a multiple of 2 ``grid``, and the side of
    the cells the plan works on (cuts lie on multiples of it)."""
    blend = max(16, margin // 2) if blend is None else blend
    grid = max(1, min(8, blend // 2))
    return max(2 * grid, -(-blend // (2 * grid)) * 2 * grid), grid


def plan_windows(write: np.ndarray, margin: int, cost, *, max_side: int, multiple: int = 1, fixed: bool = False,
                 blend: int | None = None, bsp_budget: int = 10000) -> tuple:
    """Windows covering the ``write`` pixels with ``margin`` context, of least estimated cost.

    See the comment above for the plan. A window is the bounding box of the ``write`` pixels its cell
    owns (those of its region within ``blend / 2`` of the cell) plus ``margin`` on each side, clipped
    to the image. With ``fixed`` it must fit ``max_side`` x ``max_side`` and is grown to it about its
    centre (more context at no cost: the network's input has that size anyway); otherwise its sides
    are rounded up to ``multiple`` (grown inside the image) and must not exceed ``max_side``.

    Parameters
    ----------
    write : ndarray of bool, shape (H, W)
        The pixels to fill.
    margin : int
        Context kept around each written pixel, in pixels.
    cost : callable
        ``cost(height, width)``: estimated cost of one network run on a window of that size.
    max_side : int
        Largest window side (the network's input side for ``fixed``).
    multiple : int
        Window sides are rounded up to a multiple of this (not for ``fixed``).
    fixed : bool
        Whether the network has a fixed input size (``max_side``).
    blend : int, optional
        Overlap of neighbouring cells across a cut, mixed with linear ramps (default: ``margin``;
        rounded up to an even number of cells of the plan).
    bsp_budget : int
        Largest number of boxes the search over cuts of the image in two may plan (0: grids only).

    Returns
    -------
    tuple
        ``(windows, regions, blend, cost)``: ``windows`` a list of ``(r0, r1, c0, c1, (y0, y1, x0, x1),
        region)`` (the window fed to the network, its cell, the region it writes; see
        :func:`window_weights`), ``regions`` an int array (H, W) labelling the ``write`` pixels by region
        (0 elsewhere), ``blend`` the ramp width used, ``cost`` the plan's estimate (``inf`` when no grid
        fits ``max_side``: then the smallest windows found are returned).
    """
    from scipy import ndimage

    H, W = write.shape
    blend, grid = _blend_grid(margin, blend)
    half = blend // 2
    hc, wc = -(-H // grid), -(-W // grid)
    padded = np.zeros((hc * grid, wc * grid), bool)
    padded[:H, :W] = write
    cells = padded.reshape(hc, grid, wc, grid).any(axis=(1, 3))  # the plan works on grid x grid cells
    reach = 2 * (-(-margin // grid)) + 1  # holes closer than 2 margin: one region
    labels, n = ndimage.label(ndimage.binary_dilation(cells, np.ones((reach, reach), bool)) if margin else cells,
                              structure=np.ones((3, 3), bool))
    labels = labels * cells
    lengths = (H, W)

    def side_window(lo, hi, axis):
        """Window bounds around the written span [lo, hi) along ``axis``, and whether it fits."""
        length = lengths[axis]
        lo, hi = max(0, lo - margin), min(length, hi + margin)
        fits = hi - lo <= max_side
        size = max_side if fixed else -(-(hi - lo) // multiple) * multiple
        start, stop = _grow(int(lo), int(hi), int(size), length)
        return start, stop, fits

    def axis_cuts(lo, hi, axis, pieces):
        """Cuts of the written span [lo, hi) into ``pieces`` whose windows have equal sides, or None."""
        length = lengths[axis]
        start, stop = max(0, lo - margin), min(length, hi + margin)
        over = 2 * margin + blend  # pixels two neighbouring windows share
        side = (stop - start + (pieces - 1) * over) / pieces
        cuts = [int(round((start + k * side - (k - 1) * over - half - margin) / grid)) * grid
                for k in range(1, pieces)]
        bounds = [lo - blend, *cuts, hi + blend]
        if any(b - a < blend for a, b in zip(bounds, bounds[1:])):
            return None
        return cuts

    def piece_counts(lo, hi, axis):
        length = lengths[axis]
        span = min(length, hi + margin) - max(0, lo - margin)
        over = 2 * margin + blend
        least = 1 if span <= max_side else (-(-(span - over) // (max_side - over)) if max_side > over else 1)
        most = least + (2 if fixed else 8)
        return range(max(1, least), most + 1)

    def grid_plan(sel, region):
        """Best ``(cost, windows)`` of one grid over the cells ``sel`` (bool, coarse)."""
        rows, cols = np.flatnonzero(sel.any(axis=1)), np.flatnonzero(sel.any(axis=0))
        ylo, yhi = rows[0] * grid, min(H, (rows[-1] + 1) * grid)
        xlo, xhi = cols[0] * grid, min(W, (cols[-1] + 1) * grid)
        best = (math.inf, None)
        fallback = (math.inf, None)
        for ny in piece_counts(ylo, yhi, 0):
            ycuts = axis_cuts(ylo, yhi, 0, ny)
            if ycuts is None:
                break
            for nx in piece_counts(xlo, xhi, 1):
                xcuts = axis_cuts(xlo, xhi, 1, nx)
                if xcuts is None:
                    break
                total, windows, oversize = 0.0, [], 0
                ys, xs = [None, *ycuts, None], [None, *xcuts, None]
                for i in range(ny):
                    ey0 = 0 if ys[i] is None else ys[i] - half
                    ey1 = H if ys[i + 1] is None else ys[i + 1] + half
                    band = sel[ey0 // grid : -(-ey1 // grid)]
                    for j in range(nx):
                        ex0 = 0 if xs[j] is None else xs[j] - half
                        ex1 = W if xs[j + 1] is None else xs[j + 1] + half
                        sub = band[:, ex0 // grid : -(-ex1 // grid)]
                        r, c = np.flatnonzero(sub.any(axis=1)), np.flatnonzero(sub.any(axis=0))
                        if not r.size:
                            continue
                        by0 = max(ey0, (ey0 // grid + r[0]) * grid)
                        by1 = min(ey1, (ey0 // grid + r[-1] + 1) * grid)
                        bx0 = max(ex0, (ex0 // grid + c[0]) * grid)
                        bx1 = min(ex1, (ex0 // grid + c[-1] + 1) * grid)
                        r0, r1, fy = side_window(by0, by1, 0)
                        c0, c1, fx = side_window(bx0, bx1, 1)
                        oversize += (not fy) + (not fx)
                        total += cost(r1 - r0, c1 - c0)
                        windows.append((r0, r1, c0, c1, (ys[i], ys[i + 1], xs[j], xs[j + 1]), region))
                if oversize:
                    fallback = min(fallback, (oversize, total, windows), key=lambda t: t[:2])
                elif total < best[0]:
                    best = (total, windows)
        if best[1] is None:  # no grid fits max_side: the one with the fewest oversized windows
            best = (math.inf, fallback[2])
        return best

    def bsp_plan(budget):
        """Best ``(cost, windows)`` of a binary space partition of the image: each box is one window or
        cut in two (at most ``budget`` boxes are planned; cuts on a lattice of ``step`` pixels)."""
        memo: dict = {}
        # fixed windows fit exactly on a fine lattice; windows of any size vary at the scale of the
        # margin, and a coarser lattice lets the search reach more plans (DeepFill, GMCNN at 1024**2:
        # plans 10-18% cheaper than on cuts every blend pixels, in half the time)
        step = blend if fixed else blend * -(-margin // blend)

        def bounds(box):
            y0, y1, x0, x1 = box
            ey0, ey1 = max(0, y0 - half), min(H, y1 + half)
            ex0, ex1 = max(0, x0 - half), min(W, x1 + half)
            sub = cells[ey0 // grid : -(-ey1 // grid), ex0 // grid : -(-ex1 // grid)]
            r, c = np.flatnonzero(sub.any(axis=1)), np.flatnonzero(sub.any(axis=0))
            if not r.size:
                return None
            return (max(ey0, (ey0 // grid + r[0]) * grid), min(ey1, (ey0 // grid + r[-1] + 1) * grid),
                    max(ex0, (ex0 // grid + c[0]) * grid), min(ex1, (ex0 // grid + c[-1] + 1) * grid))

        def cuts(box, bb, axis):
            lo, hi = box[2 * axis], box[2 * axis + 1]
            if hi - lo < 2 * blend:
                return []
            blo, bhi = bb[2 * axis], bb[2 * axis + 1]
            start, stop = max(0, blo - margin), min(lengths[axis], bhi + margin)
            near = max_side - margin - half
            found = {(start + near) // step * step, -(-(stop - near) // step) * step}  # a part fills max_side
            if not fixed:
                found.add((lo + hi) // 2 // step * step)  # the middle
            if axis == 0:
                prof = cells[blo // grid : -(-bhi // grid), bb[2] // grid : -(-bb[3] // grid)].any(axis=1)
            else:
                prof = cells[bb[0] // grid : -(-bb[1] // grid), blo // grid : -(-bhi // grid)].any(axis=0)
            empty = np.flatnonzero(~prof)
            if empty.size:  # the middle of the widest band without holes
                runs = np.split(empty, np.flatnonzero(np.diff(empty) > 1) + 1)
                run = max(runs, key=len)
                found.add((blo + (run[0] + run[-1] + 1) * grid // 2) // step * step)
            return sorted(s for s in found if lo + blend <= s <= hi - blend)

        def solve(box):
            if box in memo:
                return memo[box][0]
            bb = bounds(box)
            if bb is None:
                memo[box] = (0.0, None, None)
                return 0.0
            r0, r1, fy = side_window(bb[0], bb[1], 0)
            c0, c1, fx = side_window(bb[2], bb[3], 1)
            best = cost(r1 - r0, c1 - c0) if fy and fx else math.inf
            how = ("leaf", (r0, r1, c0, c1))
            memo[box] = (best, *how)  # provisional: a box met again while planning its parts is a leaf
            if len(memo) < budget:
                y0, y1, x0, x1 = box
                for axis in (0, 1):
                    for s in cuts(box, bb, axis):
                        parts = ((y0, s, x0, x1), (s, y1, x0, x1)) if axis == 0 else ((y0, y1, x0, s), (y0, y1, s, x1))
                        total = solve(parts[0])
                        if total < best:
                            total += solve(parts[1])
                            if total < best:
                                best, how = total, ("cut", parts)
            memo[box] = (best, *how)
            return best

        root = (0, H, 0, W)
        total = solve(root)
        windows, stack = [], [root]
        while stack:
            box = stack.pop()
            _, kind, what = memo[box]
            if kind == "leaf":
                y0, y1, x0, x1 = box
                own = (y0 or None, y1 if y1 < H else None, x0 or None, x1 if x1 < W else None)
                windows.append((*what, own, 1))
            elif kind == "cut":
                stack.extend(reversed(what))
        return total, windows

    if n == 0:
        return [], np.zeros(write.shape, np.int32), blend, 0.0
    plans = [grid_plan(labels == k, k) for k in range(1, n + 1)]
    per_region = (sum(p[0] for p in plans), [w for p in plans for w in p[1]])
    regions = labels
    if n > 1:
        one = grid_plan(cells, 1)
        if one[0] < per_region[0]:
            per_region, regions = one, cells.astype(labels.dtype)
    if bsp_budget:
        cut = bsp_plan(bsp_budget)
        if cut[0] < per_region[0]:
            per_region, regions = cut, cells.astype(labels.dtype)
    total, windows = per_region
    pixel_regions = np.repeat(np.repeat(regions, grid, axis=0), grid, axis=1)[:H, :W] * write
    return windows, pixel_regions, blend, total


def run_windows(predict, image, mask, plan: tuple, progress=None, done: int = 0, total=None) -> np.ndarray:
    """Fill the pixels of a plan of :func:`plan_windows` (its ``regions``), blended across cuts.

    Parameters
    ----------
    predict : callable
        ``predict(image, mask) -> filled`` for one window (a :class:`~._run.Predictor`).
    image : ndarray, shape (H, W, 3)
        Float image in [0, 1].
    mask : ndarray of bool, shape (H, W)
        True = hole (every hole is a hole for the network, whichever window writes it).
    plan : tuple
        ``(windows, regions, blend, cost)`` as returned by :func:`plan_windows`.
    progress : callable, optional
        ``progress(done + windows run, total)`` after each batch; it may raise to cancel.
    done : int
        Units of work done before these windows (for ``progress``).
    total : int, optional
        Total units of work (default: the number of windows).

    Returns
    -------
    ndarray
        A copy of ``image`` with the pixels of the plan's regions filled.
    """
    windows, regions, blend, _ = plan
    total = len(windows) if total is None else total
    write = regions > 0
    acc = np.zeros(image.shape, np.float64)
    wsum = np.zeros(mask.shape, np.float64)
    crops = [(image[r0:r1, c0:c1], mask[r0:r1, c0:c1]) for r0, r1, c0, c1, _, _ in windows]
    for i, out in _predict_all(predict, crops, progress, done, total):
        r0, r1, c0, c1, _, region = windows[i]
        win = (slice(r0, r1), slice(c0, c1))
        wt = window_weights(windows[i], blend) * (regions[win] == region)
        acc[win] += out * wt[..., None]
        wsum[win] += wt
    result = image.copy()
    if not (wsum[write] > 0).all():
        raise RuntimeError("internal error: planned windows leave hole pixels unwritten")
    result[write] = (acc[write] / wsum[write][:, None]).astype(image.dtype)
    return result


def plan_holes(mask: np.ndarray, side: int, margin: int, cost, *, multiple: int = 1, fixed: bool = False,
               blend: int | None = None) -> tuple:
    """The plan of ``resolution="auto"`` windows: ``(plan, large, cost)``.

    Large holes that are not thin (see :func:`crop_windows`) get their own window of about 1.5x their
    size, resized to the network (``large``: ``(r0, r1, c0, c1, write_mask)``); every other hole pixel
    is covered by :func:`plan_windows` (``plan``). ``cost`` sums both estimates.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        True = hole.
    side : int
        The network's input side (``fixed``) or its largest window side.
    margin : int
        Context kept around each hole pixel, in pixels.
    cost : callable
        ``cost(height, width)`` of one network run on a window of that size (after any resizing).
    multiple : int
        Window sides are rounded up to a multiple of this (not for ``fixed``).
    fixed : bool
        Whether the network has a fixed input size ``side``.
    blend : int, optional
        Overlap of neighbouring windows across a cut (see :func:`plan_windows`).

    Returns
    -------
    tuple
        ``(plan, large, cost)``.
    """
    h, w = mask.shape
    large, rest = [], mask
    if h > side or w > side:
        large = _classify_holes(mask, side, margin)[3]
        if large:
            rest = mask.copy()
            for r0, r1, c0, c1, write in large:
                rest[r0:r1, c0:c1] &= ~write
    plan = plan_windows(rest, margin, cost, max_side=side, multiple=multiple, fixed=fixed, blend=blend)
    total = plan[3]
    for r0, r1, c0, c1, _ in large:
        scale = min(1.0, side / max(r1 - r0, c1 - c0))
        total += cost(side, side) if fixed else cost(round((r1 - r0) * scale), round((c1 - c0) * scale))
    return plan, large, total


def run_plan(predict, image, mask, plan: tuple, large: list, progress=None) -> np.ndarray:
    """Fill the holes with the windows of :func:`plan_holes` (``plan`` blended, then ``large``).

    Parameters
    ----------
    predict : callable
        ``predict(image, mask) -> filled`` for one window (a :class:`~._run.Predictor`).
    image : ndarray, shape (H, W, 3)
        Float image in [0, 1].
    mask : ndarray of bool, shape (H, W)
        True = hole.
    plan : tuple
        The planned windows (see :func:`plan_windows`).
    large : list of tuple
        ``(r0, r1, c0, c1, write_mask)``: windows of their own for large holes.
    progress : callable, optional
        ``progress(done, total)`` after each batch, ``total`` = all windows; it may raise to cancel.

    Returns
    -------
    ndarray
        A copy of ``image`` with the holes filled.
    """
    total = len(plan[0]) + len(large)
    result = run_windows(predict, image, mask, plan, progress=progress, total=total) if plan[0] else image.copy()
    crops = [(image[r0:r1, c0:c1], mask[r0:r1, c0:c1]) for r0, r1, c0, c1, _ in large]
    for i, out in _predict_all(predict, crops, progress, len(plan[0]), total):
        r0, r1, c0, c1, write = large[i]
        result[r0:r1, c0:c1][write] = out[write]
    return result
