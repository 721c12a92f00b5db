"""Reading and writing images of any size: TIFF, zarr / OME-Zarr, PNG / JPEG, ``.npy``.

- :func:`read_image` returns a numpy array, or with ``lazy=True`` a dask array whose chunks are
  read from disk only when computed (TIFF tiles or strips, zarr chunks, ``.npy`` memory maps);
  a multiscale OME-Zarr group gives its full-resolution level.
- :func:`write_image` streams a dask array to zarr, TIFF or ``.npy`` chunk by chunk (memory
  bounded by a few chunks), optionally with a progress bar. It writes to a hidden temporary name
  beside the target and renames it at the end, so a failure never leaves a half-written output.

:func:`inpaint_plugin._dask.stream_inpaint` chains both with tiled inpainting: the command-line
path for images larger than memory.

Lazy reads open the file inside each task, so the dask graphs also run on ``dask.distributed``
worker processes (which must see the same file system).
"""
from __future__ import annotations

import os
import shutil
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

__all__ = ["read_image", "write_image"]

PathLike = Union[str, os.PathLike]

_TIFF = (".tif", ".tiff")
_PICTURE = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_CHUNK = 1024  # default chunk edge (pixels) along the two image axes
_FORMATS = "TIFF (.tif, .tiff), zarr / OME-Zarr (.zarr), NumPy (.npy), PNG/JPEG/BMP/GIF/WebP"


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_TIFF):
        return "tiff"
    if name.endswith(".zarr") or (path.is_dir() and any((path / f).exists() for f in
                                                        ("zarr.json", ".zarray", ".zgroup"))):
        return "zarr"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(_PICTURE):
        return "picture"
    raise ValueError(f"{path}: unsupported image format {path.suffix!r}; supported: {_FORMATS}")


def _is_dask(x) -> bool:
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks")


# --- lazy sources --------------------------------------------------------------------------------

class _FileArray:
    """A picklable array-like over a file for ``dask.array.from_array``; the file opens on first read.

    Each process (a dask worker, after unpickling) opens its own handle; read errors name the file.
    """

    def __init__(self, path: Path, shape: tuple, dtype: np.dtype):
        self.path = Path(path)
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        stat = self.path.stat()
        self._stamp = (stat.st_size, stat.st_mtime_ns)
        self._handle = None
        self._lock = threading.Lock()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handle"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __dask_tokenize__(self):
        return (type(self).__name__, str(self.path), self._stamp)

    def _open(self):
        raise NotImplementedError

    def __getitem__(self, key):
        try:
            with self._lock:
                if self._handle is None:
                    self._handle = self._open()
            return np.array(self._handle[key])
        except Exception as exc:
            raise ValueError(f"cannot read {self.path}: {exc}") from exc


class _TiffArray(_FileArray):
    """The first series (full resolution) of a TIFF file, read tile by tile or through a memory map."""

    def __init__(self, path: Path, shape, dtype, memmappable: bool):
        super().__init__(path, shape, dtype)
        self.memmappable = memmappable
        self._store = None

    def __getstate__(self):
        state = super().__getstate__()
        state["_store"] = None
        return state

    def _open(self):
        import tifffile

        if self.memmappable:
            return tifffile.memmap(self.path, series=0, level=0, mode="r")
        import zarr

        self._store = tifffile.imread(self.path, aszarr=True, series=0, level=0)
        return zarr.open(self._store, mode="r")

    def __del__(self):
        store = getattr(self, "_store", None)
        if store is not None:
            store.close()


class _NpyArray(_FileArray):
    """A ``.npy`` file read through a memory map (no pickled objects)."""

    def _open(self):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)


def _check_tiff_complete(path: Path, tif) -> None:
    """Raise when the image data of the first and last page of series 0 run past the end of file."""
    size = path.stat().st_size
    pages = tif.series[0].levels[0].pages
    for page in (pages[0], pages[-1]):
        if page is None:
            continue
        ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if n]
        if ends and max(ends) > size:
            raise ValueError(f"cannot read {path}: the file is truncated (image data ends at byte {max(ends)}, "
                             f"the file has {size} bytes)")


