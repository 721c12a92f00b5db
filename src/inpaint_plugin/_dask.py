"""Inpainting of images larger than memory: dask arrays, filled chunk by chunk.

:func:`inpaint_dask` (reached through :func:`inpaint_plugin.inpaint` when the image is a dask
array) returns a lazy dask array with the chunks of the input:

- a chunk without masked pixels is the input chunk itself (the output graph aliases the input
  key: no task, no copy);
- a chunk with masked pixels is filled by the in-memory :func:`inpaint_plugin.inpaint` on
  *windows* assembled from the chunk and its neighbours: holes closer than twice a context
  ``margin`` (the method's ``Backend.margin`` unless ``margin=`` is given) form a group, and each
  group is filled on its own window, the bounding box of its holes grown by ``margin`` along the
  axes the method works on (scattered dead pixels cost a few small windows, not a whole chunk).
  Only the chunk's own masked pixels are replaced.

How this relates to the in-memory result:

- A hole whose pixels and the context the method needs around them lie inside the window gets
  the same fill as in memory. That holds for every hole that extends less than ``margin`` pixels
  (minus the method's own reach, e.g. 2 pixels for the biharmonic stencil) into the neighbouring
  chunks. A hole that crosses a chunk border is filled once per chunk it touches, each time with
  the whole hole in the window, so both sides agree.
- A hole larger than that is cut by the window edge: it is still filled, but each chunk sees a
  different part of it and the two sides of a chunk border may not match. Use larger chunks or a
  larger ``margin`` for such holes. A window with no known pixel at all raises ``ValueError``.
  Long thin defects (dead columns, stripes) narrower than the margin are the common exception:
  the fill across a line a few pixels wide depends on nearby pixels only, and the tiled biharmonic
  solution for 1-3 pixel lines crossing many chunks equals the in-memory one to within 1e-7 of
  the image's range.
- ``clip=True`` clips to the range of known values of the *whole* image, per channel, exactly as
  the in-memory call does; the range comes from the scan described below. A method that clips
  its own output to the range of the pixels it is given clips to the window's range instead.
- Iterative solvers (e.g. multigrid-preconditioned CG) agree to their tolerance, not bit for bit.
- Methods with ``normalize=True`` (deep networks) scale each window by its own range, and a
  network's receptive field is larger than any practical margin, so their results are close to,
  not equal to, the in-memory ones.

The hole map and the value range are computed when :func:`inpaint_dask` is called: one pass
over the chunks (with whichever dask scheduler is active, e.g. a ``dask.distributed`` client)
that reads the mask and the image chunk by chunk, never the whole array at once (an integer image
with a mask, no ``nodata`` and ``clip=False`` needs only the mask to be read). That pass also
applies the in-memory checks (a mask covering everything, NaN/inf outside the mask, float masks
that are not 0/1), so errors are raised at call time, not when the result is computed. A
``progress`` callback hears about both: each chunk scanned during the call, then each chunk with
holes filled when the result is computed (one count over the call; see :func:`inpaint_dask`).

:func:`stream_inpaint` reads image and mask files lazily, fills them this way and streams the
result to a file (the command line's ``--chunks`` mode).

Methods are looked up by name inside each task: a method registered at run time with
:func:`inpaint_plugin.register` is only known to worker *processes* that registered it too
(threads and ``processes=False`` clusters share the registry).
"""
from __future__ import annotations

import numbers
import operator
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _rules
from ._registry import get_backend

__all__ = ["inpaint_dask", "inpaint_multiscale", "stream_inpaint"]


# --- per-block helpers (run inside dask tasks; module level so that they pickle) ------------------

def _channels_last(a: np.ndarray, ch: Optional[int]) -> np.ndarray:
    """A channels-last view ``(*spatial, C)`` of a block in the original axis order."""
    return a[..., np.newaxis] if ch is None else np.moveaxis(a, ch, -1)


def _bool_mask(m: np.ndarray) -> np.ndarray:
    """A fresh boolean copy of a mask block, with the same rules as the in-memory API."""
    m = np.asarray(m)
    kind = m.dtype.kind
    if kind == "b":
        return m.copy()
    if kind in "iu":
        return m != 0
    if np.isnan(m).any():
        raise ValueError("mask contains NaN; use a boolean mask (True = fill)")
    if not np.isin(np.unique(m), (0.0, 1.0)).all():
        raise ValueError("a float mask may only hold 0 and 1; use a boolean mask (True = fill)")
    return m != 0


