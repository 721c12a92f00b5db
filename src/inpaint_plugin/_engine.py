"""The engine behind ``inpaint()``: one numpy image, one backend.

It knows nothing of dask, files or ``method="auto"`` (the facade in ``_api.py`` dispatches those).
Everything that is the same for every method happens here, once, so that a backend function only
sees a clean float array ``(*spatial, C)`` and a boolean mask (see ``_backend.py``).

Guarantees, whatever the backend:

- pixels outside the mask come back bit-for-bit identical; the input arrays are never modified;
- the output has the input's dtype; integers are rounded and kept within their dtype (64-bit
  integers included: values are handled relative to each channel's smallest known value, in integer
  arithmetic, so no precision is lost on the way back); with ``clip=True`` (default) filled values stay
  within each channel's range of known values;
- fills are equivariant to an offset and a scale of the data for backends that declare
  ``normalize="joint"`` (all built-in classical methods): they work on centred, scaled values;
- with ``mask=None`` (NaN as missing) or ``nodata=``, a pixel missing in some bands only keeps the
  valid values of its other bands;
- on large images with sparse holes, the method runs on windows around the holes (with its
  ``margin`` of context), so memory and time scale with the holes, not with the image.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Generator, Optional

import numpy as np

from . import _rules
from ._backend import Backend
from ._registry import get_backend

__all__ = ["Inputs", "Prepared", "iter_prepared", "prepare", "prepare_inputs"]

ProgressCallback = Callable[[int, int], Any]

#: Blocks with at least this many pixels are split into windows around their holes when the windows
#: cover at most WINDOW_FRACTION of the block (smaller images behave exactly as before).
WINDOW_MIN_PIXELS = 1 << 22
WINDOW_FRACTION = 0.25
#: Side of the coarse cells used to group hole pixels into windows.
WINDOW_CELL = 128
#: Percentiles of the known values mapped onto [0, 1] for networks (16-bit and float data).
RANGE_PERCENTILES = (0.1, 99.9)
_RANGE_SAMPLE = 1 << 20
#: Pixels per slab when reducing over a large image (bounds the temporaries).
_SLAB_PIXELS = 1 << 22


class Inputs:
    """Validated, channel-last views of an image and its mask (no method needed).

    Attributes
    ----------
    image : ndarray
        The input as an array (no copy).
    img : ndarray
        Channel-last view ``(*spatial, C)``.
    channel_axis : int or None
    mask : ndarray of bool, shape ``spatial``
        The pixels to fill (the user's mask, NaNs with ``mask=None``, ``nodata`` matches).
    keep : ndarray of bool ``(*spatial, C)`` or None
        Band values inside ``mask`` that are valid and must be kept (a pixel missing in some bands
        only); None when there are none.
    clip : bool
    """

    def __init__(self, image, mask=None, channel_axis=None, nodata=None, clip=True):
        self.image = _rules.check_image(image)
        self.channel_axis = _rules.check_channel_axis(channel_axis, self.image.ndim)
        if self.channel_axis is None:
            self.img = self.image[..., np.newaxis]
        else:
            self.img = np.moveaxis(self.image, self.channel_axis, -1)
        spatial = self.img.shape[:-1]
        _rules.check_spatial_dims(len(spatial))
        self.clip = _rules.check_bool(clip, "clip")
        nodata = _rules.check_nodata(nodata, self.img.dtype)
        is_float = self.img.dtype.kind == "f"
        self.keep = None
        user = None if mask is None else _rules.check_mask(mask, spatial)
        _rules.check_mask_source(mask, nodata, self.img.dtype)
        # band values that are missing: NaN/inf when mask=None, nodata matches
        bad_bands = None
        if mask is None and is_float:
            bad_bands = ~np.isfinite(self.img)
        if nodata is not None:
            hits = _rules.nodata_mask(self.img, nodata)
            bad_bands = hits if bad_bands is None else bad_bands | hits
        if bad_bands is not None:
            derived = bad_bands.any(axis=-1)
            m = derived if user is None else derived | user
            if self.img.shape[-1] > 1:
                keep = derived[..., np.newaxis] & ~bad_bands
                if user is not None:
                    keep &= ~user[..., np.newaxis]
                if keep.any():
                    self.keep = keep
        else:
            m = user
        if is_float:
            nonfinite = ~np.isfinite(self.img)
            bad = nonfinite.any(axis=-1) & ~m
            if bad.any():
                n = int(bad.sum())
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"image has NaN or inf at {n} pixel(s) outside the mask (first at {first}); "
                                 "add them to the mask, or pass mask=None to fill the NaNs")
        self.mask = m

    @property
    def spatial_shape(self):
        return self.img.shape[:-1]


def prepare_inputs(image, mask=None, *, channel_axis=None, nodata=None, clip=True) -> Inputs:
    """Validate an image and its mask as :func:`inpaint` does, without choosing a method.

    Parameters
    ----------
    image : array_like
        Integer or float image of any dimension.
    mask : array_like of bool, optional
        True where pixels must be filled; ``None`` fills the NaNs of a float image.
    channel_axis : int, optional
        Axis of the channels; ``None`` (default) for a single-channel image.
    nodata : number, optional
        Also fill the pixels that equal this value.
    clip : bool, optional
        Keep filled values within the known range (default True).

    Returns
    -------
    Inputs
        The validated, channel-last views of the image and its mask.

    Raises
    ------
    TypeError, ValueError
        Naming the argument that is wrong.
    """
    return Inputs(image, mask, channel_axis, nodata, clip)


class Prepared(Inputs):
    """:class:`Inputs` plus a backend and its validated parameters.

    Parameters
    ----------
    image, mask, channel_axis, nodata
        As for :class:`Inputs`.
    method : str or Backend
        A registered method's name, or a backend object.
    params : dict
        The method's parameters, checked with ``Backend.check_params``.
    clip : bool
        As for :class:`Inputs`.
    per_slice : bool, optional
        ``True`` fills each 2-D plane of an nD image on its own (default None: jointly where the
        method works in any dimension).
    value_range : (float, float), optional
        The data values mapped onto a network's [0, 1]; only for methods with ``normalize="range"``.

    Attributes
    ----------
    backend : Backend
        The method's backend.
    params : dict
        The validated parameters.
    value_range : tuple of float or None
        The checked ``value_range``.
    block_ndim : int
        Spatial dimensions filled jointly (the leading ones are looped over).

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, a ``value_range`` the method does not use, or an image with fewer
        spatial dimensions than the method needs.
    """

    def __init__(self, image, mask, channel_axis, nodata, method, params, clip, per_slice=None, value_range=None):
        self.backend: Backend = method if isinstance(method, Backend) else get_backend(method)
        self.params = self.backend.check_params(params)
        super().__init__(image, mask, channel_axis, nodata, clip)
        self.value_range = _rules.check_value_range(value_range)
        if self.value_range is not None and self.backend.normalize != "range":
            raise TypeError(f"value_range only applies to methods that map the data into a fixed range "
                            f"(deep networks); method {self.backend.name!r} works on the data as they are")
        if per_slice is not None:
            per_slice = _rules.check_bool(per_slice, "per_slice")
        spatial = self.spatial_shape
        need = self.backend.spatial_ndim
        _rules.check_method_dims(self.backend.name, need, len(spatial), self.image.shape, channel_axis)
        if per_slice is False and need is not None and len(spatial) > need:
            raise ValueError(f"per_slice=False: method {self.backend.name!r} works on {need}-D images and always "
                             "fills a stack slice by slice; use an nD method (e.g. 'biharmonic') to fill it jointly")
        if per_slice and len(spatial) < 2:
            raise ValueError("per_slice=True needs at least 2 spatial dimensions")
        #: spatial dimensions filled jointly (the leading ones are looped over)
        self.block_ndim = need if need is not None else (2 if per_slice else len(spatial))


def prepare(image, mask=None, method="biharmonic", *, channel_axis=None, nodata=None, clip=True, per_slice=None,
            value_range=None, **params) -> Prepared:
    """Validate the arguments of :func:`inpaint` and return the prepared inputs (used by the GUI and dask).

    Parameters
    ----------
    image : array_like
        Integer or float image of any dimension.
    mask : array_like of bool, optional
        True where pixels must be filled; ``None`` fills the NaNs of a float image.
    method : str, optional
        Name of a registered method (default ``"biharmonic"``).
    channel_axis : int, optional
        Axis of the channels; ``None`` (default) for a single-channel image.
    nodata : number, optional
        Also fill the pixels that equal this value.
    clip : bool, optional
        Keep filled values within the known range (default True).
    per_slice : bool, optional
        ``True`` fills each 2-D plane on its own.
    value_range : (float, float), optional
        The data values mapped onto a network's [0, 1].
    **params
        Parameters of the method.

    Returns
    -------
    Prepared
        The validated inputs, backend and parameters, ready for :func:`iter_prepared`.
    """
    return Prepared(image, mask, channel_axis, nodata, method, params, clip, per_slice, value_range)


# --- value mapping -------------------------------------------------------------------------------

class _Mapping:
    """Per-channel affine map between data values and the backend's working values ``u``.

    ``u = (x - offset) / scale``. With ``exact`` (integer data, offset = smallest known value of the
    channel) the subtraction and the way back are done in integers, modulo 2**64 for 64-bit data, so no
    precision is lost; for float data the halves are subtracted, so that ranges up to the float64
    maximum never overflow.
    """

    def __init__(self, dtype: np.dtype, offset, scale, lo, hi, exact: bool):
        self.dtype = np.dtype(dtype)
        self.offset = list(offset)  # per channel: Python ints when exact, else floats
        self.scale = [float(v) for v in scale]
        self.lo, self.hi = lo, hi  # clip range per channel (Python numbers)
        self.exact = exact

    def to_work(self, block: np.ndarray, work_dtype) -> np.ndarray:
        out = np.empty(block.shape, dtype=work_dtype)
        for c in range(block.shape[-1]):
            x = block[..., c]
            if self.exact and self.dtype.itemsize == 8:
                # known values are >= offset, so the uint64 difference is exact; hole garbage below the
                # offset wraps around, but the engine overwrites hole pixels anyway
                with np.errstate(over="ignore"):
                    d = x.astype(np.uint64) - np.uint64(self.offset[c] % (1 << 64))
                out[..., c] = d.astype(np.float64) / self.scale[c]
            elif self.dtype.kind in "iu":
                out[..., c] = (x.astype(np.float64) - self.offset[c]) / self.scale[c]
            else:
                out[..., c] = (x.astype(np.float64) * 0.5 - self.offset[c] * 0.5) / (self.scale[c] * 0.5)
        return out

    def from_work(self, u: np.ndarray, clip: bool) -> np.ndarray:
        """Values ``u`` (n, C) float64 back to the data's dtype: rounded for integers, clipped to the
        known range with ``clip``, always to the dtype's range."""
        out = np.empty(u.shape, dtype=self.dtype)
        for c in range(u.shape[-1]):
            v = u[:, c] * self.scale[c]
            if self.exact:
                info = np.iinfo(self.dtype)
                off = int(self.offset[c])
                lim = (int(self.lo[c]), int(self.hi[c])) if clip else (info.min, info.max)
                d = np.clip(np.rint(v), _float_at_least(lim[0] - off), _float_at_most(lim[1] - off))
                if self.dtype.itemsize < 8:
                    out[:, c] = (d + off).astype(self.dtype)
                else:  # two's complement arithmetic modulo 2**64: offset + d lies in the dtype
                    mag = np.abs(d).astype(np.uint64)
                    base = np.uint64(off % (1 << 64))
                    with np.errstate(over="ignore"):
                        r = np.where(d < 0, base - mag, base + mag)
                    out[:, c] = r.view(self.dtype) if self.dtype.kind == "i" else r
                continue
            x = v + self.offset[c]
            if clip:
                x = np.clip(x, float(self.lo[c]), float(self.hi[c]))
            if self.dtype.kind in "iu":
                info = np.iinfo(self.dtype)
                x = np.clip(np.rint(x), _float_at_least(info.min), _float_at_most(info.max))
            else:
                finfo = np.finfo(self.dtype)
                x = np.clip(x, float(finfo.min), float(finfo.max))
            with np.errstate(over="ignore", invalid="ignore"):
                out[:, c] = x.astype(self.dtype)
        return out


def _float_at_most(v: int) -> float:
    f = float(v)
    return f if int(f) <= v else float(np.nextafter(f, -np.inf))


def _float_at_least(v: int) -> float:
    f = float(v)
    return f if int(f) >= v else float(np.nextafter(f, np.inf))


def _known_range(img: np.ndarray, mask: np.ndarray):
    """Per-channel ``(min, max)`` of the known pixels of a channel-last ``img``, as Python numbers
    (exact for 64-bit integers). Large images are reduced in slabs of rows, so that the temporary
    "known" mask stays small."""
    if img.dtype.kind == "f":
        first, last = np.inf, -np.inf
    else:
        info = np.iinfo(img.dtype)
        first, last = info.max, info.min
    axes = tuple(range(mask.ndim))
    n = img.shape[-1]
    lo = np.full(n, first, dtype=img.dtype)
    hi = np.full(n, last, dtype=img.dtype)
    rows = max(1, _SLAB_PIXELS // max(1, mask[0].size)) if mask.ndim > 1 else mask.shape[0]
    for r0 in range(0, mask.shape[0], rows):
        known = ~mask[r0:r0 + rows, ..., np.newaxis]
        part = img[r0:r0 + rows]
        lo = np.minimum(lo, np.min(part, axis=axes, where=known, initial=first))
        hi = np.maximum(hi, np.max(part, axis=axes, where=known, initial=last))
    return [x.item() for x in lo], [x.item() for x in hi]


def _known_sample(img: np.ndarray, mask: np.ndarray, chans) -> np.ndarray:
    """Up to about ``_RANGE_SAMPLE`` known values of channels ``chans`` (a regular subsample)."""
    flat_m = mask.reshape(-1)
    step = max(1, flat_m.size // _RANGE_SAMPLE)
    sub = img.reshape(-1, img.shape[-1])[::step][:, chans]
    return sub[~flat_m[::step]].astype(np.float64).ravel()


def _mapping(prep: Prepared, img: np.ndarray, mask: np.ndarray, lo, hi) -> Optional[_Mapping]:
    """The working-value map of ``prep.backend`` for this image (None: the data as they are)."""
    backend = prep.backend
    mode = backend.normalize
    dtype = img.dtype
    n = img.shape[-1]
    is_int = dtype.kind in "iu"
    if mode is True:
        mode = "per_channel"
    if mode is False:
        if not is_int or dtype.itemsize < 8:
            return None
        mode = "exact"  # 64-bit integers: float64 cannot hold them; work relative to the offset, unscaled
    if mode == "range":
        if prep.value_range is not None:
            ranges = [prep.value_range] * n
        elif dtype == np.uint8:
            ranges = [(0.0, 255.0)] * n  # what the networks were trained on: x / 255
        else:  # one robust range per group of channels the network sees together (keeps colour)
            ranges = [(0.0, 1.0)] * n
            for group in backend.channel_groups(n):
                chans = sorted(set(group))
                vals = _known_sample(img, mask, chans)
                a, b = (float(v) for v in np.percentile(vals, RANGE_PERCENTILES)) if vals.size else (0.0, 1.0)
                if not b > a:
                    a, b = float(min(lo[c] for c in chans)), float(max(hi[c] for c in chans))
                    if not b > a:
                        a, b = a - 0.5, a + 0.5
                for c in chans:
                    ranges[c] = (a, b)
        return _Mapping(dtype, [r[0] for r in ranges], [r[1] - r[0] for r in ranges], lo, hi, exact=False)
    offset: list
    if is_int:
        offset = [int(v) for v in lo]
        spans = [float(int(h) - int(l_)) for l_, h in zip(lo, hi)]
    else:
        offset = [0.5 * l_ + 0.5 * h for l_, h in zip(lo, hi)] if mode == "joint" else [float(v) for v in lo]
        spans = []
        for l_, h in zip(lo, hi):
            half = 0.5 * h - 0.5 * l_
            spans.append(2 * half if math.isfinite(2 * half) else half)  # half-span only beyond float64 max
    if mode == "exact":
        scale = [1.0] * n
    elif mode == "per_channel":
        scale = [v if v > 0 else 1.0 for v in spans]
    else:  # joint: one scale for all channels keeps their relative weights
        top = max(spans)
        scale = [top if top > 0 else 1.0] * n
    return _Mapping(dtype, offset, scale, lo, hi, exact=is_int)


# --- running a backend -----------------------------------------------------------------------------

def _call(backend: Backend, params: dict, block: np.ndarray, mask: np.ndarray) -> np.ndarray:
    filled = np.asarray(backend.func(block, mask, **params))
    if filled.shape != block.shape:
        raise RuntimeError(f"method {backend.name!r} returned shape {filled.shape}, expected {block.shape}")
    return filled


def _run_backend(backend: Backend, params: dict, work: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Run the backend on one prepared C-contiguous float block ``(*spatial, C)``; returns the filled block."""
    n = work.shape[-1]
    groups = backend.channel_groups(n)
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


def _fill_block(prep: Prepared, img: np.ndarray, mask: np.ndarray, mapping: Optional[_Mapping],
                params: dict) -> np.ndarray:
    """Fill one block; returns the working values at ``mask`` as float64 ``(n, C)``."""
    backend = prep.backend
    if not (~mask).any():
        raise ValueError("mask covers a whole slice; a 2-D method cannot fill it (use an nD method or fix the mask)")
    if mapping is None:
        work = np.array(img, dtype=backend.dtype, order="C")  # private, C-contiguous copy
    else:
        work = mapping.to_work(img, backend.dtype)
    # reductions with where= instead of work[known]: no copy of the known pixels
    axes = tuple(range(mask.ndim))
    fillv = np.mean(work, axis=axes, where=~mask[..., np.newaxis], dtype=np.float64)
    work[mask] = fillv.astype(work.dtype)
    if mapping is not None and backend.normalize == "range":
        np.clip(work, 0.0, 1.0, out=work)
    filled = np.asarray(_run_backend(backend, params, work, mask)[mask], dtype=np.float64)
    if not np.isfinite(filled).all():
        raise RuntimeError(f"method {backend.name!r} produced NaN or inf values; this is a bug in the method")
    return filled


def _windows(mask: np.ndarray, margin: int) -> Optional[list]:
    """Windows ``(slices, write_mask)`` covering every hole of ``mask`` with ``margin`` context, or None
    when windows would not save much (small blocks, dense holes).

    Holes are grouped on a coarse grid of ``WINDOW_CELL`` cells, found by reductions along each axis
    (no coordinate list and no label image of the block's size); cells that touch (diagonals included)
    form one window, so a connected hole always lies whole in one window.
    """
    from scipy import ndimage

    if mask.size < WINDOW_MIN_PIXELS:
        return None
    grid = mask
    for ax, size in enumerate(mask.shape):
        grid = np.logical_or.reduceat(grid, np.arange(0, size, WINDOW_CELL), axis=ax)
    if grid.sum() * WINDOW_CELL**mask.ndim > WINDOW_FRACTION * mask.size:
        return None
    labels, _ = ndimage.label(grid, structure=np.ones((3,) * mask.ndim, bool))
    windows, area = [], 0
    for idx, box in enumerate(ndimage.find_objects(labels), start=1):
        sl = tuple(slice(max(0, b.start * WINDOW_CELL - margin), min(s, b.stop * WINDOW_CELL + margin))
                   for b, s in zip(box, mask.shape))
        area += math.prod(s.stop - s.start for s in sl)
        windows.append((sl, box, idx))
    if area > WINDOW_FRACTION * mask.size:
        return None
    out = []
    for sl, box, idx in windows:
        own = labels[box] == idx  # this window's cells, upsampled to pixels
        for ax in range(mask.ndim):
            own = np.repeat(own, WINDOW_CELL, axis=ax)
        core = tuple(slice(b.start * WINDOW_CELL - s.start, min(b.stop * WINDOW_CELL, s.stop) - s.start)
                     for b, s in zip(box, sl))
        write = np.zeros(tuple(s.stop - s.start for s in sl), bool)
        write[core] = own[tuple(slice(0, c.stop - c.start) for c in core)]
        write &= mask[sl]
        out.append((sl, write))
    return out


def _blocks(prep: Prepared):
    mask = prep.mask
    spatial = prep.spatial_shape
    nd = prep.block_ndim
    if len(spatial) == nd:
        return [()]
    lead = spatial[: len(spatial) - nd]
    return [idx for idx in np.ndindex(*lead) if mask[idx].any()]


def iter_prepared(prep: Prepared, progress: Optional[ProgressCallback] = None) -> Generator[tuple, None, Any]:
    """Fill a :class:`Prepared` image; yields ``(done, total)`` per block, returns the result.

    Parameters
    ----------
    prep : Prepared
        The validated inputs from :func:`prepare`.
    progress : callable, optional
        ``progress(done, total)`` over all blocks, called with the finer progress of backends that
        report it (``reports_progress``); None (default) for none.

    Returns
    -------
    numpy.ndarray
        Through ``StopIteration.value``: the repaired image, the input's shape and dtype, known
        pixels unchanged.

    Yields
    ------
    tuple of int
        ``(done, total)`` blocks filled so far.

    Raises
    ------
    ValueError
        When the mask covers the whole image, or a whole block that is filled on its own.
    """
    img, mask = prep.img, prep.mask
    if not mask.any():
        yield (1, 1)
        return prep.image.copy()
    if mask.all():
        _rules.check_known_pixels(0)
    lo, hi = _known_range(img, mask)
    mapping = _mapping(prep, img, mask, lo, hi)
    backend = prep.backend

    out = np.array(img, copy=True)  # channel-last copy in the input dtype (known pixels bit-exact)
    blocks = _blocks(prep)
    total = len(blocks)
    for done, idx in enumerate(blocks, 1):
        m = mask[idx]
        if m.all():
            raise ValueError(f"mask covers the whole slice {idx} of the image; the {prep.block_ndim}-D fill of "
                             f"method {backend.name!r} has no known pixels there to inpaint from")
        block_map = mapping
        if backend.normalize in (True, "per_channel") and total > 1:
            # per-channel methods see each slice's own range (clipped to the whole image's known range)
            block_map = _mapping(prep, img[idx], m, *_known_range(img[idx], m))
            if block_map is not None:
                block_map.lo, block_map.hi = lo, hi
        windows = None if backend.normalize == "range" else _windows(m, int(backend.margin))
        parts = windows if windows is not None else [(tuple(slice(None) for _ in m.shape), None)]
        n_parts = len(parts)
        for k, (sl, write) in enumerate(parts):
            params = prep.params
            if backend.reports_progress and progress is not None:
                params = dict(params, progress=_sub_progress(progress, (done - 1) * n_parts + k, total * n_parts))
            sub_img, sub_m = img[idx][sl], m[sl]
            u = _fill_block(prep, sub_img, sub_m, block_map, params)
            if write is None:
                write = sub_m
            else:
                u = u[write[sub_m]]
            out[idx][sl][write] = _from_work(u, block_map, img.dtype, lo, hi, prep.clip)
        yield (done, total)
    if prep.keep is not None:
        out[prep.keep] = img[prep.keep]  # valid bands of partly missing pixels
    if prep.channel_axis is None:
        return out[..., 0]
    return np.moveaxis(out, -1, prep.channel_axis)


def _sub_progress(progress: ProgressCallback, base: int, total_parts: int) -> ProgressCallback:
    def report(done: int, total: int) -> None:
        total = max(1, int(total))
        progress(base * total + int(done), total_parts * total)

    return report


def _from_work(u: np.ndarray, mapping: Optional[_Mapping], dtype: np.dtype, lo, hi, clip: bool) -> np.ndarray:
    if mapping is not None:
        return mapping.from_work(u, clip)
    # data units (float data, or integers up to 32 bits: float64 holds them exactly)
    if clip:
        u = np.clip(u, np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        u = np.clip(np.rint(u), info.min, info.max)
    else:
        finfo = np.finfo(dtype)
        u = np.clip(u, finfo.min, finfo.max)
    with np.errstate(over="ignore"):
        return u.astype(dtype)


def fill(image, mask=None, method="biharmonic", *, progress: Optional[ProgressCallback] = None, **kwargs):
    """``inpaint()`` for numpy images and a registered method (no dask, no ``"auto"``): what the
    strategies below the facade (dask windows, evaluate, auto) call."""
    gen = iter_prepared(prepare(image, mask, method, **kwargs), progress)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
