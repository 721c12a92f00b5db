"""The input rules of every entry point, written once.

``inpaint`` (numpy and dask), ``detect``, ``evaluate``, training, the CLI and the napari widget all
check their arguments with these functions, so a given mistake gets the same message everywhere.
This module knows nothing of backends, dask or files: it imports numpy only.

Every function raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, wrong value)
with a message that starts with the name of the argument.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Optional, Sequence

import numpy as np

__all__ = [
    "broadcast_mask",
    "check_bool",
    "check_channel_axis",
    "check_image",
    "check_known_pixels",
    "check_mask",
    "check_mask_source",
    "check_method_dims",
    "check_nodata",
    "check_progress",
    "check_spatial_dims",
    "check_value_range",
    "collapse_rgb_mask",
    "is_dask",
    "nodata_mask",
]


def is_dask(x) -> bool:
    """Tell whether ``x`` is a dask array, without importing dask.

    Parameters
    ----------
    x : object
        Any object.

    Returns
    -------
    bool
        True when ``x``'s type comes from the ``dask`` package and has ``chunks``.
    """
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks")


def _asarray(x, name: str) -> np.ndarray:
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged nested lists and the like
        raise ValueError(f"{name} must be a rectangular array (a numpy array or nested lists of equal "
                         f"lengths); numpy could not convert it: {e}") from None


def check_dtype(dtype: np.dtype, name: str = "image") -> None:
    """An image dtype must be integer or float (not bool, complex or object)."""
    kind = np.dtype(dtype).kind
    if kind == "b":
        raise TypeError(f"{name} must be numeric (integer or float), got a bool array; "
                        "to inpaint a binary image, convert it with image.astype(np.uint8)")
    if kind == "c":
        raise TypeError(f"{name} must be real-valued, got a complex array; inpaint the real and imaginary parts "
                        "separately")
    if kind not in "iuf":
        raise TypeError(f"{name} must be an integer or float array, got dtype {np.dtype(dtype)}")


def check_image(image, name: str = "image") -> np.ndarray:
    """``image`` as a numeric array (no copy when it already is one), or a clear error.

    Works for dask arrays too when ``image`` is one (only its dtype and shape are checked).

    Parameters
    ----------
    image : array_like or dask.array.Array
        The image: an integer or float array (nested lists are converted with ``np.asarray``).
    name : str, optional
        The argument's name, used in error messages (default ``"image"``).

    Returns
    -------
    numpy.ndarray or dask.array.Array
        ``image`` itself when it is already an array, else ``np.asarray(image)``.

    Raises
    ------
    TypeError
        For a masked array, or a bool, complex or object dtype.
    ValueError
        For a ragged nested list, a 0-d array or an array with an empty axis.
    """
    if isinstance(image, np.ma.MaskedArray):
        raise TypeError(f"{name}: masked arrays are not supported; pass image.data and mask=image.mask")
    arr = image if is_dask(image) else _asarray(image, name)
    check_dtype(arr.dtype, name)
    if arr.ndim < 1 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty array, got shape {tuple(arr.shape)}")
    return arr


def check_channel_axis(channel_axis, ndim: Optional[int]) -> Optional[int]:
    """``channel_axis`` normalised to ``0..ndim-1`` (or None).

    Parameters
    ----------
    channel_axis : int or None
        The axis that holds the colour channels; negative values count from the end.
    ndim : int or None
        The number of dimensions of the image; None checks only the type (the image is not known
        yet, e.g. a training option).

    Returns
    -------
    int or None
        The axis as a non-negative index (as given when ``ndim`` is None), or None when
        ``channel_axis`` is None.

    Raises
    ------
    TypeError
        When ``channel_axis`` is not an int (a bool is refused too).
    ValueError
        When it is outside ``[-ndim, ndim)``.
    """
    if channel_axis is None:
        return None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
        raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
    channel_axis = int(channel_axis)
    if ndim is None:
        return channel_axis
    if not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis={channel_axis} is out of range for an image with {ndim} dimensions")
    return int(channel_axis) % ndim


def check_bool(value, name: str) -> bool:
    """A flag that must be exactly True or False (a numpy bool counts).

    Parameters
    ----------
    value : bool
        The value given.
    name : str
        The argument's name, used in the error message.

    Returns
    -------
    bool
        ``value`` as a Python bool.

    Raises
    ------
    TypeError
        When ``value`` is anything else (``0``, ``1``, ``"yes"`` included).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_progress(progress) -> Optional[Callable]:
    """A progress callback: a callable ``progress(done, total)`` or None.

    Parameters
    ----------
    progress : callable or None
        The callback given.

    Returns
    -------
    callable or None
        ``progress`` unchanged.

    Raises
    ------
    TypeError
        When ``progress`` is neither None nor callable.
    """
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable progress(done, total) or None, got {progress!r}")
    return progress