def _hole_mask(img_cl: np.ndarray, m: Optional[np.ndarray], nodata, nan_fill: bool) -> np.ndarray:
    """Pixels to fill in a channels-last block: the mask, plus nodata / non-finite pixels."""
    hole = np.zeros(img_cl.shape[:-1], dtype=bool) if m is None else _bool_mask(m)
    if nan_fill:
        hole |= ~np.isfinite(img_cl).all(axis=-1)
    if nodata is not None:
        if np.isnan(nodata):
            hole |= np.isnan(img_cl).any(axis=-1)
        else:
            hole |= (img_cl == nodata).any(axis=-1)
    return hole


@dataclass(frozen=True)
class _BlockScan:
    """What the scan learns about one chunk (global coordinates)."""

    bbox: Optional[tuple]  # ((start, ...), (stop, ...)) of the holes over the spatial axes, or None
    n_known: int
    lo: np.ndarray  # per-channel min of the known pixels (+inf when none)
    hi: np.ndarray  # per-channel max of the known pixels (-inf when none)
    n_bad: int  # non-finite pixels outside the mask
    first_bad: Optional[tuple]


def _scan_block(block, mblock, offset, ch, nodata, nan_fill) -> _BlockScan:
    """Hole bounding box, known-value range and invalid pixels of one chunk.

    ``block`` is None when the image need not be read (integer image, explicit mask, no clip):
    then only the mask is scanned and the range is left empty.
    """
    if block is None:
        hole = _bool_mask(mblock)
    else:
        img = _channels_last(np.asarray(block), ch)
        hole = _hole_mask(img, mblock, nodata, nan_fill)
    nsp = hole.ndim
    bbox = None
    if hole.any():
        start, stop = [], []
        for axis in range(nsp):
            hit = np.flatnonzero(hole.any(axis=tuple(a for a in range(nsp) if a != axis)))
            start.append(offset[axis] + int(hit[0]))
            stop.append(offset[axis] + int(hit[-1]) + 1)
        bbox = (tuple(start), tuple(stop))
    known = ~hole
    if block is None:
        return _BlockScan(bbox, int(known.sum()), np.empty(0), np.empty(0), 0, None)
    n_bad, first_bad = 0, None
    if img.dtype.kind == "f":
        bad = known & ~np.isfinite(img).all(axis=-1)
        n_bad = int(bad.sum())
        if n_bad:
            first_bad = tuple(int(o + i) for o, i in zip(offset, np.argwhere(bad)[0]))
            known &= ~bad
    values = img[known]
    nchan = img.shape[-1]
    if values.shape[0]:
        lo, hi = values.min(axis=0).astype(np.float64), values.max(axis=0).astype(np.float64)
    else:
        lo, hi = np.full(nchan, np.inf), np.full(nchan, -np.inf)
    return _BlockScan(bbox, int(values.shape[0]), lo, hi, n_bad, first_bad)


@dataclass(frozen=True)
class _Window:
    """Static description of one fill task (opaque to dask's graph conversion)."""

    method: str
    params: dict
    ch: Optional[int]
    nodata: Any
    nan_fill: bool
    lo: Optional[np.ndarray]  # global clip range per channel, None when clip=False
    hi: Optional[np.ndarray]
    margin: int
    context: tuple  # per spatial axis: does the method see along it (margin applies)?
    start: tuple  # window start over the spatial axes (global)
    region: tuple  # slices of the holes' bounding box in the chunk (spatial axes)
    wregion: tuple  # the same pixels in the window (spatial axes)
    progress: Any = None  # a _Progress shared by the chunks of one call, or None
    chunk: tuple = ()  # block index of the chunk (counted once by progress)

    def describe(self, sub: tuple) -> str:
        """Global coordinates of the spatial slices ``sub`` of the window."""
        return "[" + ", ".join(f"{o + s.start}:{o + s.stop}" for o, s in zip(self.start, sub)) + "]"


