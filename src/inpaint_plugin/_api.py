"""The public ``inpaint()`` call: a facade that dispatches to the engine (numpy), the dask path or
``method="auto"``. Nothing in the package imports this module back (it sits at the top of the import
graph, with the CLI and the napari widget)."""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Optional

from . import _rules
from ._engine import Prepared, iter_prepared, prepare

__all__ = ["inpaint", "iter_inpaint", "prepare"]

ProgressCallback = Callable[[int, int], Any]
logger = logging.getLogger("inpaint_plugin")


def iter_inpaint(image, mask=None, method="biharmonic", *, channel_axis=None, nodata=None, clip=True,
                 per_slice=None, value_range=None, **params) -> Iterator[tuple]:
    """Generator form of :func:`inpaint` for progress reporting and cancellation.

    Yields ``(done, total)`` after each block (2-D slice or whole image) and returns the result
    as the generator's return value (``StopIteration.value``). Stop iterating to cancel: nothing
    is written anywhere until the end. Takes numpy images and a registered method (not ``"auto"``,
    not dask arrays; use :func:`inpaint` for those).

    Parameters
    ----------
    image : array_like
        Integer or float image of any dimension; optional channel axis.
    mask : array_like of bool, optional
        True where pixels must be filled (shape = image shape without the channel axis, or its
        trailing spatial axes). ``None`` fills the NaNs of a float image.
    method : str, optional
        Name of a registered method (default ``"biharmonic"``).
    channel_axis : int, optional
        Axis of the channels; ``None`` (default) for a single-channel image.
    nodata : number, optional
        Also fill the pixels that equal this value (compared in the image's dtype).
    clip : bool, optional
        Keep filled values within each channel's range of known values (default True).
    per_slice : bool, optional
        ``True`` fills each 2-D plane of an nD image on its own; ``False``/``None`` fills jointly
        with methods that work in any dimension.
    value_range : (float, float), optional
        For deep networks: the data values mapped onto the network's [0, 1] (default: the uint8
        range, else the 0.1 and 99.9 percentiles of the known values).
    **params
        Parameters of the method (see ``methods()[method].params``), e.g. ``seed``.

    Returns
    -------
    numpy.ndarray
        Through ``StopIteration.value``: the repaired image, same shape and dtype, known pixels
        unchanged.

    Yields
    ------
    tuple of int
        ``(done, total)`` blocks filled so far.

    Raises
    ------
    TypeError, ValueError
        Naming the argument that is wrong (raised on the first ``next``).
    """
    prep = prepare(image, mask, method, channel_axis=channel_axis, nodata=nodata, clip=clip, per_slice=per_slice,
                   value_range=value_range, **params)
    return (yield from iter_prepared(prep))


def inpaint(image, mask=None, method: str = "biharmonic", *, channel_axis: Optional[int] = None,
            nodata: Optional[float] = None, clip: bool = True, progress: Optional[ProgressCallback] = None,
            per_slice: Optional[bool] = None, value_range: Optional[tuple] = None, return_method: bool = False,
            **params):
    """Fill the masked pixels of an image.

    Parameters
    ----------
    image : array_like (or dask array)
        Integer or float image of any dimension; optional channel axis.
    mask : array_like of bool, optional
        True where pixels must be filled; shape = image shape without the channel axis, or the shape
        of its trailing spatial axes (a 2-D defect map applies to every frame of a stack). Integer
        masks (e.g. napari labels) count every non-zero value as a hole. ``None`` fills the NaNs of a
        float image (remote-sensing nodata); a pixel that is NaN in some bands only keeps its other
        bands' values.
    method : str
        Name of a registered method, see :func:`inpaint_plugin.methods`, or ``"auto"``: the method
        with the lowest estimated error on this image (see :func:`inpaint_plugin.evaluate`); the
        choice is logged (logger ``inpaint_plugin``, level INFO) and returned with ``return_method``.
    channel_axis : int, optional
        Axis of the channels, as in scikit-image. ``None``: a single-channel image.
    nodata : number, optional
        Also fill the pixels that equal this value (compared in the image's dtype; in any channel,
        the other channels of such a pixel keep their values).
    clip : bool
        Keep filled values within each channel's range of known values (integers are always
        rounded and kept within their dtype).
    progress : callable, optional
        Called as ``progress(done, total)`` after each slice, and after each crop/tile of methods that
        report finer progress (deep networks); with ``method="auto"`` first over the trials of the
        choice. For a dask image: one count over the call, each chunk scanned during the call, then
        each chunk with holes filled when the result is computed (see
        :func:`inpaint_plugin._dask.inpaint_dask`). It may raise to cancel the run.
    per_slice : bool, optional
        How an nD image is filled by a method that works in any dimension: ``True`` fills each 2-D
        plane (the last two spatial axes) on its own (time series, independent frames, z-stacks with
        coarse steps), ``False``/``None`` fills the whole volume jointly. 2-D methods always work slice
        by slice.
    value_range : (float, float), optional
        For methods that map the data into a fixed range (deep networks): the data values mapped onto
        the network's [0, 1]. Default: the dtype's range for uint8 (what the networks were trained on,
        ``x / 255``), else the 0.1 and 99.9 percentiles of the known values, one range per RGB group.
    return_method : bool
        Return ``(result, method_name)``; useful with ``method="auto"``.
    **params
        Parameters of the method (see ``methods()[method].params``), e.g. ``seed``.

    Returns
    -------
    ndarray
        The repaired image: same shape and dtype, known pixels unchanged.
        A dask array when ``image`` is a dask array.

    Raises
    ------
    TypeError, ValueError
        Naming the argument that is wrong.

    Examples
    --------
    >>> import numpy as np, inpaint_plugin as ip
    >>> image = np.tile(np.arange(8.0), (8, 1)); mask = np.zeros((8, 8), bool); mask[3:5, 3:5] = True
    >>> ip.inpaint(image, mask)[3, 3:5]
    array([3., 4.])
    """
    _rules.check_progress(progress)
    _rules.check_bool(return_method, "return_method")
    if _rules.is_dask(image):
        from ._dask import inpaint_dask

        if value_range is not None or per_slice:
            raise TypeError("per_slice and value_range are not supported for dask arrays yet; "
                            "compute the array or fill it slice by slice")
        result = inpaint_dask(image, mask, method, channel_axis=channel_axis, nodata=nodata, clip=clip,
                              progress=progress, **params)
        return (result, method) if return_method else result
    if method == "auto":
        from ._evaluate import choose_method

        method = choose_method(image, mask, channel_axis=channel_axis, nodata=nodata, accepts=tuple(params),
                               progress=progress)
        logger.info("method='auto' chose %r", method)
        from ._registry import get_backend

        if "seed" in params and "seed" not in get_backend(method).param_map:
            params.pop("seed")  # the chosen method is deterministic: the seed has nothing to steer
    prep = Prepared(image, mask, channel_axis, nodata, method, params, clip, per_slice, value_range)
    gen = iter_prepared(prep, progress)
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return (stop.value, prep.backend.name) if return_method else stop.value
        if progress is not None:
            progress(done, total)
