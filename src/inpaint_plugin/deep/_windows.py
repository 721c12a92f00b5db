"""Windows of an image fed to a network: overlapping tiles blended with ramps, and crops around holes.

``predict(image, mask) -> filled`` is any callable that fills one window (see ``_run.Predictor``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["crop_windows", "resize", "run_crops", "run_tiles", "tile_boxes", "tile_starts"]


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
    from scipy import ndimage

    h, w = mask.shape
    if h <= side and w <= side:  # the whole image is one window at full resolution
        return [(0, h, 0, w, mask.copy())], np.zeros(mask.shape, bool)
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    boxes = ndimage.find_objects(labels)
    small, windows = [], []
    thin = np.zeros(mask.shape, bool)

    def place(center, size, length):
        size = min(size, length)
        start = round(center - size / 2)
        return max(0, min(start, length - size)), size

    for idx, (rs, cs) in enumerate(boxes, start=1):
        bh, bw = rs.stop - rs.start, cs.stop - cs.start
        if max(bh, bw) + 2 * margin <= side:
            small.append((rs.start, cs.start, rs.stop, cs.stop, idx))
            continue
        own = np.pad(labels[rs, cs] == idx, 1)
        if 2 * ndimage.distance_transform_edt(own).max() + 2 * margin <= side:
            thin[rs, cs] |= own[1:-1, 1:-1]
            continue
        size = max(side, math.ceil(max(bh, bw) * 1.5) + 2 * margin)
        r0, sh = place((rs.start + rs.stop) / 2, size, h)
        c0, sw = place((cs.start + cs.stop) / 2, size, w)
        windows.append((r0, r0 + sh, c0, c0 + sw, labels[r0:r0 + sh, c0:c0 + sw] == idx))

    # small holes: bands of rows starting at the topmost remaining hole; in each band, windows placed
    # left to right starting at the leftmost remaining hole of the band; a hole joins a window when its
    # box plus margin (clipped to the image) lies inside
    def inside(lo, hi, start, size, length):
        return max(lo - margin, 0) >= start and min(hi + margin, length) <= start + size

    remaining = sorted(small)
    while remaining:
        r0, sh = place(remaining[0][0] - margin + side / 2, side, h)
        band = sorted((c for c in remaining if inside(c[0], c[2], r0, sh, h)), key=lambda c: c[1])
        taken = set()
        while band:
            c0, sw = place(band[0][1] - margin + side / 2, side, w)
            members = [c[4] for c in band if inside(c[1], c[3], c0, sw, w)]
            taken.update(members)
            band = [c for c in band if c[4] not in taken]
            windows.append((r0, r0 + sh, c0, c0 + sw, np.isin(labels[r0:r0 + sh, c0:c0 + sw], members)))
        remaining = [c for c in remaining if c[4] not in taken]

    # a window inside another one that is run at full resolution (not larger than `side`), or inside an
    # identical one, is merged into it: one network run instead of two
    merged = []
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