class _Progress:
    """The ``progress(done, total)`` of one :func:`inpaint_dask` call: one unit per chunk scanned,
    then one per chunk with holes filled (the contract is in :func:`inpaint_dask`'s docstring).

    The callback is called under a lock, so the numbers it sees never go down even when several of
    dask's threads finish chunks at once; a chunk filled again (the result computed twice, napari
    recomputing a tile) calls it again without counting twice, so ``done <= total`` always holds.
    """

    def __init__(self, callback, n_chunks: int):
        import threading

        self.callback, self.n_chunks = callback, n_chunks
        self.total = 2 * n_chunks  # until the scan ends: the scan plus at most every chunk to fill
        self.done = 0
        self.filled: set = set()
        self.lock = threading.Lock()

    def scanned(self, n: int) -> None:
        """``n`` chunks of the scan are done (called in the thread that called :func:`inpaint_dask`)."""
        with self.lock:
            self.done = max(self.done, min(int(n), self.n_chunks))
            self.callback(self.done, self.total)

    def scan_done(self, n_fill: int) -> None:
        """The scan is over and ``n_fill`` chunks hold holes: ``total`` drops to its exact value."""
        with self.lock:
            self.done, self.total = self.n_chunks, self.n_chunks + n_fill
            self.callback(self.done, self.total)

    def step(self, chunk: tuple = ()) -> None:
        """The chunk with block index ``chunk`` was filled (called from dask's worker threads)."""
        with self.lock:
            if chunk not in self.filled:
                self.filled.add(chunk)
                self.done += 1
            self.callback(self.done, self.total)

    def __repr__(self) -> str:  # stable token for dask's graph names
        return "_Progress"

    def __reduce__(self):
        # dask.distributed pickles the graph even for workers in this process: a pickled _Progress is
        # a reference to the live one, found again in this process and None in any other (worker
        # processes cannot call the caller's callback; their chunks go unreported)
        _LIVE_PROGRESS[id(self)] = self
        return _live_progress, (os.getpid(), id(self))


_LIVE_PROGRESS: "weakref.WeakValueDictionary[int, _Progress]" = weakref.WeakValueDictionary()


def _live_progress(pid: int, ident: int) -> Optional[_Progress]:
    """The :class:`_Progress` a pickled graph refers to, when it lives in this process."""
    return _LIVE_PROGRESS.get(ident) if pid == os.getpid() else None


