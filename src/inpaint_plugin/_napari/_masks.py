"""From napari layers to arrays on an image layer's pixel grid.

Helpers of the dock widget, kept free of Qt so they are easy to test and reuse:

- the full-resolution data and spatial shape of an image layer (multiscale and RGB aware);
- the indices of the slice the viewer currently shows;
- masks from Labels layers (whose shape must match the image, or its last axes: a 2-D mask then
  applies to every slice of a stack) and from Shapes layers, rasterized on the image's grid
  through the layers' world transforms;
- for lazy layers (dask, zarr, multiscale): the data as dask arrays and masks built as dask
  arrays on the image's chunks, so nothing is read before dask computes it.

Nothing here calls ``np.asarray`` on a whole layer when only one slice is needed, so dask-backed
layers stay lazy.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["level0", "spatial_shape", "current_index", "check_mask_shape", "take_region", "shapes_to_mask",
           "detector", "is_lazy", "as_dask", "spatial_chunks", "lazy_mask", "shapes_to_lazy_mask"]


def level0(layer):
    """The full-resolution data of ``layer`` (the first level of multiscale data), not converted.

    Parameters
    ----------
    layer : napari.layers.Layer
        An image or labels layer, multiscale or not.

    Returns
    -------
    array_like
        ``layer.data[0]`` for multiscale data, else ``layer.data`` (numpy, dask, zarr, ...).
    """
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def spatial_shape(layer) -> tuple:
    """Shape of an image layer without its RGB(A) axis.

    Parameters
    ----------
    layer : napari.layers.Image
        The image layer.

    Returns
    -------
    tuple of int
        The shape of its full-resolution data, the last axis dropped when ``layer.rgb``.
    """
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

    Returns
    -------
    tuple of int
        One index per leading axis, rounded and clipped to the layer's shape.
    """
    position = np.asarray(layer.world_to_data(world_point), dtype=float)
    shape = spatial_shape(layer)
    return tuple(int(np.clip(np.round(p), 0, n - 1)) for p, n in zip(position[:nlead], shape[:nlead]))


def check_mask_shape(shape: tuple, spatial: tuple, what: str) -> None:
    """Raise ``ValueError`` unless ``shape`` equals ``spatial`` or its last ``len(shape)`` axes.

    Parameters
    ----------
    shape : tuple of int
        The shape of the mask-like array.
    spatial : tuple of int
        The image's spatial shape (see :func:`spatial_shape`).
    what : str
        What the array is, for the message (e.g. ``"mask layer 'Labels'"``).

    Raises
    ------
    ValueError
        When the shapes do not fit.
    """
    shape, spatial = tuple(shape), tuple(spatial)
    if len(shape) == 0 or len(shape) > len(spatial) or spatial[len(spatial) - len(shape):] != shape:
        raise ValueError(f"{what} has shape {shape}, which does not fit the image's shape {spatial} "
                         "(it must equal it, or its last axes to apply to every slice)")


def take_region(array, spatial: tuple, index: tuple, broadcast: bool = True) -> np.ndarray:
    """The part of a mask-like ``array`` that covers the region ``index`` of an image.

    Only the selected part of a lazy (dask) array is computed.

    Parameters
    ----------
    array : array_like
        Numpy, dask or zarr array with the image's spatial shape or its last axes (see
        :func:`check_mask_shape`).
    spatial : tuple of int
        The image's spatial shape.
    index : tuple of int
        Integer indices for the first axes of the image (``()``: the whole image).
    broadcast : bool, optional
        If True (default) the result has the region's full shape; if False it keeps only the
        trailing axes ``array`` has, e.g. a 2-D mask for a whole stack, which
        :func:`inpaint_plugin.inpaint` applies to every frame without a copy per frame.

    Returns
    -------
    numpy.ndarray
        The region of ``array`` (a read-only broadcast view when it was broadcast).
    """
    spatial = tuple(spatial)
    missing = len(spatial) - array.ndim  # leading image axes the array does not have
    own = tuple(index[missing:]) if len(index) > missing else ()
    part = np.asarray(array[own] if own else array)
    return np.broadcast_to(part, spatial[len(index):]) if broadcast else part


def is_lazy(layer) -> bool:
    """True for layers whose data must not be read into memory: multiscale, dask, zarr, ...

    Only plain numpy arrays count as in memory.

    Parameters
    ----------
    layer : napari.layers.Layer
        Any layer with ``data``.

    Returns
    -------
    bool
        True unless the layer holds one numpy array.
    """
    return bool(getattr(layer, "multiscale", False)) or not isinstance(layer.data, np.ndarray)


def as_dask(array, chunks=None):
    """``array`` as a dask array, without reading it.

    Parameters
    ----------
    array : array_like
        Dask arrays are returned as they are; others (numpy, zarr, h5py, ...) are wrapped.
    chunks : tuple or str, optional
        The chunks to wrap with (default None: the array's own chunks (zarr, h5py), else dask's
        ``"auto"``).

    Returns
    -------
    dask.array.Array
        A lazy view of ``array``.
    """
    import dask.array as da

    from .._rules import is_dask as _is_dask

    if _is_dask(array):
        return array
    if chunks is None:
        chunks = getattr(array, "chunks", None) or "auto"
    return da.from_array(array, chunks=chunks)


