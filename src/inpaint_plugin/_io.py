"""Reading and writing images of any size: TIFF, zarr / OME-Zarr, PNG / JPEG, ``.npy``.

- :func:`read_image` returns a numpy array, or with ``lazy=True`` a dask array whose chunks are
  read from disk only when computed (TIFF tiles or strips, zarr chunks, ``.npy`` memory maps);
  a multiscale OME-Zarr group gives its full-resolution level. A TIFF holding several image
  series (a multi-position OME-TIFF, images of different shapes) gives the series chosen with
  ``series=`` (default the first, with a warning that lists the others).
- :func:`write_image` streams a dask array to zarr, TIFF or ``.npy`` chunk by chunk (memory
  bounded by a few chunks), optionally with a progress bar. It writes to a hidden temporary name
  beside the target and renames it at the end, so a failure never leaves a half-written output;
  a symlink is written through (beside its target), a folder is never replaced unless it is a zarr
  store, and SIGTERM/SIGHUP/SIGINT during the write remove the temporary file first.
- ``read_image(..., with_metadata=True)`` also returns an :class:`ImageMetadata` (axes, channel
  axis, calibration, ImageJ metadata, OME-XML, OME-Zarr multiscales) that ``write_image(...,
  metadata=...)`` writes back (see :mod:`inpaint_plugin._metadata`).
- Which formats exist, what each can hold, and the refusal of outputs that cannot hold a result
  (before any work) live in one table: :mod:`inpaint_plugin._formats`.

:func:`inpaint_plugin._dask.stream_inpaint` chains both with tiled inpainting: the command-line
path for images larger than memory.

Lazy reads open the file inside each task, so the dask graphs also run on ``dask.distributed``
worker processes (which must see the same file system).
"""
from __future__ import annotations

import numbers
import os
import shutil
import signal
import threading
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

import numpy as np

from ._formats import FORMATS, check_writable, format_for, is_zarr_store
from ._metadata import ImageMetadata, processing_note

__all__ = ["ImageMetadata", "read_image", "read_metadata", "write_image"]

PathLike = Union[str, os.PathLike]

# kept for modules that still import them; the table in _formats is the one source
_TIFF = tuple(s for f in FORMATS if f.kind == "tiff" for s in f.suffixes)
_PICTURE = tuple(s for f in FORMATS if f.kind == "picture" for s in f.suffixes)
_CHUNK = 1024  # default chunk edge (pixels) along the two image axes


def _format(path: Path) -> str:
    """The reader/writer kind of ``path`` (``"tiff"``, ``"zarr"``, ``"npy"``, ``"picture"``), from the format table."""
    return format_for(path).kind


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
    """One series (full resolution) of a TIFF file, read tile by tile or through a memory map."""

    def __init__(self, path: Path, shape, dtype, memmappable: bool, series: int = 0):
        super().__init__(path, shape, dtype)
        self.memmappable = memmappable
        self.series = int(series)
        self._store = None

    def __dask_tokenize__(self):
        return (*super().__dask_tokenize__(), self.series)  # two series of one file are different arrays

    def __getstate__(self):
        state = super().__getstate__()
        state["_store"] = None
        return state

    def _open(self):
        import tifffile

        if self.memmappable:
            return tifffile.memmap(self.path, series=self.series, level=0, mode="r")
        import zarr

        self._store = tifffile.imread(self.path, aszarr=True, series=self.series, level=0)
        return zarr.open(self._store, mode="r")

    def __del__(self):
        store = getattr(self, "_store", None)
        if store is not None:
            store.close()


class _NpyArray(_FileArray):
    """A ``.npy`` file read through a memory map (no pickled objects)."""

    def _open(self):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)


def _check_tiff_complete(path: Path, tif, series: int = 0) -> None:
    """Raise when the image data of the first and last page of ``series`` run past the end of file."""
    size = path.stat().st_size
    pages = tif.series[series].levels[0].pages
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


def _open_zarr(path: Path):
    """``(node, array)``: the zarr node at ``path`` and its image array (an OME-Zarr group's full resolution)."""
    import zarr

    node: Any = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return node, node
    attrs: Dict[str, Any] = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales:
        levels = [node[d["path"]] for d in multiscales[0]["datasets"]]
        return node, max(levels, key=lambda a: int(np.prod(a.shape)))  # the spec lists full resolution first
    arrays = sorted(node.array_keys())
    if len(arrays) == 1:
        return node, node[arrays[0]]
    listing = ", ".join(arrays) or "none"
    raise ValueError(f"{path} is a zarr group without OME-Zarr multiscales metadata and holds arrays: {listing}; "
                     "pass the path of one array inside it")