def _compute_reporting(tasks: list, report) -> tuple:
    """``dask.compute(*tasks)`` (in parallel, with the active scheduler), calling ``report(n)`` in
    the calling thread each time another of ``tasks`` has finished (``n`` = how many have).

    - dask's local schedulers (threads, the default; processes; sync): a
      :class:`dask.callbacks.Callback` whose ``posttask`` hook the scheduler runs in the thread that
      called ``compute`` as each result arrives (``get_async`` in ``dask/local.py``). The hook is
      global while the ``with`` block lasts, so it counts only the keys of ``tasks`` and only in
      this thread (other threads' computations, e.g. napari's tiles, go through it too). An
      exception raised by ``report`` leaves ``compute`` at once; the tasks already handed to the
      pool (at most one per worker) finish in the background, and nothing more is started.
    - a ``dask.distributed`` client: futures collected with ``distributed.as_completed``; an
      exception raised by ``report`` cancels the futures that are left.
    - any other scheduler: batches of about 1/16 of the tasks, reported after each batch.
    """
    import threading

    import dask
    from dask.base import get_scheduler

    scheduler = get_scheduler(collections=tasks)
    client = getattr(scheduler, "__self__", None)
    if client is not None and type(client).__module__.startswith("distributed"):
        from distributed import as_completed

        futures = client.compute(tasks)
        try:
            for n, _ in enumerate(as_completed(futures), 1):
                report(n)
            return tuple(client.gather(futures))
        except BaseException:
            client.cancel(futures)
            raise
    if getattr(scheduler, "__module__", None) in ("dask.threaded", "dask.local", "dask.multiprocessing"):
        from dask.callbacks import Callback

        keys = {t.key for t in tasks}
        seen: set = set()
        thread = threading.get_ident()

        def posttask(key, result, dsk, state, worker_id):
            if key in keys and key not in seen and threading.get_ident() == thread:
                seen.add(key)
                report(len(seen))

        with Callback(posttask=posttask):
            return dask.compute(*tasks)
    out: list = []
    step = max(1, -(-len(tasks) // 16))
    for start in range(0, len(tasks), step):
        out.extend(dask.compute(*tasks[start:start + step]))
        report(len(out))
    return tuple(out)


def _hole_groups(wmask: np.ndarray, w: _Window):
    """Group the holes of a window: holes closer than ``2 * margin`` (along the method's axes) share a group.

    Returns the label image and, per label, the slices of the group's holes grown by the margin:
    the smallest window that gives every hole of the group its context.
    """
    from scipy import ndimage

    size = tuple(2 * w.margin + 1 if c else 1 for c in w.context)
    grown = ndimage.maximum_filter(wmask.view(np.uint8), size=size, mode="constant", cval=0)
    structure = np.zeros((3,) * wmask.ndim, dtype=bool)
    structure[tuple(slice(None) if c else 1 for c in w.context)] = True
    labels, _ = ndimage.label(grown, structure=structure)
    return labels, ndimage.find_objects(labels)


def _fill_chunk(block, mblock, img_pieces, mask_pieces, w: _Window) -> np.ndarray:
    """Fill the masked pixels of one chunk from its window; everything else is copied unchanged.

    The window is split into groups of nearby holes (see :func:`_hole_groups`) and the in-memory
    :func:`inpaint_plugin.inpaint` runs once per group on the group's own, smaller window, so
    scattered dead pixels cost a few small windows instead of a whole chunk.
    """
    from ._engine import fill as inpaint

    window = np.block(img_pieces)
    wmask = _hole_mask(_channels_last(window, w.ch), None if mask_pieces is None else np.block(mask_pieces),
                       w.nodata, w.nan_fill)
    block = np.asarray(block)
    out = np.array(block, copy=True)
    hole = _hole_mask(_channels_last(block, w.ch), mblock, w.nodata, w.nan_fill)[w.region]
    coords = [c + r.start for c, r in zip(np.nonzero(hole), w.wregion)]  # the chunk's holes, in the window
    labels, groups = _hole_groups(wmask, w)
    hole_labels = labels[tuple(coords)]
    values = np.empty((hole_labels.size, _channels_last(window, w.ch).shape[-1]), dtype=block.dtype)
    for label in np.unique(hole_labels):
        sub = groups[label - 1]
        sub_mask = wmask[sub]
        if sub_mask.all():
            raise ValueError(f"the window {w.describe(sub)} (spatial axes) around a chunk's holes has no known "
                             "pixel: the hole is larger than the tiling window; use larger chunks or a larger margin=")
        sub_img = window[sub if w.ch is None else sub[:w.ch] + (slice(None),) + sub[w.ch:]]
        try:
            filled = inpaint(sub_img, sub_mask, w.method, channel_axis=w.ch, clip=False, **w.params)
        except ValueError as exc:
            raise ValueError(f"inpainting the window {w.describe(sub)} (spatial axes) of the image failed: "
                             f"{exc}") from exc
        pick = hole_labels == label
        values[pick] = _channels_last(filled, w.ch)[tuple(c[pick] - s.start for c, s in zip(coords, sub))]
    if w.lo is not None:
        values = np.clip(values, w.lo, w.hi).astype(out.dtype)
    _channels_last(out, w.ch)[w.region][hole] = values
    if w.progress is not None:
        w.progress.step(w.chunk)
    return out


# --- graph construction --------------------------------------------------------------------------

def _overlapping_blocks(chunks: Sequence[int], start: int, stop: int) -> list:
    """``[(block index, local slice)]`` of the blocks of one axis that overlap ``[start, stop)``."""
    out, pos = [], 0
    for b, size in enumerate(chunks):
        lo, hi = max(start, pos), min(stop, pos + size)
        if lo < hi:
            out.append((b, slice(lo - pos, hi - pos)))
        pos += size
        if pos >= stop:
            break
    return out


def _pieces(dsk: dict, src_name: str, key_prefix: tuple, ranges: list, prefix=(), slices=()):
    """Add getitem tasks for the parts of ``src``'s blocks inside a window; return them nested for np.block."""
    axis = len(prefix)
    if axis == len(ranges):
        key = key_prefix + prefix
        dsk[key] = (operator.getitem, (src_name,) + prefix, slices)
        return key
    return [_pieces(dsk, src_name, key_prefix, ranges, prefix + (b,), slices + (s,)) for b, s in ranges[axis]]


def _backend(method):
    """The registered backend for ``method`` (``"auto"`` needs the whole image: not available here)."""
    if method == "auto":
        raise ValueError("method='auto' is not available for dask arrays (it needs the whole image); "
                         "choose a method, e.g. method='biharmonic'")
    return get_backend(method)


def _check_margin(margin, default: int) -> int:
    if margin is None:
        return int(default)
    if isinstance(margin, bool) or not isinstance(margin, numbers.Integral):
        raise TypeError(f"margin must be a non-negative int (pixels), got {margin!r}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0 (pixels), got {margin}")
    return int(margin)


def _prepare_mask(mask, spatial_shape, spatial_chunks):
    """The mask as a dask array chunked like the image's spatial axes (None stays None)."""
    import dask.array as da

    _is_dask = _rules.is_dask
    if mask is None:
        return None
    if not (_is_dask(mask) or isinstance(mask, np.ndarray)) and all(hasattr(mask, a) for a in
                                                                    ("shape", "dtype", "__getitem__")):
        mask = da.from_array(mask, chunks=spatial_chunks)  # zarr / h5py arrays: read lazily, chunk by chunk
    if _is_dask(mask):
        mask = _rules.mask_values(mask)
        if _rules.broadcast_mask(mask.shape, spatial_shape):
            mask = da.broadcast_to(mask, tuple(spatial_shape))
        return mask.rechunk(spatial_chunks)
    return da.from_array(_rules.check_mask(mask, spatial_shape), chunks=spatial_chunks)


def inpaint_dask(image, mask=None, method: str = "biharmonic", *, channel_axis: Optional[int] = None,
                 nodata: Optional[float] = None, clip: bool = True, margin: Optional[int] = None, progress=None,
                 **params):
    """Fill the masked pixels of a dask array, chunk by chunk; returns a lazy dask array.

    Same arguments and guarantees as :func:`inpaint_plugin.inpaint` (known pixels bit-exact,
    dtype and shape preserved, input never modified), for images that do not fit in memory:
    only chunks that hold masked pixels are computed, each from a window of the image around its
    holes (see the module documentation for when the result equals the in-memory one).

    Parameters
    ----------
    image : dask.array.Array
        Integer or float image (e.g. ``dask.array.from_zarr``). Chunks along ``channel_axis``
        are merged (channels are never split); other axes may be chunked freely.
    mask : dask array, array_like or None
        True where pixels must be filled; the image shape without the channel axis (zarr and
        other lazy arrays are read chunk by chunk). ``None`` fills the NaNs of a float image.
    method : str
        A registered method (``"auto"`` is not available for dask arrays).
    channel_axis, nodata, clip
        As in :func:`inpaint_plugin.inpaint`. ``clip`` uses the range of the whole image.
    margin : int, optional
        Context in pixels around each chunk's holes, along the axes the method works on (the
        last two spatial axes for 2-D methods, all spatial axes for nD methods). Default: the
        method's ``Backend.margin``. This name is reserved for tiling: a method parameter called
        ``margin`` cannot be set through this function.
    progress : callable, optional
        ``progress(done, total)``, counting one unit per chunk over the whole life of the call: first
        each chunk of the scan, during this call (in the calling thread, as chunks finish; the scan
        stays parallel), then each chunk that holds holes, as it is filled when the result is
        computed (from dask's worker threads). So ``total`` = chunks + chunks with holes; until the
        scan ends that second number is unknown and ``total`` is its upper bound, 2 x chunks. The
        call that ends the scan reports ``(chunks, chunks + chunks with holes)``, the exact total,
        which never changes after. ``done`` never decreases, ``done <= total`` always, and
        ``done == total`` only in the last call: the one that ends the scan when there is nothing
        to fill, else the one for the last chunk with holes filled (a chunk computed again calls
        ``progress`` again without counting twice). A callback that raises during the scan
        cancels the call: the exception propagates and no result is built (the input is never
        modified); one that raises while the result is computed makes that computation fail.
        With a ``dask.distributed`` client the scan is reported as its futures complete; the
        fill is reported only by workers that share this process (threads, ``processes=False``).
    **params
        Parameters of the method, as in :func:`inpaint_plugin.inpaint`.

    Returns
    -------
    dask.array.Array
        The filled image, same shape, dtype and chunks (one merged chunk along the channel
        axis). When there is nothing to fill, ``image`` itself is returned.

    Raises
    ------
    ValueError, TypeError
        For invalid arguments, as :func:`inpaint_plugin.inpaint` does, at call time.
    """
    import dask
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    backend = _backend(method)
    params = backend.check_params(params)
    margin = _check_margin(margin, backend.margin)
    _rules.check_progress(progress)
    image = _rules.check_image(image)
    kind = image.dtype.kind
    if any(np.isnan(c) for cs in image.chunks for c in cs):
        raise ValueError("image has unknown chunk sizes; call image.compute_chunk_sizes() first")
    ch = _rules.check_channel_axis(channel_axis, image.ndim)
    spatial_axes = [a for a in range(image.ndim) if a != ch]
    nsp = len(spatial_axes)
    _rules.check_spatial_dims(nsp)
    need = backend.spatial_ndim
    _rules.check_method_dims(backend.name, need, nsp, image.shape, channel_axis)
    clip = _rules.check_bool(clip, "clip")
    is_float = kind == "f"
    nodata = _rules.check_nodata(nodata, image.dtype)
    _rules.check_mask_source(mask, nodata, image.dtype)
    nan_fill = mask is None and nodata is None

    original = image
    if ch is not None and len(image.chunks[ch]) > 1:
        image = image.rechunk({ch: -1})
    spatial_shape = tuple(image.shape[a] for a in spatial_axes)
    spatial_chunks = tuple(image.chunks[a] for a in spatial_axes)
    maskarr = _prepare_mask(mask, spatial_shape, spatial_chunks)

    # 1. the scan: one small result per chunk
    offsets = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in spatial_chunks]
    mask_blocks = None if maskarr is None else maskarr.to_delayed()
    indices = list(np.ndindex(*image.numblocks))

    def spatial_index(idx):
        return tuple(idx[a] for a in spatial_axes)

    # the image is read unless nothing needs it: clip range, NaN checks and nodata need it
    read_image = clip or is_float or nodata is not None or maskarr is None
    img_blocks = image.to_delayed() if read_image else None
    scan = dask.delayed(_scan_block, pure=True)
    tasks = []
    for idx in indices:
        sidx = spatial_index(idx)
        off = tuple(int(offsets[k][sidx[k]]) for k in range(nsp))
        mb = None if mask_blocks is None else mask_blocks[sidx]
        tasks.append(scan(img_blocks[idx] if img_blocks is not None else None, mb, off, ch, nodata, nan_fill))
    counter = None if progress is None else _Progress(progress, len(tasks))
    if counter is None:
        infos = dask.compute(*tasks)
    else:
        infos = _compute_reporting(tasks, counter.scanned)

    n_known = sum(i.n_known for i in infos)
    n_bad = sum(i.n_bad for i in infos)
    if n_bad:
        first = min(i.first_bad for i in infos if i.first_bad is not None)
        raise ValueError(f"image has NaN or inf at {n_bad} pixel(s) outside the mask (first at {first}, spatial "
                         "axes); add them to the mask, or pass mask=None to fill the NaNs")
    n_fill = sum(i.bbox is not None for i in infos)
    if n_fill:
        _rules.check_known_pixels(n_known)
    if counter is not None:
        counter.scan_done(n_fill)  # the last call when there is nothing to fill
    if not n_fill:
        return original
    lo = hi = None
    if clip:
        lo = np.min([i.lo for i in infos], axis=0)
        hi = np.max([i.hi for i in infos], axis=0)

    # 2. the output graph: aliases for clean chunks, a window fill for the others
    context = set(range(nsp)) if need is None else set(range(nsp - need, nsp))
    out_name = "inpaint-" + tokenize(image.name, None if maskarr is None else maskarr.name, method, params, ch,
                                     nodata, clip, margin)
    img_piece, mask_piece = out_name + "-window", out_name + "-window-mask"
    dsk = {}
    for idx, info in zip(indices, infos):
        out_key = (out_name,) + idx
        if info.bbox is None:
            dsk[out_key] = (image.name,) + idx
            continue
        sidx = spatial_index(idx)
        b0, b1 = info.bbox
        start = tuple(max(b0[k] - margin, 0) if k in context else b0[k] for k in range(nsp))
        stop = tuple(min(b1[k] + margin, spatial_shape[k]) if k in context else b1[k] for k in range(nsp))
        sranges = [_overlapping_blocks(spatial_chunks[k], start[k], stop[k]) for k in range(nsp)]
        ranges = list(sranges)
        if ch is not None:
            ranges.insert(ch, [(0, slice(None))])
        pieces = _pieces(dsk, image.name, (img_piece,) + idx, ranges)
        mpieces = None
        if maskarr is not None:
            mpieces = _pieces(dsk, maskarr.name, (mask_piece,) + idx, sranges)
        block_start = tuple(int(offsets[k][sidx[k]]) for k in range(nsp))
        window = _Window(
            method=backend.name, params=params, ch=ch, nodata=nodata, nan_fill=nan_fill, lo=lo, hi=hi,
            margin=margin, context=tuple(k in context for k in range(nsp)), start=start,
            region=tuple(slice(b0[k] - block_start[k], b1[k] - block_start[k]) for k in range(nsp)),
            wregion=tuple(slice(b0[k] - start[k], b1[k] - start[k]) for k in range(nsp)),
            progress=counter, chunk=idx,
        )
        mkey = None if maskarr is None else (maskarr.name,) + sidx
        dsk[out_key] = (_fill_chunk, (image.name,) + idx, mkey, pieces, mpieces, window)
    deps = [image] if maskarr is None else [image, maskarr]
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=deps)
    return da.Array(graph, out_name, image.chunks, meta=image._meta)


