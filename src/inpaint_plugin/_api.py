"""The public ``inpaint()`` call: validation, dtype and channel handling, slice-wise looping.

Everything that is the same for every method happens here, once, so that a backend function
only sees a clean float array ``(*spatial, C)`` and a boolean mask (see ``_backend.py``).

Guarantees, whatever the backend:

- pixels outside the mask come back bit-for-bit identical;
- the input arrays are never modified;
- the output has the input's dtype; integers are rounded and clipped; with ``clip=True`` (default)
  filled values stay within each channel's range of known values.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ._backend import Backend
from ._registry import get_backend

__all__ = ["inpaint", "iter_inpaint", "prepare"]

ProgressCallback = Callable[[int, int], Any]


def _is_dask(x) -> bool:
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks")


def _check_image(image) -> np.ndarray:
    if isinstance(image, np.ma.MaskedArray):
        raise TypeError("image: masked arrays are not supported; pass image.data and mask=image.mask")
    arr = np.asarray(image)
    kind = arr.dtype.kind
    if kind == "b":
        raise TypeError("image must be numeric (integer or float), got a bool array; "
                        "to inpaint a binary image, convert it with image.astype(np.uint8)")
    if kind == "c":
        raise TypeError("image must be real-valued, got a complex array; inpaint the real and imaginary parts "
                        "separately")
    if kind not in "iuf":
        raise TypeError(f"image must be an integer or float array, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.size == 0:
        raise ValueError(f"image must be a non-empty array, got shape {arr.shape}")
    return arr


def _channel_axis(channel_axis, ndim: int) -> Optional[int]:
    if channel_axis is None:
        return None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
        raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
    if not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis={channel_axis} is out of range for an image with {ndim} dimensions")
    return int(channel_axis) % ndim


def _check_mask(mask, spatial_shape) -> np.ndarray:
    m = np.asarray(mask)
    kind = m.dtype.kind
    if kind == "b":
        pass
    elif kind in "iu":
        m = m != 0  # e.g. a napari Labels layer: any label is a hole
    elif kind == "f":
        if np.isnan(m).any():
            raise ValueError("mask contains NaN; use a boolean mask (True = fill)")
        uniq = np.unique(m)
        if not np.isin(uniq, (0.0, 1.0)).all():
            raise ValueError("a float mask may only hold 0 and 1; use a boolean mask (True = fill)")
        m = m != 0
    else:
        raise TypeError(f"mask must be a boolean (or 0/1 integer) array, got dtype {m.dtype}")
    if m.shape != tuple(spatial_shape):
        raise ValueError(f"mask shape {m.shape} must equal the image shape without the channel axis "
                         f"{tuple(spatial_shape)}")
    return m


class Prepared:
    """Validated, channel-last views of the inputs (no copies of the image are made here)."""

    def __init__(self, image, mask, channel_axis, nodata, method, params, clip):
        self.backend: Backend = get_backend(method)
        self.params = _check_params(self.backend, params)
        self.image = _check_image(image)
        self.channel_axis = _channel_axis(channel_axis, self.image.ndim)
        if self.channel_axis is None:
            self.img = self.image[..., np.newaxis]
        else:
            self.img = np.moveaxis(self.image, self.channel_axis, -1)
        spatial = self.img.shape[:-1]
        if len(spatial) == 0:
            raise ValueError("image has no spatial dimensions (only a channel axis)")
        need = self.backend.spatial_ndim
        if need is not None and len(spatial) < need:
            raise ValueError(f"method {self.backend.name!r} works on {need}-D images; image has "
                             f"{len(spatial)} spatial dimension(s) (shape {self.image.shape}, "
                             f"channel_axis={channel_axis})")
        if not isinstance(clip, (bool, np.bool_)):
            raise TypeError(f"clip must be True or False, got {clip!r}")
        self.clip = bool(clip)

        is_float = self.img.dtype.kind == "f"
        nonfinite = (~np.isfinite(self.img)).any(axis=-1) if is_float else None
        if mask is None and nodata is None:
            if not is_float:
                raise ValueError("mask is required for integer images (mask=None only fills the NaNs of a "
                                 "float image); pass a mask or nodata=<value>")
            m = nonfinite.copy()
        else:
            m = np.zeros(spatial, dtype=bool) if mask is None else _check_mask(mask, spatial).copy()
            if nodata is not None:
                if not isinstance(nodata, numbers.Real) or isinstance(nodata, bool):
                    raise TypeError(f"nodata must be a number, got {nodata!r}")
                if np.isnan(nodata):
                    if not is_float:
                        raise ValueError("nodata=NaN only makes sense for float images")
                    m |= np.isnan(self.img).any(axis=-1)
                else:
                    m |= (self.img == nodata).any(axis=-1)
        if is_float:
            bad = nonfinite & ~m
            if bad.any():
                n = int(bad.sum())
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"image has NaN or inf at {n} pixel(s) outside the mask (first at {first}); "
                                 "add them to the mask, or pass mask=None to fill the NaNs")
        self.mask = m

    @property
    def spatial_shape(self):
        return self.img.shape[:-1]


def _check_params(backend: Backend, params: dict) -> dict:
    pmap = backend.param_map
    unknown = sorted(set(params) - set(pmap))
    if unknown:
        names = ", ".join(pmap) or "none"
        raise TypeError(f"method {backend.name!r} got unexpected parameter(s) {', '.join(map(repr, unknown))}; "
                        f"its parameters are: {names}")
    out = {}
    for name, p in pmap.items():
        out[name] = p.validate(params[name], backend.name) if name in params else p.default
    return out


def prepare(image, mask=None, method="biharmonic", *, channel_axis=None, nodata=None, clip=True, **params):
    """Validate the arguments of :func:`inpaint` and return the prepared inputs (used by the GUI and dask)."""
    return Prepared(image, mask, channel_axis, nodata, method, params, clip)


# --- channel mapping -----------------------------------------------------------------------------

def _channel_groups(n: int, backend: Backend):
    """Lists of input-channel indices, one list per call of the backend function."""
    if backend.channels == "per_channel":
        return [[c] for c in range(n)]
    if backend.channels == "rgb":
        groups = []
        for start in range(0, n, 3):
            chans = list(range(start, min(start + 3, n)))
            groups.append([chans[i % len(chans)] for i in range(3)])
        return groups
    return [list(range(n))]


def _call(backend: Backend, params: dict, block: np.ndarray, mask: np.ndarray) -> np.ndarray:
    filled = np.asarray(backend.func(block, mask, **params))
    if filled.shape != block.shape:
        raise RuntimeError(f"method {backend.name!r} returned shape {filled.shape}, expected {block.shape}")
    return filled


def _run_backend(backend: Backend, params: dict, work: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Run the backend on one prepared C-contiguous float block ``(*spatial, C)``; returns the filled block."""
    n = work.shape[-1]
    groups = _channel_groups(n, backend)
    if groups == [list(range(n))]:  # all channels at once, in order: no regrouping copies
        return _call(backend, params, work, mask)
    result = np.empty_like(work)
    for group in groups:
        filled = _call(backend, params, np.ascontiguousarray(work[..., group]), mask)
        # average the outputs of channels that appear more than once in the group (grey -> RGB)
        for c in set(group):
            idx = [i for i, g in enumerate(group) if g == c]
            result[..., c] = filled[..., idx].mean(axis=-1) if len(idx) > 1 else filled[..., idx[0]]
    return result