def mask_values(m, name: str = "mask"):
    """A bool mask from a bool, 0/1 float or integer (labels: non-zero = hole) array; dask stays lazy."""
    kind = m.dtype.kind
    if is_dask(m) and kind in "biuf":
        return m  # lazy: the values are checked chunk by chunk when they are read
    if kind == "b":
        return m
    if kind in "iu":
        return m != 0  # e.g. a napari Labels layer: any label is a hole
    if kind == "f":
        if np.isnan(m).any():
            raise ValueError(f"{name} contains NaN; use a boolean mask (True = fill)")
        if not np.isin(np.unique(m), (0.0, 1.0)).all():
            raise ValueError(f"a float {name} may only hold 0 and 1; use a boolean mask (True = fill)")
        return m != 0
    raise TypeError(f"{name} must be a boolean (or 0/1 integer) array, got dtype {m.dtype}")


def broadcast_mask(shape: Sequence[int], spatial_shape: Sequence[int], name: str = "mask") -> tuple:
    """The leading axes a mask of ``shape`` is repeated over, or a clear error.

    A mask has the image's spatial shape, or the shape of its trailing spatial axes: a 2-D defect map
    on a (T, Y, X) stack applies to every frame (static sensor defects sit at the same place in each).

    Parameters
    ----------
    shape : sequence of int
        The mask's shape.
    spatial_shape : sequence of int
        The image's shape without its channel axis.
    name : str, optional
        The argument's name, used in the error message (default ``"mask"``).

    Returns
    -------
    tuple of int
        The leading spatial axes the mask is broadcast over; ``()`` when the shapes are equal.

    Raises
    ------
    ValueError
        When ``shape`` is neither ``spatial_shape`` nor its trailing axes.
    """
    shape, spatial = tuple(shape), tuple(spatial_shape)
    if shape == spatial:
        return ()
    if 0 < len(shape) < len(spatial) and spatial[len(spatial) - len(shape):] == shape:
        return spatial[: len(spatial) - len(shape)]
    raise ValueError(f"{name} shape {shape} must equal the image shape without the channel axis {spatial} "
                     f"(or its trailing axes {spatial[-2:] if len(spatial) > 2 else spatial}, to apply one mask "
                     "to every frame of a stack)")


def check_mask(mask, spatial_shape: Sequence[int], name: str = "mask") -> np.ndarray:
    """A boolean numpy mask of exactly ``spatial_shape``.

    A mask of the trailing axes is broadcast; the result is a read-only view then: copy it before
    writing. Integer masks count any non-zero value as a hole (napari Labels); float masks may only
    hold 0 and 1.

    Parameters
    ----------
    mask : array_like
        The mask (True = fill): bool, 0/1 float or integer.
    spatial_shape : sequence of int
        The image's shape without its channel axis.
    name : str, optional
        The argument's name, used in error messages (default ``"mask"``).

    Returns
    -------
    numpy.ndarray of bool
        The mask with shape ``spatial_shape``.

    Raises
    ------
    TypeError
        For a dtype other than bool, integer or float.
    ValueError
        For a float mask with NaN or values other than 0 and 1, or a shape that does not fit.
    """
    m = mask_values(_asarray(mask, name), name)
    lead = broadcast_mask(m.shape, spatial_shape, name)
    if lead:
        m = np.broadcast_to(m, tuple(spatial_shape))
    return m


def collapse_rgb_mask(m: np.ndarray, spatial_shape: Sequence[int]) -> np.ndarray:
    """A mask read from a picture file with colour channels as one boolean plane.

    A pixel is a hole when any of its channels is non-zero.

    Parameters
    ----------
    m : numpy.ndarray
        The mask as read, e.g. ``(*spatial_shape, 3)`` or ``(*spatial_shape, 4)``.
    spatial_shape : sequence of int
        The image's shape without its channel axis.

    Returns
    -------
    numpy.ndarray
        A bool array of ``spatial_shape`` when ``m`` has a trailing axis of 3 or 4 channels beyond
        it; ``m`` unchanged otherwise.
    """
    if m.ndim == len(spatial_shape) + 1 and m.shape[:-1] == tuple(spatial_shape) and m.shape[-1] in (3, 4):
        return (np.asarray(m) != 0).any(axis=-1)
    return m


