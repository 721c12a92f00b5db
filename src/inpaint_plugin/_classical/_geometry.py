"""How wide holes are: one measure shared by the methods that adapt to it and by ``method="auto"``."""
from __future__ import annotations

import numpy as np

__all__ = ["hole_width"]


def hole_width(mask: np.ndarray) -> float:
    """The 95th percentile of the hole pixels' distance to the nearest known pixel (pixels).

    1 for isolated pixels and one-pixel lines, about half the width for stripes and strokes, half the
    side for a square; 0 for an empty mask. nD masks are measured in the planes of their last two
    axes (as the 2-D methods see them); a plane with no known pixel gives its larger side.

    Parameters
    ----------
    mask : array_like of bool
        The holes (True = fill), any number of dimensions.

    Returns
    -------
    float
        The hole width measure, in pixels (Euclidean distance transform).
    """
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    if not mask.any():
        return 0.0
    planes = mask.reshape(-1, *mask.shape[-2:]) if mask.ndim > 2 else mask.reshape(1, 1, -1) if mask.ndim == 1 \
        else mask[None]
    dist = []
    for plane in planes:
        if plane.all():
            return float(max(plane.shape))
        if plane.any():
            dist.append(ndimage.distance_transform_edt(plane)[plane])
    return float(np.percentile(np.concatenate(dist), 95))