def _open_zarr_array(path: Path):
    """The zarr array at ``path``; for a group, the full-resolution level of its OME-Zarr multiscales."""
    return _open_zarr(path)[1]


def _check_series(series, path: Path, fmt: str) -> None:
    """Refuse a ``series`` that is not an int, or one given for a format without series."""
    if series is None:
        return
    if isinstance(series, bool) or not isinstance(series, numbers.Integral):
        raise ValueError(f"series must be an int (the index of an image series of a TIFF file), got {series!r}")
    if fmt != "tiff":
        raise ValueError(f"series={series!r} applies to TIFF files (image series); {path} is a "
                         f"{format_for(path).name} file, which holds one image: leave series out")


def _describe_series(tif) -> str:
    """The series of ``tif`` in a few words: ``0: (512, 512) YX uint16, 1: (3, 256, 256) CYX uint16``."""
    items = [f"{i}: {tuple(s.shape)} {s.axes} {s.dtype}" + (f" {s.name!r}" if s.name else "")
             for i, s in enumerate(tif.series[:4])]
    if len(tif.series) > 4:
        items.append(f"... {len(tif.series) - 1}: {tuple(tif.series[-1].shape)} {tif.series[-1].axes}")
    return ", ".join(items)


def _choose_series(path: Path, tif, series: Optional[int]) -> "tuple[int, Optional[str]]":
    """``(index, warning)``: the series to read (``None``: 0) and, when ``None`` was given for a
    file holding several series, the text of the warning that says so.

    The series are tifffile's (``TiffFile.series``): a multi-page stack of one shape, an ImageJ
    hyperstack, a pyramid's sub-resolutions or a thumbnail are one series; an OME-TIFF has one per
    ``Image``; a plain TIFF one per run of pages of one shape (tested in ``tests/test_series.py``).
    """
    count = len(tif.series)
    if count == 0:
        raise ValueError(f"cannot read {path}: tifffile finds no image series in it")
    if series is None:
        if count == 1:
            return 0, None
        return 0, (f"{path} holds {count} image series ({_describe_series(tif)}); reading series 0 only. "
                   f"Pass series= (read_image) or --series (command line) to choose another")
    if not 0 <= int(series) < count:
        raise ValueError(f"series={series} is out of range for {path}: it holds {count} image series, "
                         f"valid series are 0 to {count - 1} ({_describe_series(tif)})")
    return int(series), None


def count_series(path: PathLike) -> int:
    """How many image series ``path`` holds: tifffile's ``TiffFile.series`` of a TIFF, 1 for other formats.

    Parameters
    ----------
    path : str or path-like
        An image file, as in :func:`read_image`.

    Returns
    -------
    int
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if _format(path) != "tiff":
        return 1
    import tifffile

    try:
        with _tifffile_errors(path), tifffile.TiffFile(path) as tif:
            return len(tif.series)
    except Exception as exc:
        if isinstance(exc, ValueError) and str(path) in str(exc):
            raise
        raise ValueError(f"cannot read {path}: {exc}") from exc


def read_image(path: PathLike, *, lazy: bool = False, chunks=None, with_metadata: bool = False,
               progress: Optional[Callable[[int, int], None]] = None, series: Optional[int] = None):
    """Read an image file.

    Parameters
    ----------
    path : str or path-like
        A ``.tif``/``.tiff`` (one series, full resolution; ImageJ and OME-TIFF included), a
        ``.zarr`` array or OME-Zarr group (full-resolution level), a ``.npy`` file (never
        unpickled) or a picture (see :data:`inpaint_plugin._formats.FORMATS`).
    lazy : bool
        Return a dask array that reads chunks on demand (TIFF, zarr, ``.npy``; small picture
        formats are read and wrapped).
    chunks : optional
        Chunks of the lazy array (dask syntax). Default: the file's own chunks (TIFF tiles,
        zarr chunks), grown to about 1024 pixels along the two image axes.
    with_metadata : bool
        Also return the file's :class:`~inpaint_plugin._metadata.ImageMetadata` (axes, channel
        axis, spacing/units, resolution, ImageJ metadata, OME-XML, OME-Zarr multiscales), which
        :func:`write_image` writes back with ``metadata=``.
    progress : callable, optional
        ``progress(done, total)``, called as slabs of an in-memory TIFF or zarr read arrive (the
        command line shows it as a bar); ignored with ``lazy=True``.
    series : int, optional
        Which image series of a TIFF to read: an index of tifffile's ``TiffFile(path).series``
        (e.g. one position of a multi-position OME-TIFF), full resolution. Default: the first; a
        ``UserWarning`` then says so when the file holds several (a stack of pages of one shape
        or an ImageJ hyperstack is one series). With ``with_metadata=True`` the metadata is that
        of the series read. TIFF only.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Without ``with_metadata``.
    (array, ImageMetadata)
        With ``with_metadata=True``.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        Unsupported format, or the file is unreadable or truncated (the message names the path);
        ``series`` not an int, out of range (the message gives the valid range), or given for a
        format other than TIFF.

    Warns
    -----
    UserWarning
        ``series`` left out for a TIFF holding several image series (the message names the file
        and lists the series).
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    fmt = _format(path)
    _check_series(series, path, fmt)
    meta = None
    note = None
    try:
        if fmt == "tiff":
            data, meta, note = _read_tiff(path, lazy, chunks, progress, series)
        elif fmt == "zarr":
            from ._metadata import zarr_metadata

            node, arr = _open_zarr(path)
            meta = zarr_metadata(node, arr, path)
            if not lazy:
                data = _read_slabs(arr, progress)
            else:
                import dask.array as da

                data = da.from_zarr(arr, chunks=chunks or _default_chunks(arr.chunks, arr.shape))
        elif fmt == "npy":
            data = _read_npy(path, lazy, chunks)
        else:
            import imageio.v3 as iio

            data = np.asarray(iio.imread(path))
    except Exception as exc:
        if isinstance(exc, (FileNotFoundError, ValueError)) and str(path) in str(exc):
            raise  # already names the file
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if note is not None:
        warnings.warn(note, UserWarning, stacklevel=2)
    if fmt == "picture" and lazy:
        import dask.array as da

        data = da.from_array(data, chunks=chunks or _plane_chunks(data.shape))
    if not with_metadata:
        return data
    if meta is None:
        axes = None
        if fmt == "picture":
            axes = "YX" if data.ndim == 2 else ("YXS" if data.ndim == 3 else None)
        meta = ImageMetadata(kind=fmt, shape=tuple(data.shape), dtype=str(data.dtype), axes=axes, source=str(path))
    return data, meta


