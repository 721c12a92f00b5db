"""napari sample-data contributions: damaged images with their masks (File > Open Sample).

Each function returns napari ``LayerData`` tuples ``(data, kwargs, layer_type)``; the arrays come
from :mod:`inpaint_plugin.data` (real images with reproducible damage, nothing is downloaded).
"""
from __future__ import annotations

import numpy as np

__all__ = ["damaged_cell", "damaged_ihc", "nodata_stripes"]


def _mask_layer(mask: np.ndarray, name: str) -> tuple:
    return (mask.astype(np.uint8), {"name": name, "opacity": 0.5}, "labels")


def damaged_cell() -> list:
    """Phase-contrast cell image (uint8) with dead/hot pixels, a dead column and scratches, and its mask.

    Returns
    -------
    list of tuple
        napari ``LayerData`` tuples ``(data, kwargs, layer_type)``: the image, then the mask as a uint8 labels layer.
    """
    from ..data import damaged_cell as load

    image, mask = load()
    return [(image, {"name": "damaged cell"}, "image"), _mask_layer(mask, "damaged cell mask")]


def damaged_ihc() -> list:
    """RGB immunohistochemistry slide with scratches and a lost tile, and its mask.

    Returns
    -------
    list of tuple
        napari ``LayerData`` tuples ``(data, kwargs, layer_type)``: the RGB image, then the mask as a uint8 labels layer.
    """
    from ..data import damaged_ihc as load

    image, mask = load()
    return [(image, {"name": "damaged IHC", "rgb": True}, "image"), _mask_layer(mask, "damaged IHC mask")]


def nodata_stripes() -> list:
    """Float image with NaN stripes (Landsat-7 SLC-off style); inpaint it with the "NaNs of the image" mask.

    Returns
    -------
    list of tuple
        napari ``LayerData`` tuples ``(data, kwargs, layer_type)``: one float image layer, its contrast limits set to (0, 1).
    """
    from ..data import nodata_stripes as load

    image = load()
    return [(image, {"name": "moon with NaN stripes", "contrast_limits": (0.0, 1.0)}, "image")]