# --- multiscale (napari pyramids) ----------------------------------------------------------------

def _downsample_mask(mask, shape):
    """A mask for a coarser pyramid level: a pixel is a hole when any pixel it covers is one."""
    import dask.array as da

    if tuple(mask.shape) == tuple(shape):
        return mask
    factors = [max(1, int(round(s / t))) for s, t in zip(mask.shape, shape)]
    pad = [(0, (-s) % f) for s, f in zip(mask.shape, factors)]
    padded = da.pad(mask != 0, pad, mode="constant", constant_values=False)
    coarse = da.coarsen(np.any, padded, dict(enumerate(factors)), trim_excess=False)
    grow = [(0, max(0, t - c)) for t, c in zip(shape, coarse.shape)]
    if any(g[1] for g in grow):
        coarse = da.pad(coarse, grow, mode="edge")
    return coarse[tuple(slice(0, t) for t in shape)]


def inpaint_multiscale(levels, mask=None, method: str = "biharmonic", *, channel_axis: Optional[int] = None,
                       nodata: Optional[float] = None, clip: bool = True, margin: Optional[int] = None,
                       progress=None, **params) -> list:
    """Fill every level of an image pyramid (e.g. a napari multiscale layer) lazily.

    Each level is filled independently by :func:`inpaint_dask` (so zooming out never computes
    the full-resolution fill); the mask of a coarser level marks a pixel as a hole when any
    full-resolution pixel it covers is a hole.

    Parameters
    ----------
    levels : sequence of arrays
        The pyramid, full resolution first (numpy, zarr or dask arrays; same channel axis).
        Arrays that are not dask arrays are wrapped in chunks of 1024 pixels.
    mask : array_like, optional
        Mask of the full-resolution level (numpy or dask; for a multiscale Labels layer, its
        list of levels, of which the first is used); ``None`` fills NaN / ``nodata``.
    method, channel_axis, nodata, clip, margin
        As in :func:`inpaint_dask`.
    progress : callable or sequence of callables, optional
        The ``progress`` of :func:`inpaint_dask` for the levels: one callable per level, in the order
        of ``levels``, or one callable for all (it then hears each level's own count in turn).
    **params
        Parameters of the method, as in :func:`inpaint_dask`.

    Returns
    -------
    list of dask.array.Array
        The filled levels, in the order given.
    """
    import dask.array as da

    _is_dask = _rules.is_dask

    if len(levels) == 0:
        raise ValueError("levels must hold at least one array (full resolution first)")
    ch = _rules.check_channel_axis(channel_axis, levels[0].ndim)
    spatial_ndim = _backend(method).spatial_ndim
    arrays = [lvl if _is_dask(lvl) else
              da.from_array(lvl, chunks=_inpaint_chunks(lvl.shape, ch, spatial_ndim, 1024)) for lvl in levels]
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    if mask is not None and not _is_dask(mask):
        mask = da.from_array(np.asarray(mask), chunks=1024)
    if progress is None or callable(progress):
        per_level = [progress] * len(arrays)
    else:
        per_level = list(progress)
        if len(per_level) != len(arrays):
            raise ValueError(f"progress must be a callable or one callable per level ({len(arrays)}), "
                             f"got {len(per_level)}")
    out = []
    for arr, level_progress in zip(arrays, per_level):
        lmask = None
        if mask is not None:
            shape = tuple(s for a, s in enumerate(arr.shape) if a != ch)
            lmask = _downsample_mask(mask, shape)
        out.append(inpaint_dask(arr, lmask, method, channel_axis=ch, nodata=nodata, clip=clip, margin=margin,
                                progress=level_progress, **params))
    return out