def spatial_chunks(array, rgb: bool) -> tuple:
    """The chunks of a dask image along its spatial axes (without the RGB(A) axis).

    Parameters
    ----------
    array : dask.array.Array
        The image.
    rgb : bool
        Whether its last axis holds RGB(A) channels.

    Returns
    -------
    tuple of tuple of int
        ``array.chunks`` without the last axis' chunks when ``rgb``.
    """
    return tuple(array.chunks[:-1] if rgb else array.chunks)


def lazy_mask(array, chunks: tuple):
    """A boolean dask mask (non-zero = fill) on the image grid from mask-like ``array``.

    Parameters
    ----------
    array : array_like
        Numpy, dask or zarr array with the image's spatial shape or its last axes (checked by
        :func:`check_mask_shape`); fewer axes apply to every slice of the image.
    chunks : tuple of tuple of int
        The image's spatial chunks (see :func:`spatial_chunks`): the mask gets the same chunks,
        so the tiled inpainting reads mask and image chunk by chunk together.

    Returns
    -------
    dask.array.Array of bool
        The mask with the image's spatial shape and ``chunks``, broadcast over the leading axes
        ``array`` lacks.
    """
    import dask.array as da

    shape = tuple(sum(c) for c in chunks)
    own = chunks[len(chunks) - array.ndim:]
    mask = as_dask(array, chunks=own).rechunk(own) != 0
    if mask.shape != shape:
        mask = da.broadcast_to(mask, shape, chunks=chunks)
    return mask


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
    they cross.

    Parameters
    ----------
    shapes_layer : napari.layers.Shapes
        The shapes to rasterize.
    image_layer : napari.layers.Image
        The image whose pixel grid the mask is on.

    Returns
    -------
    numpy.ndarray of bool
        The image's spatial shape, or its last axes when the Shapes layer has fewer dimensions (2-D
        shapes over a stack then apply to every slice); True inside the shapes.
    """
    grid, vertices = _shapes_on_grid(shapes_layer, image_layer)
    if not vertices:
        return np.zeros(grid, dtype=bool)
    return _rasterize(shapes_layer, vertices, grid)


def _shapes_on_grid(shapes_layer, image_layer):
    """The grid the shapes are rasterized on (the image's last axes) and their vertices on it."""
    spatial = spatial_shape(image_layer)
    ndim = min(shapes_layer.ndim, len(spatial))
    grid = spatial[len(spatial) - ndim:]
    vertices = [_to_image_grid(shapes_layer, image_layer, np.asarray(v, dtype=float), ndim)
                for v in shapes_layer.data]
    return grid, vertices


def _rasterize(shapes_layer, vertices: list, grid: tuple) -> np.ndarray:
    """Rasterize shapes of ``shapes_layer``'s types with the given ``vertices`` on an array of shape ``grid``."""
    from napari.layers import Shapes

    on_grid = Shapes(vertices, shape_type=list(shapes_layer.shape_type), ndim=len(grid))
    return np.asarray(on_grid.to_labels(grid)) > 0


def shapes_to_lazy_mask(shapes_layer, image_layer, chunks: tuple):
    """:func:`shapes_to_mask` as a dask mask on the image's spatial ``chunks``, for large images.

    Only the bounding box of the shapes (on the image grid, clipped to it) is rasterized in memory,
    one byte per pixel; the rest of the mask is lazy zeros. Shapes drawn by hand cover a small part
    of a large image, so this stays small; shapes spanning a huge image need that much memory.
    The result equals :func:`shapes_to_mask` (broadcast to the image's spatial shape): filled
    shapes are rasterized at pixel centres, which a shift by whole pixels does not change, and
    paths are clipped to the grid edge exactly as on the full grid.

    Parameters
    ----------
    shapes_layer : napari.layers.Shapes
        The shapes to rasterize.
    image_layer : napari.layers.Image
        The image whose pixel grid the mask is on.
    chunks : tuple of tuple of int
        The image's spatial chunks (see :func:`spatial_chunks`).

    Returns
    -------
    dask.array.Array of bool
        The mask with the image's spatial shape and ``chunks``.
    """
    import dask.array as da

    grid, vertices = _shapes_on_grid(shapes_layer, image_layer)
    shape = tuple(sum(c) for c in chunks)
    if not vertices:
        return da.zeros(shape, dtype=bool, chunks=chunks)
    every = np.concatenate(vertices)
    start = np.clip(np.floor(every.min(axis=0)).astype(int) - 1, 0, grid)
    stop = np.clip(np.ceil(every.max(axis=0)).astype(int) + 2, start, grid)
    box = tuple(int(b - a) for a, b in zip(start, stop))
    if 0 in box:  # every shape lies outside the image
        return da.zeros(shape, dtype=bool, chunks=chunks)
    inside = _rasterize(shapes_layer, [v - start for v in vertices], box)
    mask = da.pad(da.from_array(inside, chunks=inside.shape),
                  [(int(a), int(n - b)) for a, b, n in zip(start, stop, grid)], mode="constant")
    return lazy_mask(mask, chunks)


def detector() -> Optional[object]:
    """``inpaint_plugin.detect`` (automatic defect detection) when this installation has it, else None.

    Returns
    -------
    callable or None
        The detection function, or None when it cannot be imported.
    """
    import inpaint_plugin

    try:
        return inpaint_plugin.detect
    except (AttributeError, ImportError):
        return None