def check_nodata(nodata: Any, dtype: np.dtype):
    """``nodata`` as a scalar of the image's dtype (or None / NaN).

    The comparison happens in the image's dtype: ``nodata=0.1`` on float32 data matches
    ``np.float32(0.1)``. A value the dtype cannot hold is an error (it would match no pixel).

    Parameters
    ----------
    nodata : int, float or None
        The value that marks missing pixels; NaN is allowed for float images.
    dtype : numpy.dtype
        The image's dtype.

    Returns
    -------
    numpy scalar or None
        ``nodata`` cast to ``dtype``, or None.

    Raises
    ------
    TypeError
        When ``nodata`` is not a real number (a bool is refused).
    ValueError
        For NaN on an integer image, a non-integer value on an integer image, or a value outside the
        dtype's range.
    """
    if nodata is None:
        return None
    nodata_value: Any = nodata
    dtype = np.dtype(dtype)
    if isinstance(nodata, (bool, np.bool_)) or not isinstance(nodata, (numbers.Real, np.number)):
        raise TypeError(f"nodata must be a number, got {nodata!r}")
    if isinstance(nodata, (float, np.floating)) and np.isnan(nodata):
        if dtype.kind != "f":
            raise ValueError("nodata=NaN only makes sense for float images")
        return dtype.type(np.nan)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if isinstance(nodata, (float, np.floating)) and not (np.isfinite(nodata) and float(nodata).is_integer()):
            raise ValueError(f"nodata={nodata!r} is not an integer, so it matches no pixel of a {dtype} image")
        if not info.min <= int(nodata_value) <= info.max:
            raise ValueError(f"nodata={nodata!r} is outside the range of the image's dtype {dtype} "
                             f"[{info.min}, {info.max}], so it matches no pixel")
        return dtype.type(int(nodata_value))
    with np.errstate(over="ignore"):
        value = dtype.type(float(nodata))
    if np.isinf(value) and np.isfinite(float(nodata)):
        raise ValueError(f"nodata={nodata!r} is outside the range of the image's dtype {dtype}")
    return value


def nodata_mask(img: np.ndarray, nodata) -> np.ndarray:
    """Where ``img`` holds a checked ``nodata`` value (from :func:`check_nodata`).

    Parameters
    ----------
    img : numpy.ndarray
        The image, channels included.
    nodata : numpy scalar
        The value from :func:`check_nodata`; NaN is matched with ``np.isnan``.

    Returns
    -------
    numpy.ndarray of bool
        Per-value matches, the shape of ``img``.
    """
    if isinstance(nodata, np.floating) and np.isnan(nodata):
        return np.isnan(img)
    return img == nodata


def check_value_range(value_range) -> Optional[tuple]:
    """``value_range=(lo, hi)``: finite numbers with lo < hi (or None).

    Parameters
    ----------
    value_range : tuple of float or None
        The range of valid intensities, ``(lo, hi)``, in the image's units.

    Returns
    -------
    tuple of float or None
        ``(lo, hi)`` as floats, or None.

    Raises
    ------
    TypeError
        When ``value_range`` is not a pair of numbers.
    ValueError
        When a bound is not finite or ``lo >= hi``.
    """
    if value_range is None:
        return None
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise TypeError(f"value_range must be a pair of numbers (lo, hi) or None, got {value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or not lo < hi:
        raise ValueError(f"value_range must be two finite numbers with lo < hi, got {value_range!r}")
    return lo, hi


def check_spatial_dims(n_spatial: int) -> None:
    """An image needs at least one spatial dimension besides its channel axis.

    Parameters
    ----------
    n_spatial : int
        Number of spatial dimensions (the image's dimensions less the channel axis).

    Raises
    ------
    ValueError
        When ``n_spatial`` is 0.
    """
    if n_spatial == 0:
        raise ValueError("image has no spatial dimensions (only a channel axis)")


def check_method_dims(method: str, need: Optional[int], n_spatial: int, shape: Sequence[int], channel_axis) -> None:
    """A method that works on ``need``-D images needs at least that many spatial dimensions.

    Parameters
    ----------
    method : str
        The method's name (for the message).
    need : int or None
        The method's ``spatial_ndim`` (None: any number of dimensions).
    n_spatial : int
        The image's number of spatial dimensions.
    shape : tuple of int
        The image's shape (for the message).
    channel_axis : int or None
        The channel axis the user gave (for the message).

    Raises
    ------
    ValueError
        When the image has fewer spatial dimensions than the method needs.
    """
    if need is not None and n_spatial < need:
        raise ValueError(f"method {method!r} works on {need}-D images; image has {n_spatial} spatial dimension(s) "
                         f"(shape {tuple(shape)}, channel_axis={channel_axis})")


def check_mask_source(mask, nodata, dtype: np.dtype) -> None:
    """Without a mask, only the NaNs of a float image (or the ``nodata`` pixels) can be the holes.

    Parameters
    ----------
    mask : array-like or None
        The user's mask.
    nodata : scalar or None
        The checked ``nodata`` value.
    dtype : numpy.dtype
        The image's dtype.

    Raises
    ------
    ValueError
        When ``mask`` and ``nodata`` are None and the image is not float.
    """
    if mask is None and nodata is None and np.dtype(dtype).kind != "f":
        raise ValueError("mask is required for integer images (mask=None only fills the NaNs of a "
                         "float image); pass a mask or nodata=<value>")


def check_known_pixels(n_known: int) -> None:
    """Inpainting needs at least one known pixel.

    Parameters
    ----------
    n_known : int
        Number of known (not masked) pixels.

    Raises
    ------
    ValueError
        When there is none.
    """
    if n_known == 0:
        raise ValueError("mask covers the whole image; there are no known pixels to inpaint from")