# --- streaming files (command line) --------------------------------------------------------------

def _inpaint_chunks(shape, ch: Optional[int], spatial_ndim: Optional[int], edge: int) -> tuple:
    """Chunks for tiled inpainting: ``edge`` pixels along the axes the method sees, 1 along stacked
    axes, whole channels; nD methods on volumes get cubes of ``edge // 8`` (at least 64)."""
    spatial = [a for a in range(len(shape)) if a != ch]
    out = [1] * len(shape)
    if ch is not None:
        out[ch] = shape[ch]
    if spatial_ndim is None and len(spatial) > 2:
        edge, context = max(64, edge // 8), spatial
    else:
        context = spatial[-(spatial_ndim or 2):]
    for a in context:
        out[a] = min(shape[a], edge)
    return tuple(out)


class _ScanBar:
    """A tqdm bar over the chunks of :func:`inpaint_dask`'s scan, as a ``progress(done, total)``
    callback: it shows the first ``n_chunks`` units (the scan) and ignores the fill's units, which
    the writing bar of :func:`inpaint_plugin._io.write_image` shows as chunks are computed."""

    def __init__(self, desc: str, n_chunks: int):
        from tqdm.auto import tqdm

        self.n_chunks = n_chunks
        self.bar = tqdm(total=n_chunks, desc=desc, unit="chunk")
        self.closed = False

    def __call__(self, done: int, total: int) -> None:
        if self.closed:
            return
        self.bar.update(min(done, self.n_chunks) - self.bar.n)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bar.close()


def stream_inpaint(image_path: Union[str, os.PathLike], mask_path: Optional[Union[str, os.PathLike]],
                   out_path: Union[str, os.PathLike], method: str = "biharmonic", params: Optional[dict] = None, *,
                   chunks: int = 1024, channel_axis: Optional[int] = None, nodata: Optional[float] = None,
                   clip: bool = True, margin: Optional[int] = None, progress: bool = True,
                   overwrite: bool = True, allow_lossy: bool = False, keep_metadata: bool = True,
                   processing: Optional[str] = None, series: Optional[int] = None,
                   mask_series: Optional[int] = None) -> Path:
    """Inpaint an image file into another, chunk by chunk, without loading either into memory.

    Parameters
    ----------
    image_path : path
        Input image (TIFF, zarr / OME-Zarr, ``.npy``, or a picture format), read lazily.
    mask_path : path or None
        Mask of the image's shape without the channel axis, non-zero = fill (an RGB(A) mask
        counts any non-zero colour); ``None`` fills the NaNs (or ``nodata`` values) of the image.
    out_path : path
        Output (``.zarr``, ``.tif``, ``.npy``, ...), written atomically (see
        :func:`inpaint_plugin._io.write_image`).
    method : str
        A registered method.
    params : dict, optional
        Method parameters, e.g. ``{"seed": 0}``.
    chunks : int
        Chunk edge in pixels along the axes the method works on (stacked axes: 1; nD methods
        on volumes use cubes of ``chunks // 8``, at least 64).
    channel_axis : int, optional
        As in :func:`inpaint_plugin.inpaint`; default: where the file says the channels are (TIFF /
        OME axes ``C`` or ``S``, OME-Zarr channel axis), else the last axis of an RGB(A) picture.
    nodata, clip, margin
        As in :func:`inpaint_dask`.
    progress : bool
        Show progress bars: one over the chunks scanned for holes (the scan of
        :func:`inpaint_dask`), then one over the chunks computed and written.
    overwrite : bool
        Replace an existing output (never a folder that is not a zarr store).
    allow_lossy : bool
        Accept a lossy output format (JPEG); refused by default, before any work.
    keep_metadata : bool
        Write the input's metadata (axes, calibration, ImageJ metadata, OME-XML, OME-Zarr pyramid)
        to the output, with a line describing the processing.
    processing : str, optional
        That line (default: the method and its parameters).
    series : int, optional
        Which image series of a TIFF ``image_path`` to read (see :func:`inpaint_plugin._io.read_image`).
    mask_series : int, optional
        The same for the mask.

    Returns
    -------
    Path
        The written ``out_path``.
    """
    from ._formats import check_writable, default_channel_axis, format_for
    from ._io import read_image, write_image
    from ._metadata import processing_note

    if isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral) or chunks < 1:
        raise ValueError(f"chunks must be a positive int (pixels), got {chunks!r}")
    format_for(out_path, argument="out_path")  # an unknown output format is refused before reading
    backend = _backend(method)
    image, meta = read_image(image_path, lazy=True, with_metadata=True, series=series)
    if channel_axis is None:
        channel_axis = default_channel_axis(image_path, image.shape, meta.axes)
    ch = _rules.check_channel_axis(channel_axis, image.ndim)
    check_writable(out_path, image.dtype, image.shape, channel_axis=ch, allow_lossy=allow_lossy,
                   argument="out_path")
    image = image.rechunk(_inpaint_chunks(image.shape, ch, backend.spatial_ndim, int(chunks)))
    mask = None
    if mask_path is not None:
        mask = read_image(mask_path, lazy=True, series=mask_series)
        spatial = tuple(s for a, s in enumerate(image.shape) if a != ch)
        if mask.ndim == len(spatial) + 1 and mask.shape[-1] in (3, 4) and tuple(mask.shape[:-1]) == spatial:
            mask = (mask[..., :3] != 0).any(axis=-1)
    scan_bar = _ScanBar(f"scanning {Path(image_path).name}", int(np.prod(image.numblocks))) if progress else None
    try:
        result = inpaint_dask(image, mask, method, channel_axis=ch, nodata=nodata, clip=clip, margin=margin,
                              progress=scan_bar, **(params or {}))
    finally:
        if scan_bar is not None:
            scan_bar.close()
    if processing is None:
        processing = processing_note(backend.name, params)
    return write_image(out_path, result, progress=progress, overwrite=overwrite, allow_lossy=allow_lossy,
                       metadata=meta if keep_metadata else None, processing=processing if keep_metadata else None)