def _default_chunks(native: Sequence[int], shape: Sequence[int]) -> tuple:
    """Native chunks grown to about ``_CHUNK`` pixels along the two image axes (multiples of native).

    A trailing axis of at most 4 (RGB(A) samples) is kept whole; leading axes keep their chunks.
    """
    out = [min(int(c), int(s)) for c, s in zip(native, shape)]
    ndim = len(shape)
    image_axes = list(range(max(0, ndim - 2), ndim))
    if ndim >= 3 and shape[-1] <= 4:
        out[-1] = int(shape[-1])
        image_axes = list(range(max(0, ndim - 3), ndim - 1))
    for a in image_axes:
        c = max(1, out[a])
        out[a] = min(int(shape[a]), c * max(1, _CHUNK // c))
    return tuple(out)


def _plane_chunks(shape: Sequence[int]) -> tuple:
    """Chunks of one plane (at most ``_CHUNK`` pixels a side) for data without chunks of its own."""
    native = [1] * len(shape)
    axes = list(range(max(0, len(shape) - 2), len(shape)))
    if len(shape) >= 3 and shape[-1] <= 4:
        native[-1] = shape[-1]
        axes = list(range(max(0, len(shape) - 3), len(shape) - 1))
    for a in axes:
        native[a] = min(int(shape[a]), _CHUNK)
    return tuple(native)


def _open_zarr_array(path: Path):
    """The zarr array at ``path``; for a group, the full-resolution level of its OME-Zarr multiscales."""
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return node
    attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales:
        levels = [node[d["path"]] for d in multiscales[0]["datasets"]]
        return max(levels, key=lambda a: int(np.prod(a.shape)))  # the spec lists full resolution first
    arrays = sorted(node.array_keys())
    if len(arrays) == 1:
        return node[arrays[0]]
    listing = ", ".join(arrays) or "none"
    raise ValueError(f"{path} is a zarr group without OME-Zarr multiscales metadata and holds arrays: {listing}; "
                     "pass the path of one array inside it")


def read_image(path: PathLike, *, lazy: bool = False, chunks=None):
    """Read an image file.

    Parameters
    ----------
    path : str or path-like
        A ``.tif``/``.tiff`` (first series, full resolution), a ``.zarr`` array or OME-Zarr group
        (full-resolution level), a ``.npy`` file (never unpickled) or a PNG/JPEG/BMP/GIF/WebP.
    lazy : bool
        Return a dask array that reads chunks on demand (TIFF, zarr, ``.npy``; small picture
        formats are read and wrapped).
    chunks : optional
        Chunks of the lazy array (dask syntax). Default: the file's own chunks (TIFF tiles,
        zarr chunks), grown to about 1024 pixels along the two image axes.

    Returns
    -------
    numpy.ndarray or dask.array.Array

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        Unsupported format, or the file is unreadable or truncated (the message names the path).
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    fmt = _format(path)
    try:
        if fmt == "tiff":
            return _read_tiff(path, lazy, chunks)
        if fmt == "zarr":
            arr = _open_zarr_array(path)
            if not lazy:
                return np.asarray(arr[...])
            import dask.array as da

            return da.from_zarr(arr, chunks=chunks or _default_chunks(arr.chunks, arr.shape))
        if fmt == "npy":
            return _read_npy(path, lazy, chunks)
        import imageio.v3 as iio

        data = np.asarray(iio.imread(path))
    except Exception as exc:
        if isinstance(exc, (FileNotFoundError, ValueError)) and str(path) in str(exc):
            raise  # already names the file
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if lazy:
        import dask.array as da

        return da.from_array(data, chunks=chunks or _plane_chunks(data.shape))
    return data


@contextmanager
def _tifffile_errors(path: Path):
    """Turn the errors tifffile only logs (damaged tags, a page chain cut short) into a ValueError.

    tifffile reads what it can of a damaged file and logs the rest; a truncated stack would
    otherwise come back as its first pages, or a cut header as a blank image of the wrong type.
    """
    import logging

    found = []

    class _Collect(logging.Handler):
        def emit(self, record):
            found.append(record.getMessage())

    logger = logging.getLogger("tifffile")
    handler = _Collect(level=logging.ERROR)
    # The records must reach our handler even where the application silenced tifffile's logger;
    # they are turned into the ValueError below, so they need not reach the user's handlers too.
    saved = logger.level, logger.propagate
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    except Exception as exc:
        if found:
            raise ValueError(f"cannot read {path}: the file is damaged or truncated ({found[0]})") from exc
        raise
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    if found:
        raise ValueError(f"cannot read {path}: the file is damaged or truncated ({found[0]})")


def _read_tiff(path: Path, lazy: bool, chunks):
    import tifffile

    with _tifffile_errors(path), tifffile.TiffFile(path) as tif:
        len(tif.pages)  # walks the whole page chain: a cut chain is reported
        _check_tiff_complete(path, tif)
        level = tif.series[0].levels[0]
        if not lazy:
            return level.asarray()
        shape, dtype = tuple(level.shape), level.dtype
        memmappable = level.dataoffset is not None
        native = None
        if not memmappable:
            import zarr

            store = tif.series[0].aszarr(level=0)
            try:
                native = zarr.open(store, mode="r").chunks
            finally:
                store.close()
    import dask.array as da

    src = _TiffArray(path, shape, dtype, memmappable)
    if native is None:
        native = _plane_chunks(shape)
    return da.from_array(src, chunks=chunks or _default_chunks(native, shape), lock=False,
                         meta=np.empty((0,) * len(shape), dtype))


def _read_npy(path: Path, lazy: bool, chunks):
    if not lazy:
        return np.load(path, allow_pickle=False)
    import dask.array as da

    mm = np.load(path, mmap_mode="r", allow_pickle=False)
    shape, dtype = mm.shape, mm.dtype
    del mm
    return da.from_array(_NpyArray(path, shape, dtype), chunks=chunks or _plane_chunks(shape),
                         lock=False, meta=np.empty((0,) * len(shape), dtype))


# --- writing -------------------------------------------------------------------------------------

def _temp_name(path: Path) -> Path:
    """A hidden sibling of ``path`` that keeps its extension (some writers choose the format by it)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _replace(tmp: Path, path: Path) -> None:
    """Move the finished ``tmp`` to ``path``, replacing what was there."""
    if path.is_dir() and not path.is_symlink():  # a directory cannot be replaced in one rename
        old = _temp_name(path)
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _regular(x):
    """``x`` rechunked so that all chunks but the last along each axis have the same size."""
    shape = tuple(max(c) for c in x.chunks)
    if all(all(s == cs[0] for s in cs[:-1]) and cs[-1] <= cs[0] for cs in x.chunks):
        return x, shape
    return x.rechunk(shape), shape


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _parallelism() -> int:
    """Tasks that can run at once with the active dask scheduler (a distributed client's threads)."""
    try:
        from distributed import get_client

        return max(1, sum(get_client().nthreads().values()))
    except (ImportError, ValueError):
        return max(1, os.cpu_count() or 1)


def _block_regions(x) -> list:
    """``(block index, region slices)`` of every block of a dask array, in C order."""
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in x.chunks]
    return [(idx, tuple(slice(int(starts[a][i]), int(starts[a][i + 1])) for a, i in enumerate(idx)))
            for idx in np.ndindex(*x.numblocks)]


def _stream_blocks(x, write, pbar) -> None:
    """Compute the blocks of ``x`` a batch at a time and hand each to ``write(region, block)``.

    The blocks of a batch are computed in parallel by the active dask scheduler; one writer
    thread writes the previous batch meanwhile (so at most two batches are in memory). Writes
    happen only in that thread, so nothing is written after this function returns or raises.
    """
    from concurrent.futures import ThreadPoolExecutor

    import dask

    blocks = x.to_delayed()
    regions = _block_regions(x)

    def write_batch(batch, values):
        for (_, region), value in zip(batch, values):
            write(region, value)
        pbar.update(len(batch))

    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for batch in _batches(regions, max(8, 4 * _parallelism())):
            values = dask.compute(*[blocks[idx] for idx, _ in batch])
            if pending is not None:
                pending.result()
            pending = writer.submit(write_batch, batch, values)
        if pending is not None:
            pending.result()


def _write_zarr(tmp: Path, x, pbar) -> None:
    """Write ``x`` to a new zarr array whose chunks are the (regular) blocks of ``x``."""
    import zarr

    x, chunkshape = _regular(x)
    target = zarr.create_array(str(tmp), shape=x.shape, dtype=x.dtype, chunks=chunkshape)
    _stream_blocks(x, target.__setitem__, pbar)


def _write_npy(tmp: Path, x, pbar) -> None:
    """Write ``x`` to a ``.npy`` file through a memory map."""
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=x.dtype, shape=x.shape)
    _stream_blocks(x, out.__setitem__, pbar)
    out.flush()
    del out