def _fill_block(prep: Prepared, img: np.ndarray, mask: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fill one block (a 2-D slice or the whole nD image); returns the values at ``mask`` (n, C) as float."""
    backend = prep.backend
    work = np.array(img, dtype=backend.dtype, order="C")  # private, C-contiguous copy
    known = ~mask
    if not known.any():
        raise ValueError("mask covers a whole slice; a 2-D method cannot fill it (use an nD method or fix the mask)")
    # reductions with where= instead of work[known]: no copy of the known pixels (a third of the time of
    # a fast backend on a large image went into such copies)
    axes = tuple(range(mask.ndim))
    fillv = np.mean(work, axis=axes, where=known[..., np.newaxis], dtype=np.float64)
    work[mask] = fillv.astype(work.dtype)
    if backend.normalize:
        scale = np.where(hi > lo, hi - lo, 1.0).astype(backend.dtype)
        work -= lo.astype(backend.dtype)
        work /= scale
    filled = np.asarray(_run_backend(backend, prep.params, work, mask)[mask], dtype=np.float64)
    if backend.normalize:
        filled = filled * np.where(hi > lo, hi - lo, 1.0) + lo
    if not np.isfinite(filled).all():
        raise RuntimeError(f"method {backend.name!r} produced NaN or inf values; this is a bug in the method")
    return filled


def _known_range(img: np.ndarray, mask: np.ndarray):
    """Per-channel ``(min, max)`` of the known pixels of a channel-last ``img`` as float64 (``mask`` has at
    least one known pixel)."""
    known = ~mask[..., np.newaxis]
    axes = tuple(range(mask.ndim))
    if img.dtype.kind == "f":
        first, last = np.inf, -np.inf
    else:
        info = np.iinfo(img.dtype)
        first, last = info.max, info.min
    lo = np.min(img, axis=axes, where=known, initial=first)
    hi = np.max(img, axis=axes, where=known, initial=last)
    return lo.astype(np.float64), hi.astype(np.float64)


def _cast(values: np.ndarray, dtype: np.dtype, lo, hi, clip: bool) -> np.ndarray:
    if clip:
        values = np.clip(values, lo, hi)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    elif dtype.kind == "f":
        finfo = np.finfo(dtype)
        values = np.clip(values, finfo.min, finfo.max)
    return values.astype(dtype)


def iter_inpaint(image, mask=None, method="biharmonic", *, channel_axis=None, nodata=None, clip=True,
                 **params) -> Iterator[tuple]:
    """Generator form of :func:`inpaint` for progress reporting and cancellation.

    Yields ``(done, total)`` after each block (2-D slice or whole image) and returns the result
    as the generator's return value (``StopIteration.value``). Stop iterating to cancel: nothing
    is written anywhere until the end.
    """
    prep = prepare(image, mask, method, channel_axis=channel_axis, nodata=nodata, clip=clip, **params)
    return (yield from _iter_prepared(prep))


def _iter_prepared(prep: Prepared):
    img, mask = prep.img, prep.mask
    if not mask.any():
        yield (1, 1)
        return prep.image.copy()
    if mask.all():
        raise ValueError("mask covers the whole image; there are no known pixels to inpaint from")
    lo, hi = _known_range(img, mask)

    out = np.array(img, copy=True)  # channel-last copy in the input dtype (known pixels bit-exact)
    nd = prep.backend.spatial_ndim
    spatial = prep.spatial_shape
    if nd is None or len(spatial) == nd:
        blocks = [()]
    else:
        lead = spatial[: len(spatial) - nd]
        blocks = [idx for idx in np.ndindex(*lead) if mask[idx].any()]
    total = len(blocks)
    for done, idx in enumerate(blocks, 1):
        m = mask[idx]
        if m.all():
            raise ValueError(f"mask covers the whole slice {idx} of the image; the {nd}-D method "
                             f"{prep.backend.name!r} has no known pixels there to inpaint from")
        sub_lo, sub_hi = lo, hi
        if prep.backend.normalize:  # the network sees the slice's own range
            sub_lo, sub_hi = _known_range(img[idx], m)
        values = _fill_block(prep, img[idx], m, sub_lo, sub_hi)
        out[idx][m] = _cast(values, img.dtype, lo, hi, prep.clip)
        yield (done, total)
    if prep.channel_axis is None:
        return out[..., 0]
    return np.moveaxis(out, -1, prep.channel_axis)


def inpaint(image, mask=None, method: str = "biharmonic", *, channel_axis: Optional[int] = None,
            nodata: Optional[float] = None, clip: bool = True, progress: Optional[ProgressCallback] = None,
            **params):
    """Fill the masked pixels of an image.

    Parameters
    ----------
    image : array_like (or dask array)
        Integer or float image of any dimension; optional channel axis.
    mask : array_like of bool, optional
        True where pixels must be filled; shape = image shape without the channel axis.
        Integer masks (e.g. napari labels) count every non-zero value as a hole. ``None`` fills
        the NaNs of a float image (remote-sensing nodata).
    method : str
        Name of a registered method, see :func:`inpaint_plugin.methods`.
    channel_axis : int, optional
        Axis of the channels, as in scikit-image. ``None``: a single-channel image.
    nodata : number, optional
        Also fill the pixels that equal this value (in any channel).
    clip : bool
        Keep filled values within each channel's range of known values (integers are always
        rounded and kept within their dtype).
    progress : callable, optional
        Called as ``progress(done, total)`` after each slice.
    **params
        Parameters of the method (see ``methods()[method].params``), e.g. ``seed``.

    Returns
    -------
    ndarray
        The repaired image: same shape and dtype, known pixels unchanged.
        A dask array when ``image`` is a dask array.
    """
    if _is_dask(image):
        from ._dask import inpaint_dask

        return inpaint_dask(image, mask, method, channel_axis=channel_axis, nodata=nodata, clip=clip, **params)
    if method == "auto":
        from ._evaluate import choose_method

        method = choose_method(image, mask, channel_axis=channel_axis, nodata=nodata, accepts=tuple(params))
        if "seed" in params and "seed" not in get_backend(method).param_map:
            params.pop("seed")  # the chosen method is deterministic: the seed has nothing to steer
    gen = iter_inpaint(image, mask, method, channel_axis=channel_axis, nodata=nodata, clip=clip, **params)
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(done, total)