def read_metadata(path: PathLike, *, series: Optional[int] = None) -> ImageMetadata:
    """The metadata of an image file without reading its pixels (TIFF, zarr, ``.npy``; pictures are decoded).

    Parameters
    ----------
    path : str or path-like
        As in :func:`read_image`.
    series : int, optional
        As in :func:`read_image` (the same warning when left out for a file of several series).

    Returns
    -------
    ImageMetadata

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`read_image`.
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    fmt = _format(path)
    _check_series(series, path, fmt)
    if fmt == "picture":
        return read_image(path, with_metadata=True)[1]
    note = None
    try:
        if fmt == "tiff":
            import tifffile

            from ._metadata import tiff_metadata

            with _tifffile_errors(path), tifffile.TiffFile(path) as tif:
                len(tif.pages)
                index, note = _choose_series(path, tif, series)
                _check_tiff_complete(path, tif, index)
                meta = tiff_metadata(tif, path, index)
        elif fmt == "zarr":
            from ._metadata import zarr_metadata

            node, arr = _open_zarr(path)
            return zarr_metadata(node, arr, path)
        else:
            mm = np.load(path, mmap_mode="r", allow_pickle=False)
            return ImageMetadata(kind="npy", shape=tuple(mm.shape), dtype=str(mm.dtype), source=str(path))
    except Exception as exc:
        if isinstance(exc, (FileNotFoundError, ValueError)) and str(path) in str(exc):
            raise
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if note is not None:
        warnings.warn(note, UserWarning, stacklevel=2)
    return meta


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


def _read_slabs(arr, progress) -> np.ndarray:
    """``arr[...]`` (a zarr array) read in about 64 slabs along its first axis, reporting ``progress``."""
    if progress is None or arr.ndim == 0 or arr.shape[0] < 2:
        data = np.asarray(arr[...])
        if progress is not None:
            progress(1, 1)
        return data
    out = np.empty(arr.shape, arr.dtype)
    step = int(arr.chunks[0]) * max(1, -(-arr.shape[0] // (int(arr.chunks[0]) * 64)))
    starts = range(0, arr.shape[0], step)
    for i, start in enumerate(starts, 1):
        out[start:start + step] = arr[start:start + step]
        progress(i, len(starts))
    return out


def _read_tiff(path: Path, lazy: bool, chunks, progress=None, series: Optional[int] = None):
    """``(array, ImageMetadata, warning)`` of one series (full resolution) of a TIFF file; ``warning``
    is the text to warn with (see :func:`_choose_series`) or ``None``."""
    import tifffile

    from ._metadata import tiff_metadata

    with _tifffile_errors(path), tifffile.TiffFile(path) as tif:
        len(tif.pages)  # walks the whole page chain: a cut chain is reported
        index, note = _choose_series(path, tif, series)
        _check_tiff_complete(path, tif, index)
        meta = tiff_metadata(tif, path, index)
        level = tif.series[index].levels[0]
        if not lazy:
            if progress is not None and len(level.shape) >= 2:
                import importlib.util

                if importlib.util.find_spec("zarr") is not None:  # the core install: one read, reported at the end
                    import zarr

                    store = level.aszarr()
                    try:
                        slabs: Any = zarr.open(store, mode="r")
                        return _read_slabs(slabs, progress), meta, note
                    finally:
                        store.close()
            data = level.asarray()
            if progress is not None:
                progress(1, 1)
            return data, meta, note
        shape, dtype = tuple(level.shape), level.dtype
        memmappable = level.dataoffset is not None
        native = None
        if not memmappable:
            import zarr

            store = tif.series[index].aszarr(level=0)
            try:
                opened: Any = zarr.open(store, mode="r")
                native = opened.chunks
            finally:
                store.close()
    import dask.array as da

    src = _TiffArray(path, shape, dtype, memmappable, index)
    if native is None:
        native = _plane_chunks(shape)
    return da.from_array(src, chunks=chunks or _default_chunks(native, shape), lock=False,
                         meta=np.empty((0,) * len(shape), dtype)), meta, note


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
    """Move the finished ``tmp`` to ``path``, replacing what was there (a zarr folder: swapped aside first)."""
    if path.exists() and (path.is_dir() or tmp.is_dir()):  # cannot be replaced in one rename
        old = _temp_name(path)
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)
            raise
        _remove(old)
    else:
        os.replace(tmp, path)


def _output_target(path: Path) -> Path:
    """Where to write ``path``: a symlink is written through (its final target, which keeps the link)."""
    if os.path.islink(path):
        return Path(os.path.realpath(path))
    return path


def _check_target(path: Path, target: Path, kind: str, overwrite: bool) -> None:
    """Refuse outputs that would destroy a user's folder, or an existing output without ``overwrite``."""
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {target.parent} does not exist")
    if target.is_dir():
        if kind != "zarr" or not is_zarr_store(target):
            what = "a zarr store" if kind == "zarr" else f"a {format_for(path).name} file"
            content = "an empty folder" if not any(target.iterdir()) else "a folder holding files"
            raise IsADirectoryError(f"cannot write {path}: it is {content}, not {what}; refusing to replace a "
                                    "folder (only a zarr store is replaced, with overwrite=True)")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")