def _tiff_layout(x):
    """(photometric, number of leading page axes) for a TIFF: (Y, X, 3|4) uint8/16 is RGB(A)."""
    rgb = x.ndim == 3 and x.shape[-1] in (3, 4) and x.dtype in (np.uint8, np.uint16)
    return ("rgb", 0) if rgb else ("minisblack", x.ndim - 2)


def _tiff_tiles(x, pages: int, tile: tuple, pbar):
    """Yield the TIFF tiles of ``x`` page by page, computing one row of dask blocks at a time.

    Rows left over below the last whole tile row of a block row wait for the next block row, so
    dask chunks need not be multiples of the tile height.
    """
    import dask

    ty, tx = tile
    ystarts = np.concatenate([[0], np.cumsum(x.chunks[pages])]).astype(int)
    for page in np.ndindex(*x.shape[:pages]):
        plane = x[page]
        pending = None
        for r in range(len(x.chunks[pages])):
            (strip,) = dask.compute(plane[ystarts[r]:ystarts[r + 1]])
            pbar.update(1)
            pending = strip if pending is None else np.concatenate([pending, strip])
            last = r == len(x.chunks[pages]) - 1
            while len(pending) >= ty or (last and len(pending)):
                for x0 in range(0, pending.shape[1], tx):
                    yield np.ascontiguousarray(pending[:ty, x0:x0 + tx])
                pending = pending[ty:]


