"""Random hole masks for self-supervised training of the deep backends.

Every generator takes a 2-D ``shape`` and a :class:`numpy.random.Generator` and returns a boolean
mask (True = hole) that depends only on the generator's state, so a seeded generator gives the
same masks on every machine. The families cover the damage scientists meet:

``"strokes"``
    Free-form brush strokes as in DeepFill v2 (Yu et al., ICCV 2019, appendix "free-form mask
    generation"): 1-3 strokes, each a polyline of 4-11 vertices whose segments turn by about
    2*pi/5 alternately left and right, segment lengths ~ N(d/8, d/16) (clipped to [0, d/4], d the
    image diagonal), widths 12-40 px at 256 x 256 (scaled with the image), round joints, random
    flips.
``"scratches"``
    1-6 thin (1-3 px) straight scratches across the image, any orientation
    (:func:`inpaint_plugin.data.scratches_mask`, transposed at random).
``"stripes"``
    Periodic slanted stripes of missing rows or columns (Landsat-7 SLC-off,
    :func:`inpaint_plugin.data.slc_off_mask` with random period, width, slant and phase) or a few
    dead detector rows/columns.
``"dead_pixels"``
    Scattered dead/hot pixels, 0.2-3 % of the image (:func:`inpaint_plugin.data.dead_pixels_mask`),
    sometimes grown to 2 x 2 clusters.
``"boxes"``
    1-3 axis-aligned rectangles with sides 1/8-1/2 of the image (DeepFill v1's regular holes).

:func:`random_mask` picks one family per call and keeps the hole fraction at most
``max_coverage``. cv2 and scikit-image are imported inside the functions that draw.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .data import dead_pixels_mask, scratches_mask, slc_off_mask

__all__ = [
    "FAMILIES",
    "box_mask",
    "check_families",
    "dead_pixel_mask",
    "random_mask",
    "scratch_mask",
    "stripe_mask",
    "stroke_mask",
]


def _check(shape, rng) -> tuple:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (height, width), got {shape!r}") from None
    if h < 8 or w < 8:
        raise ValueError(f"shape must be at least 8 x 8, got {shape!r}")
    return h, w


def _random_flips(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        mask = mask[::-1]
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    return np.ascontiguousarray(mask)


def stroke_mask(shape, rng: np.random.Generator) -> np.ndarray:
    """Free-form brush strokes (DeepFill v2's training masks, widths scaled to the image size).

    Parameters
    ----------
    shape : (int, int)
        Height and width, at least 8 each.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of bool, shape ``shape``
    """
    import cv2

    h, w = _check(shape, rng)
    scale = min(h, w) / 256.0
    min_width, max_width = max(1.0, 12 * scale), max(2.0, 40 * scale)
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    average_radius = math.hypot(h, w) / 8
    canvas = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        n_vertex = int(rng.integers(4, 12))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        width = int(round(rng.uniform(min_width, max_width)))
        x, y = float(rng.integers(0, w)), float(rng.integers(0, h))
        points = [(int(x), int(y))]
        for i in range(n_vertex):
            angle = rng.uniform(angle_min, angle_max)
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = float(np.clip(rng.normal(average_radius, average_radius / 2), 0, 2 * average_radius))
            x = float(np.clip(x + length * math.cos(angle), 0, w - 1))
            y = float(np.clip(y + length * math.sin(angle), 0, h - 1))
            points.append((int(x), int(y)))
        for p, q in zip(points[:-1], points[1:]):
            cv2.line(canvas, p, q, 1, width)
        for p in points:
            cv2.circle(canvas, p, width // 2, 1, -1)
    return _random_flips(canvas.astype(bool), rng)


def scratch_mask(shape, rng: np.random.Generator) -> np.ndarray:
    """1-6 thin straight scratches (1-3 px wide) across the image, horizontal-ish or vertical-ish.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the mask, in pixels.
    rng : numpy.random.Generator
        The source of randomness (the mask is a function of its state).

    Returns
    -------
    numpy.ndarray of bool
        The ``(height, width)`` mask, True = hole.

    Raises
    ------
    TypeError
        When ``rng`` is not a ``numpy.random.Generator``.
    ValueError
        When ``shape`` is not two integers of at least 8.
    """
    h, w = _check(shape, rng)
    n, width = int(rng.integers(1, 7)), int(rng.integers(1, 4))
    if rng.random() < 0.5:
        return scratches_mask((h, w), n=n, width=width, seed=rng)
    return np.ascontiguousarray(scratches_mask((w, h), n=n, width=width, seed=rng).T)


def stripe_mask(shape, rng: np.random.Generator) -> np.ndarray:
    """Periodic slanted stripes (SLC-off style) or 1-4 dead rows/columns, vertical or horizontal.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the mask, in pixels.
    rng : numpy.random.Generator
        The source of randomness (the mask is a function of its state).

    Returns
    -------
    numpy.ndarray of bool
        The ``(height, width)`` mask, True = hole.

    Raises
    ------
    TypeError
        When ``rng`` is not a ``numpy.random.Generator``.
    ValueError
        When ``shape`` is not two integers of at least 8.
    """
    h, w = _check(shape, rng)
    vertical = rng.random() < 0.5
    rows, cols = (w, h) if vertical else (h, w)
    if rng.random() < 0.5:
        period = int(rng.integers(max(4, rows // 16), max(5, rows // 3) + 1))
        width = int(rng.integers(1, max(1, period // 3) + 1))
        mask = slc_off_mask((rows, cols), period=period, width=width, angle=float(rng.uniform(-0.3, 0.3)))
        mask = np.roll(mask, int(rng.integers(0, period)), axis=0)
    else:
        mask = np.zeros((rows, cols), bool)
        for _ in range(int(rng.integers(1, 5))):
            r = int(rng.integers(0, rows))
            mask[r : r + int(rng.integers(1, 4))] = True
    return np.ascontiguousarray(mask.T if vertical else mask)


def dead_pixel_mask(shape, rng: np.random.Generator) -> np.ndarray:
    """Scattered dead/hot pixels (0.2-3 % of the image), grown to 2 x 2 clusters one time in three.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the mask, in pixels.
    rng : numpy.random.Generator
        The source of randomness (the mask is a function of its state).

    Returns
    -------
    numpy.ndarray of bool
        The ``(height, width)`` mask, True = hole.

    Raises
    ------
    TypeError
        When ``rng`` is not a ``numpy.random.Generator``.
    ValueError
        When ``shape`` is not two integers of at least 8.
    """
    h, w = _check(shape, rng)
    fraction = float(np.exp(rng.uniform(np.log(0.002), np.log(0.03))))
    mask = dead_pixels_mask((h, w), fraction, seed=rng)
    if rng.random() < 1 / 3:
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:, 1:] |= grown[:, :-1]
        mask = grown
    if not mask.any():
        mask[int(rng.integers(0, h)), int(rng.integers(0, w))] = True
    return mask


def box_mask(shape, rng: np.random.Generator) -> np.ndarray:
    """1-3 axis-aligned rectangles with sides between 1/8 and 1/2 of the image.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the mask, in pixels.
    rng : numpy.random.Generator
        The source of randomness (the mask is a function of its state).

    Returns
    -------
    numpy.ndarray of bool
        The ``(height, width)`` mask, True = hole.

    Raises
    ------
    TypeError
        When ``rng`` is not a ``numpy.random.Generator``.
    ValueError
        When ``shape`` is not two integers of at least 8.
    """
    h, w = _check(shape, rng)
    mask = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 4))):
        bh = int(rng.integers(max(1, h // 8), max(2, h // 2) + 1))
        bw = int(rng.integers(max(1, w // 8), max(2, w // 2) + 1))
        r, c = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        mask[r : r + bh, c : c + bw] = True
    return mask


#: mask family name -> generator ``f(shape, rng) -> bool mask``
FAMILIES = {
    "strokes": stroke_mask,
    "scratches": scratch_mask,
    "stripes": stripe_mask,
    "dead_pixels": dead_pixel_mask,
    "boxes": box_mask,
}


def check_families(families) -> tuple:
    """Validate a selection of mask families.

    Parameters
    ----------
    families : sequence of str, str or None
        Names from :data:`FAMILIES`, or one comma-separated string; None selects all.

    Returns
    -------
    tuple of str
        The family names, duplicates removed, in the order given.

    Raises
    ------
    ValueError
        For an empty selection or an unknown family name.
    """
    if families is None:
        return tuple(FAMILIES)
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    if not isinstance(families, Sequence) or not families:
        raise ValueError(f"masks must be a non-empty list of mask families from {list(FAMILIES)}, got {families!r}")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"masks: unknown mask families {unknown}; choose from {list(FAMILIES)}")
    return tuple(dict.fromkeys(families))


def random_mask(shape, rng: np.random.Generator, families=None, *, max_coverage: float = 0.5) -> np.ndarray:
    """A random hole mask of one family chosen uniformly from ``families``.

    Parameters
    ----------
    shape : (int, int)
        Height and width, at least 8 each.
    rng : numpy.random.Generator
        The only source of randomness: the same generator state gives the same mask.
    families : sequence of str or str, optional
        Names from :data:`FAMILIES` (a comma-separated string is accepted); None = all.
    max_coverage : float
        Largest fraction of the image that may be a hole, in (0, 1). A draw above it is
        repeated (up to 20 times); as a last resort the mask is cut to its top rows.

    Returns
    -------
    ndarray of bool, shape ``shape``
        Never empty and never full.
    """
    families = check_families(families)
    if not 0 < max_coverage < 1:
        raise ValueError(f"max_coverage must be in (0, 1), got {max_coverage!r}")
    h, w = _check(shape, rng)
    mask = None
    for _ in range(20):
        mask = FAMILIES[families[int(rng.integers(0, len(families)))]]((h, w), rng)
        if mask.mean() <= max_coverage:
            return mask
    # the last draw covers too much: keep its top rows only
    mask = mask.copy()
    mask[max(1, int(h * max_coverage)) :] = False
    if not mask.any():
        mask[0, int(rng.integers(0, w))] = True
    return mask
