"""Bundled sample data: real images with realistic, reproducible damage.

The images come with scikit-image (a dependency, so nothing is downloaded); the damage is made
with a fixed seed, so every call returns the same arrays.

- :func:`damaged_cell`: a phase-contrast microscopy image (uint8) with hot/dead pixels, a dead
  column and a few scratches.
- :func:`damaged_ihc`: an RGB immunohistochemistry slide with scratches and a lost tile.
- :func:`nodata_stripes`: a float32 image with Landsat-7 SLC-off style NaN stripes (``mask=None``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["damaged_cell", "damaged_ihc", "nodata_stripes", "dead_pixels_mask", "scratches_mask",
           "slc_off_mask"]


def dead_pixels_mask(shape, fraction=0.005, *, seed=0) -> np.ndarray:
    """Scattered single dead/hot pixels.

    Parameters
    ----------
    shape : tuple of int
        The mask's shape (any number of dimensions).
    fraction : float, optional
        The probability of each pixel being dead, 0 to 1 (default 0.005).
    seed : int or numpy.random.Generator, optional
        The seed of ``numpy.random.default_rng`` (default 0).

    Returns
    -------
    numpy.ndarray of bool
        True at the dead pixels.
    """
    rng = np.random.default_rng(seed)
    return rng.random(shape) < fraction


def scratches_mask(shape, n=4, width=2, *, seed=0) -> np.ndarray:
    """``n`` thin straight scratches across the image, from the left edge to the right edge.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the mask, in pixels.
    n : int, optional
        The number of scratches (default 4).
    width : int, optional
        Their thickness in rows, in pixels (default 2).
    seed : int or numpy.random.Generator, optional
        The seed of ``numpy.random.default_rng`` (default 0), which places the scratches' ends.

    Returns
    -------
    numpy.ndarray of bool
        True on the scratches.
    """
    from skimage.draw import line

    rng = np.random.default_rng(seed)
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    for _ in range(n):
        r0, r1 = rng.integers(0, h, 2)
        rr, cc = line(int(r0), 0, int(r1), w - 1)
        for dr in range(width):
            mask[np.clip(rr + dr, 0, h - 1), cc] = True
    return mask


def slc_off_mask(shape, period=24, width=3, angle=0.12) -> np.ndarray:
    """Wedge-free approximation of Landsat-7 SLC-off gaps: slanted stripes of missing rows.

    A pixel ``(r, c)`` is missing when ``(r + angle * c) % period < width``.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the mask, in pixels.
    period : float, optional
        The distance between stripes along a column, in pixels (default 24).
    width : float, optional
        The stripes' height, in pixels (default 3).
    angle : float, optional
        The slope of the stripes, rows per column (default 0.12).

    Returns
    -------
    numpy.ndarray of bool
        True on the stripes.
    """
    h, w = shape
    rows, cols = np.mgrid[:h, :w]
    return ((rows + angle * cols) % period) < width


def damaged_cell():
    """skimage's ``cell`` (uint8, 660x550) with dead pixels, a dead column and scratches.

    The damaged pixels are set to 0 or 255 at random; the same arrays on every call.

    Returns
    -------
    image : numpy.ndarray of uint8
        The damaged ``(660, 550)`` image.
    mask : numpy.ndarray of bool
        True at the damaged pixels.
    """
    from skimage import data

    clean = data.cell()
    mask = dead_pixels_mask(clean.shape, 0.004, seed=1)
    mask[:, 301] = True  # a dead detector column
    mask |= scratches_mask(clean.shape, n=3, width=2, seed=2)
    image = clean.copy()
    rng = np.random.default_rng(3)
    image[mask] = rng.choice(np.array([0, 255], dtype=np.uint8), size=int(mask.sum()))
    return image, mask


def damaged_ihc():
    """skimage's immunohistochemistry slide (RGB uint8) with scratches and a lost tile.

    The damaged pixels are set to 0 (black); the same arrays on every call.

    Returns
    -------
    image : numpy.ndarray of uint8
        The damaged ``(512, 512, 3)`` image.
    mask : numpy.ndarray of bool
        ``(512, 512)``, True at the damaged pixels.
    """
    from skimage import data

    clean = data.immunohistochemistry()
    mask = scratches_mask(clean.shape[:2], n=5, width=3, seed=4)
    mask[200:232, 300:340] = True
    image = clean.copy()
    image[mask] = 0
    return image, mask


def nodata_stripes():
    """A float32 image (skimage ``moon`` scaled to [0, 1]) with NaN SLC-off stripes.

    Fill it with ``mask=None``: :func:`inpaint_plugin.inpaint` then fills the NaNs.

    Returns
    -------
    numpy.ndarray of float32
        The ``(512, 512)`` image, NaN on the stripes of :func:`slc_off_mask`.
    """
    from skimage import data

    image = data.moon().astype(np.float32) / 255.0
    image[slc_off_mask(image.shape)] = np.nan
    return image