def _write_tiff(tmp: Path, x, pbar, compression) -> None:
    """Write ``x`` as a tiled (Big)TIFF from a generator of tiles; leading axes become pages."""
    import tifffile

    photometric, pages = _tiff_layout(x)
    if x.ndim < 2:
        raise ValueError(f"a TIFF image needs at least 2 dimensions, got shape {x.shape}")
    tile = (256, 256)
    if any(max(c) > 1 for c in x.chunks[:pages]):
        # a chunk spanning several pages would be computed once per page: stage it in a zarr array
        # (computed once), then read that back a page at a time
        import dask.array as da

        staging = _temp_name(tmp.with_suffix(".zarr"))
        try:
            _write_zarr(staging, x, _NoBar())
            staged = da.from_zarr(str(staging), chunks=(1,) * pages + tuple(max(c) for c in x.chunks[pages:]))
            _write_tiff(tmp, staged, pbar, compression)
        finally:
            _remove(staging)
        return
    pbar.total = int(np.prod(x.shape[:pages], dtype=np.int64)) * len(x.chunks[pages])
    pbar.refresh()
    bigtiff = x.nbytes > 2**32 - 2**25
    tifffile.imwrite(tmp, data=_tiff_tiles(x, pages, tile, pbar), shape=x.shape, dtype=x.dtype, tile=tile,
                     photometric=photometric, bigtiff=bigtiff, compression=compression)


