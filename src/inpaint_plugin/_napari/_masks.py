"""From napari layers to arrays on an image layer's pixel grid.

Helpers of the dock widget, kept free of Qt so they are easy to test and reuse:

- the full-resolution data and spatial shape of an image layer (multiscale and RGB aware);
- the indices of the slice the viewer currently shows;
- masks from Labels layers (whose shape must match the image, or its last axes: a 2-D mask then
  applies to every slice of a stack) and from Shapes layers, rasterized on the image's grid
  through the layers' world transforms.

Nothing here calls ``np.asarray`` on a whole layer when only one slice is needed, so dask-backed
layers stay lazy.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["level0", "spatial_shape", "current_index", "check_mask_shape", "take_region", "shapes_to_mask",
           "detector"]


def level0(layer):
    """The full-resolution data of ``layer`` (the first level of multiscale data), not converted."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def spatial_shape(layer) -> tuple:
    """Shape of an image layer without its RGB(A) axis."""
    shape = tuple(level0(layer).shape)
    return shape[:-1] if getattr(layer, "rgb", False) else shape


def current_index(layer, world_point, nlead: int) -> tuple:
    """Indices along the first ``nlead`` axes of ``layer`` at the viewer's world position.

    Parameters
    ----------
    layer : napari layer
        The image layer.
    world_point : sequence of float
        The viewer's current position (``viewer.dims.point``).
    nlead : int
        Number of leading axes to index (all but the two displayed spatial axes).
    """
    position = np.asarray(layer.world_to_data(world_point), dtype=float)
    shape = spatial_shape(layer)
    return tuple(int(np.clip(np.round(p), 0, n - 1)) for p, n in zip(position[:nlead], shape[:nlead]))


def check_mask_shape(shape: tuple, spatial: tuple, what: str) -> None:
    """Raise ``ValueError`` unless ``shape`` equals ``spatial`` or its last ``len(shape)`` axes."""
    shape, spatial = tuple(shape), tuple(spatial)
    if len(shape) == 0 or len(shape) > len(spatial) or spatial[len(spatial) - len(shape):] != shape:
        raise ValueError(f"{what} has shape {shape}, which does not fit the image's shape {spatial} "
                         "(it must equal it, or its last axes to apply to every slice)")


def take_region(array, spatial: tuple, index: tuple) -> np.ndarray:
    """The part of a mask-like ``array`` that covers the region ``index`` of an image.

    ``array`` has the image's spatial shape or its last axes (see :func:`check_mask_shape`);
    ``index`` holds integer indices for the first axes of the image (``()``: the whole image).
    Returns a numpy array with the region's shape; only the selected part of a lazy (dask) array
    is computed.
    """
    spatial = tuple(spatial)
    missing = len(spatial) - array.ndim  # leading image axes the array does not have
    own = tuple(index[missing:]) if len(index) > missing else ()
    part = np.asarray(array[own] if own else array)
    return np.broadcast_to(part, spatial[len(index):])


def _to_image_grid(shapes_layer, image_layer, vertices: np.ndarray, ndim: int) -> np.ndarray:
    """Vertices of one shape, in image data coordinates (the last ``ndim`` axes)."""
    out = []
    for vertex in vertices:
        world = shapes_layer.data_to_world(vertex)
        out.append(np.asarray(image_layer.world_to_data(world), dtype=float)[-ndim:])
    return np.array(out)


def shapes_to_mask(shapes_layer, image_layer) -> np.ndarray:
    """Rasterize the shapes of ``shapes_layer`` on the pixel grid of ``image_layer``.

    Vertices go through the Shapes layer's data-to-world and the image layer's world-to-data
    transforms, so shapes drawn over a scaled or translated image land on the right pixels.
    Filled shapes (rectangles, ellipses, polygons) mask their inside, lines and paths the pixels
    they cross. The result has the image's spatial shape, or its last axes when the Shapes layer
    has fewer dimensions (2-D shapes over a stack then apply to every slice).
    """
    from napari.layers import Shapes

    spatial = spatial_shape(image_layer)
    ndim = min(shapes_layer.ndim, len(spatial))
    grid = spatial[len(spatial) - ndim:]
    data = list(shapes_layer.data)
    if not data:
        return np.zeros(grid, dtype=bool)
    vertices = [_to_image_grid(shapes_layer, image_layer, np.asarray(v, dtype=float), ndim) for v in data]
    on_grid = Shapes(vertices, shape_type=list(shapes_layer.shape_type), ndim=ndim)
    return np.asarray(on_grid.to_labels(grid)) > 0


def detector() -> Optional[object]:
    """``inpaint_plugin.detect`` (automatic defect detection) when this installation has it, else None."""
    import inpaint_plugin

    try:
        return inpaint_plugin.detect
    except (AttributeError, ImportError):
        return None
