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
    """Scattered single dead/hot pixels."""
    rng = np.random.default_rng(seed)
    return rng.random(shape) < fraction


def scratches_mask(shape, n=4, width=2, *, seed=0) -> np.ndarray:
    """``n`` thin straight scratches across the image."""
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
    """Wedge-free approximation of Landsat-7 SLC-off gaps: slanted stripes of missing rows."""
    h, w = shape
    rows, cols = np.mgrid[:h, :w]
    return ((rows + angle * cols) % period) < width


def damaged_cell():
    """``(image, mask)``: skimage's ``cell`` (uint8, 660x550) with dead pixels, a dead column, scratches."""
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
    """``(image, mask)``: skimage's immunohistochemistry slide (RGB uint8) with scratches and a lost tile."""
    from skimage import data

    clean = data.immunohistochemistry()
    mask = scratches_mask(clean.shape[:2], n=5, width=3, seed=4)
    mask[200:232, 300:340] = True
    image = clean.copy()
    image[mask] = 0
    return image, mask


def nodata_stripes():
    """A float32 image (skimage ``moon`` scaled to [0, 1]) with NaN SLC-off stripes; fill with ``mask=None``."""
    from skimage import data

    image = data.moon().astype(np.float32) / 255.0
    image[slc_off_mask(image.shape)] = np.nan
    return image