class _NoBar:
    """Stands in for a tqdm bar when a nested write needs no progress."""

    total = 0

    def update(self, n=1):
        pass

    def refresh(self):
        pass


def _write_eager(path: Path, data: np.ndarray, fmt: str, compression) -> Path:
    """:func:`write_image` for a numpy array without dask (same formats, layout and atomic rename;
    ``.zarr`` needs the dask extra)."""
    if data.dtype.kind not in "biuf":
        raise TypeError(f"array must hold numbers or booleans, got dtype {data.dtype}")
    if fmt == "zarr":
        raise ValueError(f"cannot write {path}: .zarr output needs the dask extra "
                         "(pip install 'inpaint-plugin[dask]'); write .tif or .npy instead")
    tmp = _temp_name(path)
    try:
        if fmt == "tiff":
            import tifffile

            if data.ndim < 2:
                raise ValueError(f"a TIFF image needs at least 2 dimensions, got shape {data.shape}")
            photometric, _ = _tiff_layout(data)
            tifffile.imwrite(tmp, data, tile=(256, 256), photometric=photometric,
                             bigtiff=data.nbytes > 2**32 - 2**25, compression=compression)
        elif fmt == "npy":
            with open(tmp, "wb") as fh:
                np.save(fh, data, allow_pickle=False)
        else:
            import imageio.v3 as iio

            iio.imwrite(tmp, data, extension=path.suffix.lower())
        _replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def write_image(path: PathLike, array, *, progress: bool = False, overwrite: bool = True, chunks=None,
                compression: Optional[str] = None) -> Path:
    """Write an image, streaming dask arrays chunk by chunk; atomic (temporary file, then rename).

    Parameters
    ----------
    path : str or path-like
        Output file; the format follows the extension: ``.zarr`` (a zarr array), ``.tif``/
        ``.tiff`` (tiled, BigTIFF when over 4 GB; leading axes are pages; ``(Y, X, 3|4)``
        uint8/uint16 is RGB), ``.npy``, or a picture format (computed in memory).
    array : numpy or dask array
    progress : bool
        Show a tqdm progress bar (chunks, or rows of chunks for TIFF).
    overwrite : bool
        Replace an existing output; otherwise raise ``FileExistsError``.
    chunks : optional
        Chunks used to stream a numpy array (dask syntax); dask arrays keep theirs (zarr
        output uses the largest chunk of each axis as its chunk shape).
    compression : str, optional
        TIFF compression (e.g. ``"zlib"``, ``"zstd"``); zarr uses its default compressor.

    Returns
    -------
    Path
        The written path.
    """
    from tqdm.auto import tqdm

    path = Path(os.fspath(path))
    fmt = _format(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    if fmt == "tiff" and compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be a string such as 'zlib', got {compression!r}")
    if _is_dask(array):
        x = array
    else:
        data = np.asarray(array)
        try:
            import dask.array as da
        except ImportError:  # the core install (no dask extra): an in-memory array is written in one go
            return _write_eager(path, data, fmt, compression)
        x = da.from_array(data, chunks=chunks or _plane_chunks(data.shape))
    if x.dtype.kind not in "biuf":
        raise TypeError(f"array must hold numbers or booleans, got dtype {x.dtype}")
    tmp = _temp_name(path)
    try:
        with tqdm(total=int(np.prod(x.numblocks)), desc=f"writing {path.name}", unit="chunk",
                  disable=not progress) as pbar:
            if fmt == "zarr":
                _write_zarr(tmp, x, pbar)
            elif fmt == "tiff":
                _write_tiff(tmp, x, pbar, compression)
            elif fmt == "npy":
                _write_npy(tmp, x, pbar)
            else:
                import imageio.v3 as iio

                iio.imwrite(tmp, np.asarray(x.compute()), extension=path.suffix.lower())
                pbar.update(pbar.total)
        _replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path
