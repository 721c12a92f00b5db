"""Find the pixels that need inpainting: :func:`detect` builds a mask of common defects.

Each *kind* of defect has its own detector; :func:`detect` returns the union of the kinds asked for,
as a boolean mask of the image's spatial shape (ready for :func:`inpaint_plugin.inpaint` or a napari
Labels layer). The detectors are deliberately simple and robust, and each is steered by a few
thresholds (see :data:`PARAMS`):

``"nan"``
    NaN or inf in any channel (float images), and pixels equal to ``nodata`` when given.
``"saturated"``
    Pixels at the saturation level in any channel: ``saturation`` when given; otherwise the dtype
    maximum for integer images, and for float images the largest finite value when at least 0.1 % of
    the pixels (and at least 2, but not all) share it exactly (a clipped float image has a plateau at
    its maximum, a natural one almost never has).
``"hot"`` / ``"dead"``
    Robust local outliers, alone or in pairs: a pixel is hot when it exceeds the second brightest of
    its neighbours (3x3, or 3**ndim, window) by more than ``max(sigma * s, min_contrast)`` *and* by more
    than ``spread`` times the neighbours' own spread (second brightest minus second darkest
    neighbour). ``s`` is the robust standard deviation (1.4826 x median absolute deviation) of the
    difference between the image and its 3x3 median, per channel. ``"dead"`` is the same for dark
    pixels. Edges, corners and textures (whose neighbours spread widely) and thin filaments (one
    bright neighbour on each side) are not flagged; clusters of three or more defective pixels are
    left to ``"clusters"``.
``"clusters"``
    Small groups of defective pixels (a cosmic-ray hit, a cluster of bad sensor pixels): connected
    groups of at most ``cluster_size`` pixels that differ from the median of a 7-pixel (7**ndim)
    window by more than the ``"hot"``/``"dead"`` threshold, all in the same direction, *and* are
    sharp: their faintest pixel lies beyond the brightest pixel around them (the one-pixel ring;
    darkest for dark groups) by more than that threshold again, and by more than ``spread`` times the
    ring's own spread. A real small object blurred by the optics (a sub-resolution spot, a star)
    falls off gradually, so its ring is not far below it; a speck of texture has a ring that spreads
    as widely as its own contrast. In nD data every 2-D plane (the last two axes) is searched on its
    own, as the frames of a camera: a stuck group of sensor pixels is found in every frame of a stack.
``"lines"``
    Dead rows and columns (of every 2-D slice, on the last two spatial axes): a line is dead when, on
    at least ``line_fraction`` of its length, it lies above both neighbouring lines or below both (a
    stuck line, or a line of random values) by more than ``max(line_sigma * s, min_contrast)``. Bands of two dead lines are found too; a
    horizontal edge across the image is not (it lies between its neighbours, not beyond both).
``"zeros"``
    Thin stripes of pixels that are exactly zero in every channel (e.g. Landsat-7 SLC-off gaps or
    scratches written as 0): connected groups of zero pixels at most about ``stripe_width`` pixels wide
    (they hold no ``stripe_width + 1`` square) and at least ``stripe_length`` pixels long. Wide zero
    areas (a lost block) are not stripes, and neither are the zeros of a noisy dark background: the
    pixels around a stripe must be brighter than the ``"hot"``/``"dead"`` threshold.

``"static"``
    Stacks (3 or more spatial axes, searched plane by plane): the pixels flagged ``"hot"``, ``"dead"``
    or ``"clusters"`` at the same place in at least ``static_fraction`` of the frames (the leading
    axes) are flagged in every frame: a camera's hot pixel is a defect even in the frames where the
    scene happens to be as bright as it. The map itself is ``detect(...).all(axis=0)`` of a 3-D stack.

In nD data (3 or more spatial axes) every detector works on the 2-D planes of the last two axes, as on
a camera's frames (``in_plane=True``, the default): a hot pixel that sits at the same place in every
frame looks like a bright line along the stack to a 3-D neighbourhood, and would be missed.
``in_plane=False`` uses 3**ndim neighbourhoods instead.

Pixels flagged ``"nan"`` (and ``nodata``) are replaced by their nearest valid neighbour before the
other detectors run, so that they do not disturb the statistics.

For a GUI, :data:`KINDS` maps each kind to a one-line description and :data:`PARAMS` describes the
thresholds as :class:`~inpaint_plugin._backend.Param` objects (type, default, bounds).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._backend import Param
from ._rules import check_channel_axis as _channel_axis
from ._rules import check_image as _check_image

__all__ = ["DEFAULT_KINDS", "KINDS", "PARAMS", "detect"]

#: The kinds of defect :func:`detect` knows, with a one-line description each.
KINDS = {
    "nan": "NaN/inf pixels, and pixels equal to nodata",
    "saturated": "pixels at the saturation level (dtype maximum, or the given saturation)",
    "hot": "isolated pixels much brighter than their neighbours",
    "dead": "isolated pixels much darker than their neighbours",
    "clusters": "small sharp groups of pixels much brighter or darker than their surround",
    "lines": "dead rows and columns (brighter or darker than both neighbouring lines)",
    "zeros": "thin stripes of zero-valued pixels",
    "static": "stacks: pixels that are outliers in most frames, flagged in every frame (sensor defects)",
}

#: The kinds :func:`detect` looks for by default. ``"saturated"`` is left out: a bright background at
#: the dtype maximum (bright-field microscopy, overexposed sky) is usually wanted, not a defect.
DEFAULT_KINDS = ("nan", "hot", "dead", "clusters", "lines", "zeros", "static")

#: The thresholds of :func:`detect` (keyword arguments), with their defaults and bounds.
PARAMS = (
    Param("nodata", "float", None, "'nan' also flags pixels equal to this value"),
    Param("saturation", "float", None, "'saturated' level; default: dtype maximum (integers) or the "
          "maximum shared by >= 0.1% of the pixels (floats)"),
    Param("sigma", "float", 5.0, "'hot'/'dead' threshold in robust standard deviations", min=0.0),
    Param("spread", "float", 2.0, "'hot'/'dead'/'clusters': excess over the neighbours, in units of their own spread",
          min=0.0),
    Param("line_sigma", "float", 3.0, "'lines' threshold in robust standard deviations", min=0.0),
    Param("line_fraction", "float", 0.6, "fraction of a line that must deviate for it to be dead",
          min=0.0, max=1.0),
    Param("min_contrast", "float", None, "smallest deviation counted for hot/dead/lines (image units); "
          "default: 2% of the robust range of values (at least 1 for integer images)", min=0.0),
    Param("cluster_size", "int", 9, "'clusters': largest group (pixels)", min=1, max=24),
    Param("stripe_width", "int", 4, "'zeros': widest stripe (pixels)", min=1),
    Param("stripe_length", "int", 32, "'zeros': shortest stripe (pixels)", min=1),
    Param("in_plane", "bool", True, "nD data: search each 2-D plane (last two axes) on its own, like camera "
          "frames (a hot pixel at the same place in every frame is found); False: nD neighbourhoods"),
    Param("static_fraction", "float", 0.5, "'static': a pixel that is hot/dead/clustered in at least this "
          "fraction of the frames of a stack is a defect in every frame", min=0.0, max=1.0),
)
_PARAM_MAP = {p.name: p for p in PARAMS}


def _check_kinds(kinds) -> tuple:
    if kinds is None:
        return DEFAULT_KINDS
    if isinstance(kinds, str):
        kinds = tuple(KINDS) if kinds == "all" else (kinds,)
    try:
        kinds = tuple(kinds)
    except TypeError:
        raise TypeError(f"kinds must be a string, a sequence of strings or None, got {kinds!r}") from None
    for k in kinds:
        if not isinstance(k, str):
            raise TypeError(f"kinds must hold strings, got {k!r}")
        if k not in KINDS:
            raise ValueError(f"kinds: unknown kind {k!r}; known kinds: {', '.join(KINDS)} (or 'all')")
    if not kinds:
        raise ValueError("kinds must not be empty (None selects the default kinds, 'all' every kind)")
    return tuple(dict.fromkeys(kinds))


def _check_thresholds(thresholds: dict) -> dict:
    unknown = sorted(set(thresholds) - set(_PARAM_MAP))
    if unknown:
        raise TypeError(f"detect() got unexpected threshold(s) {', '.join(map(repr, unknown))}; "
                        f"its thresholds are: {', '.join(_PARAM_MAP)}")
    return {name: (p.validate(thresholds[name], "detect") if name in thresholds else p.default)
            for name, p in _PARAM_MAP.items()}


def _fill_invalid(x: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """Replace ``x[invalid]`` (spatial mask of a channel-last array) by the nearest valid pixel."""
    from scipy import ndimage

    if not invalid.any():
        return x
    if invalid.all():
        return np.zeros_like(x)
    idx = ndimage.distance_transform_edt(invalid, return_distances=False, return_indices=True)
    return x[tuple(idx)]


def _saturated(img: np.ndarray, valid: np.ndarray, level: Optional[float]) -> np.ndarray:
    if level is None:
        if img.dtype.kind in "iu":
            level = np.iinfo(img.dtype).max
        else:
            vals = img[valid]
            if vals.size == 0:
                return np.zeros(valid.shape, bool)
            top = vals.max()
            count = int((vals == top).any(axis=-1).sum())
            if count < max(2, 0.001 * valid.size) or top == vals.min():  # no plateau, or a constant image
                return np.zeros(valid.shape, bool)
            level = top
    return (img >= level).any(axis=-1) & valid


def _robust_scale(r: np.ndarray) -> np.ndarray:
    """Per-channel robust standard deviation (1.4826 MAD) of ``r`` of shape ``(n, C)``."""
    med = np.median(r, axis=0)
    return 1.4826 * np.median(np.abs(r - med), axis=0)


def _min_contrast(x: np.ndarray, is_int: bool, value: Optional[float]) -> np.ndarray:
    """Per-channel floor of the outlier thresholds."""
    c = x.shape[-1]
    if value is not None:
        return np.full(c, float(value))
    flat = x.reshape(-1, c)
    lo, hi = np.percentile(flat, [0.5, 99.5], axis=0)
    floor = 0.02 * (hi - lo)
    return np.maximum(floor, 1.0) if is_int else floor


def _plane_indices(shape: tuple) -> list:
    """Index tuples of the 2-D planes (last two axes) of a spatial ``shape``."""
    return list(np.ndindex(*shape[:-2])) if len(shape) >= 2 else []


def _median3(x: np.ndarray, in_plane: bool) -> np.ndarray:
    """The 3x3 median of every channel of channel-last ``x`` (2-D planes with ``in_plane``)."""
    from scipy import ndimage

    nd = x.ndim - 1
    if nd >= 3 and in_plane:
        size = (1,) * (nd - 2) + (3, 3)
        return np.stack([ndimage.median_filter(x[..., c], size=size, mode="reflect")
                         for c in range(x.shape[-1])], axis=-1)
    return np.stack([ndimage.median_filter(x[..., c], size=3, mode="reflect") for c in range(x.shape[-1])], axis=-1)


def _pair_rule(out, candidate, beyond_all, limit, footprint):
    from scipy import ndimage

    # beyond all neighbours, or beyond all but one that is itself such a candidate (a pair);
    # the end of a thin filament has a bright neighbour that is not a candidate
    partner = ndimage.binary_dilation(candidate, structure=footprint)
    out |= candidate & ((beyond_all > limit) | partner)


def _isolated_outliers(x: np.ndarray, thr: np.ndarray, spread: float, in_plane: bool = True) -> tuple:
    """``(hot, dead)``: single pixels or pairs beyond their neighbours (see the module documentation)."""
    from scipy import ndimage

    nd = x.ndim - 1
    if nd >= 2 and (in_plane or nd == 2):
        from ._classical._detect import neighbour_stats

        hot = np.zeros(x.shape[:-1], bool)
        dead = np.zeros(x.shape[:-1], bool)
        fp = np.ones((3, 3), bool)
        fp[1, 1] = False
        for idx in _plane_indices(x.shape[:-1]):
            for c in range(x.shape[-1]):
                xc = np.ascontiguousarray(x[idx + (Ellipsis, c)])
                top, top2, bot, bot2 = neighbour_stats(xc)
                limit = np.maximum(thr[c], spread * (top2 - bot2))
                _pair_rule(hot[idx], top2 < xc - limit, xc - top, limit, fp)
                _pair_rule(dead[idx], bot2 > xc + limit, bot - xc, limit, fp)
        return hot, dead
    footprint = np.ones((3,) * nd, bool)
    footprint[(1,) * nd] = False
    hot = np.zeros(x.shape[:-1], bool)
    dead = np.zeros(x.shape[:-1], bool)
    for c in range(x.shape[-1]):
        xc = x[..., c]
        top = ndimage.maximum_filter(xc, footprint=footprint, mode="reflect")
        bottom = ndimage.minimum_filter(xc, footprint=footprint, mode="reflect")
        if nd == 1:  # two neighbours only: a defect must lie beyond both
            limit = np.maximum(thr[c], spread * (top - bottom))
            hot |= xc - top > limit
            dead |= bottom - xc > limit
            continue
        second_top = ndimage.rank_filter(xc, -2, footprint=footprint, mode="reflect")
        second_bottom = ndimage.rank_filter(xc, 1, footprint=footprint, mode="reflect")
        limit = np.maximum(thr[c], spread * (second_top - second_bottom))
        for out, beyond_all, beyond_second in ((hot, xc - top, xc - second_top),
                                               (dead, bottom - xc, second_bottom - xc)):
            _pair_rule(out, beyond_second > limit, beyond_all, limit, footprint)
    return hot, dead


def _beyond_median7(xc: np.ndarray, sign: float, thr: float) -> np.ndarray:
    """``sign * (xc - median7(xc)) > thr`` for every 2-D plane (last two axes) of ``xc``.

    The 7x7 median is computed only where it can matter. The median of the window is at least the
    smallest of its seven row medians (each row median has 4 of the row's 7 values at or above it:
    28 >= 25 values of the 49 are), and at most the largest: a pixel within ``thr`` of that bound
    cannot pass, and most pixels are skipped (an exact median costs 49 values per pixel).
    """
    from scipy import ndimage

    from ._classical._detect import median7_at

    out = np.zeros(xc.shape, bool)
    for idx in _plane_indices(xc.shape):
        plane = np.ascontiguousarray(xc[idx])
        rowmed = ndimage.median_filter(plane, size=(1, 7), mode="reflect")
        if sign > 0:
            bound = ndimage.minimum_filter(rowmed, size=(7, 1), mode="reflect")
            maybe = plane - bound > thr
        else:
            bound = ndimage.maximum_filter(rowmed, size=(7, 1), mode="reflect")
            maybe = bound - plane > thr
        rows, cols = np.nonzero(maybe)
        if rows.size:
            med = median7_at(plane, rows.astype(np.int64), cols.astype(np.int64))
            out[idx][rows, cols] = sign * (plane[rows, cols] - med) > thr
    return out


def _clusters(x: np.ndarray, thr: np.ndarray, max_size: int, spread: float) -> np.ndarray:
    """Small sharp groups of outlying pixels (see the module documentation) of channel-last ``x``."""
    from scipy import ndimage

    nd = x.ndim - 1
    lead = max(nd - 2, 0)  # nD data: each 2-D plane (last two axes) on its own, like a camera frame
    full = np.zeros((3,) * nd, bool)
    full[(1,) * lead] = True  # connectivity within the plane only
    out = np.zeros(x.shape[:-1], bool)
    for c in range(x.shape[-1]):
        xc = x[..., c]
        for sign in (1.0, -1.0):
            cand = _beyond_median7(xc, sign, thr[c]) if nd >= 2 else \
                sign * (xc - ndimage.median_filter(xc, size=7, mode="reflect")) > thr[c]
            if not cand.any():
                continue
            labels, n = ndimage.label(cand, structure=full)
            small = np.bincount(labels.ravel(), minlength=n + 1) <= max_size
            small[0] = False
            if not small.any():
                continue
            labels[~small[labels]] = 0  # only the small groups are examined further
            v = (sign * xc).ravel()
            ring = (ndimage.grey_dilation(labels, footprint=full) * ~cand).ravel()  # the pixels around each group
            # per-group extremes over the few pixels involved (ndimage.minimum & co sort the whole image)
            inside = np.flatnonzero(labels)
            around = np.flatnonzero(ring)
            faintest = np.full(n + 1, np.inf)
            np.minimum.at(faintest, labels.ravel()[inside], v[inside])
            brightest_around = np.full(n + 1, -np.inf)
            np.maximum.at(brightest_around, ring[around], v[around])
            darkest_around = np.full(n + 1, np.inf)
            np.minimum.at(darkest_around, ring[around], v[around])
            has_ring = np.isfinite(brightest_around)  # a group without a ring (the whole image): not kept
            gap = np.where(has_ring, faintest - np.where(has_ring, brightest_around, 0.0), -np.inf)
            ring_spread = np.where(has_ring, brightest_around - np.where(has_ring, darkest_around, 0.0), np.inf)
            keep = small & has_ring & (gap > thr[c]) & (gap > spread * ring_spread)
            out |= keep[labels]
    return out


def _line_scores(x: np.ndarray, axis: int) -> np.ndarray:
    """Signed deviation of each pixel beyond both neighbouring lines along ``axis`` (0 if between them).

    Neighbours at distance 1 and 2 are combined so that a band of two dead lines is seen too.
    """
    n = x.shape[axis]
    best = np.zeros_like(x)
    if n < 3:
        return best
    nd = x.ndim - 1
    if nd >= 2 and axis >= nd - 2:  # the kernel, plane by plane
        from ._classical._detect import line_scores

        for idx in _plane_indices(x.shape[:-1]):
            for c in range(x.shape[-1]):
                best[idx + (Ellipsis, c)] = line_scores(np.ascontiguousarray(x[idx + (Ellipsis, c)]),
                                                        axis - (nd - 2))
        return best

    def shifted(k):  # x[i + k] along axis, edges repeated
        idx = np.clip(np.arange(n) + k, 0, n - 1)
        return np.take(x, idx, axis=axis)

    before = {k: x - shifted(-k) for k in (1, 2)}
    after = {k: x - shifted(k) for k in (1, 2)}
    for kb, ka in ((1, 1), (1, 2), (2, 1)):
        a, b = before[kb], after[ka]
        same = np.sign(a) == np.sign(b)
        s = np.where(same, np.sign(a) * np.minimum(np.abs(a), np.abs(b)), 0.0)
        best = np.where(np.abs(s) > np.abs(best), s, best)
    return best


def _dead_lines(x: np.ndarray, thr: np.ndarray, fraction: float) -> np.ndarray:
    """Pixels on dead rows/columns of each 2-D slice (last two spatial axes) of channel-last ``x``."""
    nd = x.ndim - 1
    out = np.zeros(x.shape[:-1], bool)
    if nd < 2:
        return out
    for line_axis, along in ((nd - 2, nd - 1), (nd - 1, nd - 2)):
        s = _line_scores(x, line_axis)
        # fraction of each line (mean along the other in-plane axis) beyond the threshold, per channel
        frac = (np.abs(s) > thr).mean(axis=along)
        dead = (frac >= fraction).any(axis=-1)  # spatial shape without `along`
        out |= np.expand_dims(dead, along)
    return out


def _zero_stripes(x: np.ndarray, valid: np.ndarray, thr: np.ndarray, width: int, length: int) -> np.ndarray:
    """Thin, long groups of pixels that are exactly zero in every channel, on a clearly non-zero surround.

    Zero areas wider than ``width`` (what survives an opening with a ``width + 1`` square) are removed
    first, so that stripes crossing a lost block are still found. A group is kept when it spans at least
    ``length`` pixels and the median of the pixels around it exceeds ``thr`` (per channel, any channel),
    so that the zeros of a noisy dark background are not taken for stripes.
    """
    from scipy import ndimage

    zero = (x == 0).all(axis=-1) & valid
    if not zero.any():
        return zero
    nd = zero.ndim
    full = np.ones((3,) * nd, bool)
    wide = ndimage.binary_opening(zero, structure=np.ones((width + 1,) * nd, bool))
    labels, n = ndimage.label(zero & ~wide, structure=full)
    if n == 0:
        return np.zeros_like(zero)
    ring = ndimage.grey_dilation(labels, footprint=full) * ~zero  # non-zero neighbours, by group
    index = np.arange(1, n + 1)
    surround = np.stack([ndimage.median(np.abs(x[..., c]), ring, index) for c in range(x.shape[-1])], axis=-1)
    bright = (np.nan_to_num(surround, nan=0.0) > thr).any(axis=-1)
    keep = np.zeros(n + 1, bool)
    for i, sl in enumerate(ndimage.find_objects(labels), 1):
        keep[i] = bright[i - 1] and max(s.stop - s.start for s in sl) >= length
    return keep[labels]


def detect(image, kinds=None, *, channel_axis=None, progress=None, **thresholds) -> np.ndarray:
    """Mask of the defective pixels of an image (NaN/nodata, saturated, hot/dead pixels and clusters, dead lines, zero stripes).

    Parameters
    ----------
    image : array_like
        Integer or float image of any dimension, with an optional channel axis.
    kinds : str or sequence of str, optional
        Which defects to look for, among :data:`KINDS`: ``"nan"``, ``"saturated"``, ``"hot"``,
        ``"dead"``, ``"clusters"``, ``"lines"``, ``"zeros"``, or ``"all"``. ``None`` (default): :data:`DEFAULT_KINDS`,
        that is all but ``"saturated"``.
    channel_axis : int, optional
        Axis of the channels; a pixel is flagged when any of its channels is.
    progress : callable, optional
        Called as ``progress(done, total)`` after each detector (a few seconds each on large images);
        it may raise to cancel.
    **thresholds
        Tuning of the detectors (see :data:`PARAMS` and the module documentation): ``nodata``,
        ``saturation``, ``sigma``, ``spread``, ``line_sigma``, ``line_fraction``, ``min_contrast``,
        ``cluster_size``, ``stripe_width``, ``stripe_length``.

    Returns
    -------
    ndarray of bool
        True where a pixel is defective; shape = image shape without the channel axis.

    Examples
    --------
    >>> import numpy as np, inpaint_plugin
    >>> image = np.full((32, 32), 100, np.uint16)
    >>> image[5, 7] = 4000            # a hot pixel
    >>> image[:, 20] = 0              # a dead column
    >>> mask = inpaint_plugin.detect(image, ["hot", "lines"])
    >>> bool(mask[5, 7]), bool(mask[:, 20].all()), int(mask.sum())
    (True, True, 33)
    """
    from ._rules import check_progress

    kinds = _check_kinds(kinds)
    t = _check_thresholds(thresholds)
    check_progress(progress)
    steps = ["nan"] + [k for k in ("saturated", "scale", "hot", "clusters", "lines", "zeros") if k in kinds or
                       (k == "scale" and set(kinds) - {"nan", "saturated"}) or
                       (k == "hot" and {"dead", "static"} & set(kinds)) or (k == "clusters" and "static" in kinds)]
    done = [0]

    def step(name):
        if name in steps and progress is not None:
            done[0] += 1
            progress(done[0], len(steps))

    arr = _check_image(image)
    axis = _channel_axis(channel_axis, arr.ndim)
    img = arr[..., np.newaxis] if axis is None else np.moveaxis(arr, axis, -1)
    if img.ndim < 2:
        raise ValueError(f"image has no spatial dimensions (shape {arr.shape}, channel_axis={channel_axis})")
    spatial = img.shape[:-1]
    is_int = img.dtype.kind in "iu"

    invalid = np.zeros(spatial, bool) if is_int else (~np.isfinite(img)).any(axis=-1)
    if t["nodata"] is not None:
        invalid |= (img == t["nodata"]).any(axis=-1)
    valid = ~invalid
    result = np.zeros(spatial, bool)
    if "nan" in kinds:
        result |= invalid
    step("nan")
    if "saturated" in kinds:
        result |= _saturated(img, valid, t["saturation"])
        step("saturated")

    if {"hot", "dead", "clusters", "lines", "zeros", "static"} & set(kinds) and valid.any():

        x = _fill_invalid(img.astype(np.float64), invalid)
        floor = _min_contrast(x[valid], is_int, t["min_contrast"])
        scale = _robust_scale((x - _median3(x, t["in_plane"]))[valid])
        thr = np.maximum(t["sigma"] * scale, floor)
        step("scale")
        outliers = np.zeros(spatial, bool)  # for "static"
        if {"hot", "dead", "static"} & set(kinds):
            hot, dead = _isolated_outliers(x, thr, t["spread"], t["in_plane"])
            if "hot" in kinds:
                result |= hot & valid
            if "dead" in kinds:
                result |= dead & valid
            outliers |= hot | dead
            del hot, dead
            step("hot")
        if {"clusters", "static"} & set(kinds) and (len(spatial) <= 2 or t["in_plane"] or "clusters" in kinds):
            clusters = _clusters(x, thr, t["cluster_size"], t["spread"])
            if "clusters" in kinds:
                result |= clusters & valid
            outliers |= clusters
            del clusters
            step("clusters")
        if "static" in kinds and len(spatial) >= 3:
            frames = tuple(range(len(spatial) - 2))
            static = (outliers & valid).mean(axis=frames) >= max(t["static_fraction"], 1e-12)
            result |= np.broadcast_to(static, spatial)
        if "lines" in kinds:
            result |= _dead_lines(x, np.maximum(t["line_sigma"] * scale, floor), t["line_fraction"])
            step("lines")
        if "zeros" in kinds:
            result |= _zero_stripes(x, valid, thr, t["stripe_width"], t["stripe_length"])
            step("zeros")
    return result