# --- signals: a write interrupted by SIGTERM / SIGHUP / SIGINT leaves no temporary file ---------

class _SignalExit(BaseException):
    """Raised in the main thread by the write's handler of SIGTERM/SIGHUP (not an ``Exception``)."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGHUP", "SIGINT")) if s is not None)
_guard_depth = 0


class _Guard:
    """State of the signal handlers of one write: ``critical()`` defers signals (the final renames)."""

    def __init__(self):
        self.deferring = False
        self.pending: Optional[int] = None  # the first signal received
        self.raised = False  # whether it was turned into an exception already

    def handler(self, signum, frame):
        if self.pending is None:
            self.pending = signum
        if self.deferring or self.raised:
            return  # while renaming, or already cleaning up after a first signal: act once, later
        self._raise()

    def _raise(self):
        self.raised = True
        if self.pending == getattr(signal, "SIGINT", None):
            raise KeyboardInterrupt
        raise _SignalExit(self.pending)

    @contextmanager
    def critical(self):
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending is not None and not self.raised:
            self._raise()


@contextmanager
def _signal_cleanup():
    """Turn SIGTERM/SIGHUP/SIGINT during a write into an exception (so the temporary output is removed),
    then end the process as the signal would have (SIGINT: ``KeyboardInterrupt``).

    Handlers are installed only from the main thread, only for signals with their default
    disposition (an ignored SIGHUP under ``nohup`` stays ignored; an application's own handler is
    left alone), and only by the outermost write. SIGKILL cannot be caught: a killed writer may
    leave a hidden ``.partial`` file, never a damaged output.
    """
    global _guard_depth
    guard = _Guard()
    if threading.current_thread() is not threading.main_thread() or _guard_depth:
        yield guard
        return
    saved = {}
    for sig in _SIGNALS:
        try:
            old = signal.getsignal(sig)
            if old is signal.SIG_DFL or old is signal.default_int_handler:
                signal.signal(sig, guard.handler)
                saved[sig] = old
        except (ValueError, OSError):  # pragma: no cover - not settable here
            pass

    def restore():
        guard.deferring = True  # a signal arriving now is only recorded
        for sig, old in saved.items():
            signal.signal(sig, old)
        saved.clear()

    _guard_depth += 1
    try:
        yield guard
    except _SignalExit as exc:
        restore()
        os.kill(os.getpid(), exc.signum)  # the default action: the process ends by that signal
        raise SystemExit(128 + exc.signum) from None  # pragma: no cover - reached only if it did not
    finally:
        _guard_depth -= 1
        restore()
        if guard.pending is not None and not guard.raised:  # arrived while restoring: deliver it now
            os.kill(os.getpid(), guard.pending)


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


def _write_zarr(tmp: Path, x, pbar, axes: Optional[str] = None, processing: Optional[str] = None) -> None:
    """Write ``x`` to a new zarr (v3) array whose chunks are the (regular) blocks of ``x``; ``axes``
    become its ``dimension_names`` (lower case), ``processing`` an attribute."""
    import zarr

    x, chunkshape = _regular(x)
    kwargs: Dict[str, Any] = {}
    if axes is not None and len(axes) == x.ndim and len(set(axes)) == len(axes):
        kwargs["dimension_names"] = [a.lower() for a in axes]
    target = zarr.create_array(str(tmp), shape=x.shape, dtype=x.dtype, chunks=chunkshape, **kwargs)
    if processing:
        target.attrs["inpaint_plugin"] = {"processing": processing}
    _stream_blocks(x, target.__setitem__, pbar)


def _write_npy(tmp: Path, x, pbar) -> None:
    """Write ``x`` to a ``.npy`` file through a memory map."""
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=x.dtype, shape=x.shape)
    _stream_blocks(x, out.__setitem__, pbar)
    out.flush()
    del out


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


def _tiff_pages(x, pages: int, pbar):
    """Yield the pages of ``x`` (contiguous ImageJ pages), computing one page at a time."""
    import dask

    for page in np.ndindex(*x.shape[:pages]):
        (plane,) = dask.compute(x[page])
        pbar.update(len(x.chunks[pages]))
        yield np.ascontiguousarray(plane)


def _write_tiff(tmp: Path, x, pbar, compression, opts: dict) -> None:
    """Write ``x`` as a (Big)TIFF from a generator of tiles (or of pages for ImageJ); leading axes
    become pages; ``opts`` come from :func:`inpaint_plugin._metadata.tiff_options`."""
    import tifffile

    opts = dict(opts)
    opts.pop("levels", None)
    pages, tile = opts.pop("pages"), opts.pop("tile")
    if x.ndim < 2:
        raise ValueError(f"a TIFF image needs at least 2 dimensions, got shape {x.shape}")
    if any(max(c) > 1 for c in x.chunks[:pages]):
        # a chunk spanning several pages would be computed once per page: stage it in a zarr array
        # (computed once), then read that back a page at a time
        import dask.array as da

        staging = _temp_name(tmp.with_suffix(".zarr"))
        try:
            _write_zarr(staging, x, _NoBar())
            staged = da.from_zarr(str(staging), chunks=(1,) * pages + tuple(max(c) for c in x.chunks[pages:]))
            _write_tiff(tmp, staged, pbar, compression, {**opts, "pages": pages, "tile": tile})
        finally:
            _remove(staging)
        return
    pbar.total = int(np.prod(x.shape[:pages], dtype=np.int64)) * len(x.chunks[pages])
    pbar.refresh()
    if not opts.get("imagej"):
        opts["bigtiff"] = x.nbytes > 2**32 - 2**25
    data = _tiff_tiles(x, pages, tile, pbar) if tile else _tiff_pages(x, pages, pbar)
    tifffile.imwrite(tmp, data=data, shape=x.shape, dtype=x.dtype, tile=tile, compression=compression, **opts)


class _NoBar:
    """Stands in for a tqdm bar when a nested write needs no progress."""

    total = 0

    def update(self, n=1):
        pass

    def refresh(self):
        pass


# --- OME-Zarr pyramids -----------------------------------------------------------------------------

def _block_chunks(factors) -> tuple:
    return tuple(f * max(1, 512 // f) for f in factors)


def _fit(a, shape):
    """``a`` cropped, or padded with its edge values, to ``shape``."""
    import dask.array as da

    grow = [(0, max(0, t - s)) for t, s in zip(shape, a.shape)]
    if any(g[1] for g in grow):
        a = da.pad(a, grow, mode="edge")
    return a[tuple(slice(0, t) for t in shape)]


def _coarsen(a, factors, reduce, pages: int = 0):
    """``reduce`` over ``factors`` blocks (edges repeated); the first ``pages`` axes stay in chunks of 1."""
    import dask.array as da

    pad = [(0, (-s) % f) for s, f in zip(a.shape, factors)]
    if any(p[1] for p in pad):
        a = da.pad(a, pad, mode="edge")
    chunks = tuple(1 if i < pages and f == 1 else c for i, (f, c) in enumerate(zip(factors, _block_chunks(factors))))
    return da.coarsen(reduce, a.rechunk(chunks), dict(enumerate(factors)))


def _downsample(a, factors, shape, dtype, pages: int = 0):
    """Mean of each ``factors`` block of ``a`` (edges repeated), cropped to ``shape``, in ``dtype``
    (integers rounded and clipped to the dtype's range)."""
    dt = np.dtype(dtype)
    work = a if dt.kind == "f" else a.astype(np.float64)
    out = _fit(_coarsen(work, factors, np.mean, pages), shape)
    if dt.kind == "b":
        return out >= 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.clip(np.rint(out), info.min, info.max).astype(dt)
    return out.astype(dt)


def _write_ome_zarr(tmp: Path, x, meta: ImageMetadata, processing: Optional[str], pbar) -> None:
    """Write ``x`` as the full resolution of an OME-Zarr group like ``meta`` (same attributes, level
    paths, shapes and chunks) and rebuild the coarser levels with the same downsampling factors.

    A coarser pixel is recomputed (mean of the finer level) only where a pixel it covers changed;
    elsewhere it keeps the source level's value (read from ``meta.source`` when still there), so
    the pyramid keeps its own downsampling method outside the filled holes.
    """
    import copy

    import dask.array as da
    import zarr

    zfmt: Any = meta.zarr_format or 2
    root = zarr.open_group(str(tmp), mode="w", zarr_format=zfmt)
    attrs = copy.deepcopy(meta.zarr_attrs or {})
    if processing:
        attrs["inpaint_plugin"] = {"processing": processing}
    root.attrs.update(attrs)
    source = None
    if meta.source and Path(meta.source).is_dir():
        try:
            source = zarr.open_group(meta.source, mode="r")
        except Exception:  # moved or no longer a group: rebuild every coarser pixel
            source = None

    def original(path, shape):
        if source is None:
            return None
        try:
            arr = source[path]
        except KeyError:
            return None
        return da.from_zarr(arr) if tuple(arr.shape) == tuple(shape) else None

    def create(path, shape, chunks):
        kwargs = {}
        if zfmt == 3 and source is not None:
            try:
                names = source[path].metadata.dimension_names
                if names:
                    kwargs["dimension_names"] = names
            except (KeyError, AttributeError):
                pass
        return root.create_array(path, shape=shape, dtype=x.dtype, chunks=chunks, **kwargs)

    x, chunkshape = _regular(x)
    path0 = meta.levels[0][0]
    target = create(path0, x.shape, chunkshape)
    _stream_blocks(x, target.__setitem__, pbar)
    prev = da.from_zarr(target)
    orig = original(path0, x.shape)
    changed = None
    if orig is not None:
        changed = prev != orig
        if x.dtype.kind == "f":
            changed &= ~(da.isnan(prev) & da.isnan(orig))
    for path, shape, chunks, _ in meta.levels[1:]:
        factors = [max(1, int(round(p / s))) for p, s in zip(prev.shape, shape)]
        level = _downsample(prev, factors, shape, x.dtype)
        orig = original(path, shape)
        if changed is not None and orig is not None:
            changed = _fit(_coarsen(changed, factors, np.any), shape)
            level = da.where(changed, level, orig.astype(x.dtype))
        else:
            changed = None
        target = create(path, shape, chunks)
        _stream_blocks(level.rechunk(chunks), target.__setitem__, _NoBar())
        prev = da.from_zarr(target)


def _pyramid(level0, shapes, dtype, original, pages: int = 0) -> list:
    """The coarser levels of ``shapes`` from ``level0`` (dask): the mean of the finer level where a
    pixel it covers differs from ``original(k)`` (the source's level ``k``, or ``None``), the
    source's own value elsewhere (so its downsampling rule is kept outside the changes)."""
    import dask.array as da

    orig = original(0)
    changed = None
    if orig is not None and tuple(orig.shape) == tuple(level0.shape):
        changed = level0 != orig
        if np.dtype(dtype).kind == "f":
            changed &= ~(da.isnan(level0) & da.isnan(orig))
    prev, out = level0, []
    for k, shape in enumerate(shapes[1:], start=1):
        factors = [max(1, int(round(p / s))) for p, s in zip(prev.shape, shape)]
        level = _downsample(prev, factors, shape, dtype, pages)
        orig = original(k)
        if changed is not None and orig is not None and tuple(orig.shape) == tuple(shape):
            changed = _fit(_coarsen(changed, factors, np.any, pages), shape)
            level = da.where(changed, level, orig.astype(dtype))
        else:
            changed = None
        out.append(level)
        prev = level
    return out


def _write_tiff_pyramid(tmp: Path, x, pbar, compression, opts: dict, meta: ImageMetadata) -> None:
    """An OME-TIFF with sub-resolutions (SubIFDs) like the source's: full resolution staged once in
    a temporary zarr array, coarser levels computed from it as in :func:`_pyramid`."""
    import dask.array as da
    import tifffile
    import zarr

    opts = dict(opts)
    pages, tile, shapes = opts.pop("pages"), opts.pop("tile"), opts.pop("levels")
    staging = _temp_name(tmp.with_suffix(".zarr"))
    source_store = None
    try:
        _write_zarr(staging, x, _NoBar())
        rows = lambda a: a.rechunk((1,) * pages + (min(a.shape[pages], 1024),) + a.shape[pages + 1:])  # noqa: E731
        level0 = da.from_zarr(str(staging))
        source = None
        if meta.source and Path(meta.source).is_file():
            try:
                source_store = tifffile.imread(meta.source, aszarr=True, series=meta.series)
                source = zarr.open(source_store, mode="r")
            except Exception:  # moved or changed: rebuild every coarser pixel
                source = None

        def original(k):
            if source is None:
                return None
            try:
                return da.from_zarr(source[str(k)] if isinstance(source, zarr.Group) else source)
            except (KeyError, TypeError):
                return None

        levels = [rows(lv) for lv in _pyramid(level0, shapes, x.dtype, original, pages)]
        level0 = rows(level0)
        pbar.total = int(np.prod(x.shape[:pages], dtype=np.int64)) * len(level0.chunks[pages])
        pbar.refresh()
        bigtiff = x.nbytes > 2**32 - 2**25
        sub = {k: opts[k] for k in ("photometric", "planarconfig") if k in opts}
        with tifffile.TiffWriter(tmp, bigtiff=bigtiff) as tw:
            tw.write(_tiff_tiles(level0, pages, tile, pbar), shape=level0.shape, dtype=x.dtype, tile=tile,
                     compression=compression, subifds=len(levels), **opts)
            for level in levels:
                tw.write(_tiff_tiles(level, pages, tile, _NoBar()), shape=level.shape, dtype=x.dtype, tile=tile,
                         compression=compression, subfiletype=1, metadata=None, **sub)
    finally:
        if source_store is not None:
            source_store.close()
        _remove(staging)


# --- write_image -----------------------------------------------------------------------------------

def _write_picture(tmp: Path, data: np.ndarray, path: Path) -> None:
    import imageio.v3 as iio

    fmt = format_for(path)
    options: Dict[str, Any] = dict(fmt.write_options)
    iio.imwrite(tmp, data, extension=fmt.suffix, **options)


def _write_eager(tmp: Path, data: np.ndarray, kind: str, path: Path, compression, opts) -> None:
    """Write a numpy array without dask (TIFF, npy, pictures)."""
    if kind == "tiff":
        import tifffile

        if data.ndim < 2:
            raise ValueError(f"a TIFF image needs at least 2 dimensions, got shape {data.shape}")
        opts = dict(opts)
        opts.pop("pages")
        opts.pop("levels", None)  # sub-resolutions need dask (they are computed chunk by chunk)
        if not opts.get("imagej"):
            opts["bigtiff"] = data.nbytes > 2**32 - 2**25
        tifffile.imwrite(tmp, data, compression=compression, **opts)
    elif kind == "npy":
        with open(tmp, "wb") as fh:
            np.save(fh, data, allow_pickle=False)
    else:
        _write_picture(tmp, data, path)


def write_image(path: PathLike, array, *, progress: bool = False, overwrite: bool = True, chunks=None,
                compression: Optional[str] = None, metadata: Optional[ImageMetadata] = None,
                processing: Optional[str] = None, allow_lossy: bool = False) -> Path:
    """Write an image, streaming dask arrays chunk by chunk; atomic (temporary file, then rename).

    Parameters
    ----------
    path : str or path-like
        Output file; the format follows the name (see :data:`inpaint_plugin._formats.FORMATS`):
        ``.zarr`` (a zarr array, or an OME-Zarr group with ``metadata`` from one), ``.tif``/``.tiff``
        (tiled, BigTIFF when over 4 GB; leading axes are pages; ``(Y, X, 3|4)`` uint8/uint16 is
        RGB; ImageJ hyperstack or OME-TIFF when ``metadata`` comes from one; ``.ome.tif`` names
        always give OME-TIFF), ``.npy``, or a picture format (computed in memory). A symlink is
        written through: its target is replaced (atomically, from a file beside it), the link stays.
    array : numpy or dask array
    progress : bool
        Show a tqdm progress bar (chunks, or rows of chunks for TIFF).
    overwrite : bool
        Replace an existing output; otherwise raise ``FileExistsError``. A folder is never
        replaced unless it is a zarr store and the output is zarr.
    chunks : optional
        Chunks used to stream a numpy array (dask syntax); dask arrays keep theirs (zarr
        output uses the largest chunk of each axis as its chunk shape).
    compression : str, optional
        TIFF compression (e.g. ``"zlib"``, ``"zstd"``); zarr uses its default compressor.
    metadata : ImageMetadata, optional
        The input's metadata (``read_image(..., with_metadata=True)``), written back when it
        describes an array of this shape: axes, calibration, ImageJ metadata, OME-XML, resolution,
        OME-Zarr multiscales (every level written).
    processing : str, optional
        A line describing the processing, added to the metadata (ImageJ ``Info``, an OME
        ``CommentAnnotation``, the TIFF JSON description, the zarr attributes). Default with
        ``metadata``: "inpainted with inpaint-plugin <version>".
    allow_lossy : bool
        Accept a lossy format (JPEG); refused by default since it changes known pixels.

    Returns
    -------
    Path
        The written path (``path`` itself, also when it is a symlink).

    Raises
    ------
    ValueError
        The format cannot hold the array (dtype, channels, lossy): raised before anything is
        computed, naming a format that can (see :func:`inpaint_plugin._formats.check_writable`).
    IsADirectoryError
        ``path`` is a folder that is not a zarr store (or the output is not zarr).
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        The output's folder does not exist.

    Notes
    -----
    SIGTERM, SIGHUP and SIGINT received while writing (in the main thread) remove the temporary
    output before the process ends as the signal asks (SIGINT: ``KeyboardInterrupt``); an existing
    output is left as it was.
    """
    from tqdm.auto import tqdm

    from ._metadata import tiff_options

    path = Path(os.fspath(path))
    fmt = format_for(path)
    if fmt.kind == "tiff" and compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be a string such as 'zlib', got {compression!r}")
    dask_in = _is_dask(array)
    data: Any = array if dask_in else np.asarray(array)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"array must hold numbers or booleans, got dtype {data.dtype}")
    check_writable(path, data.dtype, data.shape, allow_lossy=allow_lossy, argument="path")
    target = _output_target(path)
    _check_target(path, target, fmt.kind, overwrite)
    if metadata is not None and processing is None:
        processing = processing_note()
    if metadata is not None and not isinstance(metadata, ImageMetadata):
        raise TypeError(f"metadata must be an ImageMetadata from read_image(..., with_metadata=True), "
                        f"got {type(metadata).__name__}")
    opts = tiff_options(path.name, data.shape, data.dtype, metadata, processing) if fmt.kind == "tiff" else {}
    ome_zarr = (fmt.kind == "zarr" and metadata is not None and metadata.kind == "ome-zarr"
                and metadata.fits(data.shape) and bool(metadata.levels))
    zarr_meta = metadata
    if fmt.kind == "zarr" and not ome_zarr and path.name.lower().endswith(".ome.zarr"):
        from ._metadata import new_ome_zarr_metadata

        zarr_meta = new_ome_zarr_metadata(data.shape, data.dtype, metadata)
        ome_zarr = zarr_meta is not None
    with _signal_cleanup() as guard:
        tmp = _temp_name(target)
        try:
            if not dask_in:
                try:
                    import dask.array as da

                    have_dask = True
                except ImportError:  # the core install (no dask extra): written in one go
                    have_dask = False
                if not have_dask or fmt.kind == "picture":
                    _write_eager(tmp, data, fmt.kind, path, compression, opts)
                    with guard.critical():
                        _replace(tmp, target)
                    return path
                data = da.from_array(data, chunks=chunks or _plane_chunks(data.shape))
            x = data
            with tqdm(total=int(np.prod(x.numblocks)), desc=f"writing {path.name}", unit="chunk",
                      disable=not progress) as pbar:
                if ome_zarr and zarr_meta is not None:
                    _write_ome_zarr(tmp, x, zarr_meta, processing, pbar)
                elif fmt.kind == "zarr":
                    fits = metadata if metadata is not None and metadata.fits(x.shape) else None
                    _write_zarr(tmp, x, pbar, axes=fits.axes if fits is not None else None,
                                processing=processing if fits is not None else None)
                elif fmt.kind == "tiff" and "levels" in opts and metadata is not None:
                    _write_tiff_pyramid(tmp, x, pbar, compression, opts, metadata)
                elif fmt.kind == "tiff":
                    _write_tiff(tmp, x, pbar, compression, opts)
                elif fmt.kind == "npy":
                    _write_npy(tmp, x, pbar)
                else:
                    _write_picture(tmp, np.asarray(x.compute()), path)
                    pbar.update(pbar.total)
            with guard.critical():
                _replace(tmp, target)
        except BaseException:
            _remove(tmp)
            raise
    return path
