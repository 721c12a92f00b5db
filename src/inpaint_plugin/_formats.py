"""The one table of image file formats: suffix -> reader/writer, lossless?, channels, dtypes, extras.

Every part of the package that looks at a file name asks this module: :mod:`inpaint_plugin._io`
(which reader/writer to use), the dask streaming path (:func:`inpaint_plugin._dask.stream_inpaint`),
the command line and the training data loader. :func:`check_writable` refuses, before any work, an
output that cannot hold the result and names a format that can.

What each picture format can hold was measured with the installed writer (imageio's Pillow
plugin): writing every dtype x channel layout and reading it back bit for bit. PNG holds uint8
grey/grey+alpha/RGB/RGBA and 16-bit or boolean grey only; BMP drops the alpha channel; JPEG changes
pixel values; WebP is written lossless (``lossless=True, exact=True``) but reads grey back as RGB;
GIF quantises to a palette and reads back as a frame stack, so it is read-only here. OME-TIFF
pixel types come from the OME schema's ``PixelType`` enumeration (no 64-bit integers, no float16).

This module imports nothing heavy: it is safe to use from the CLI before any array library loads.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

__all__ = ["Format", "FORMATS", "READ_SUFFIXES", "check_writable", "default_channel_axis", "format_for",
           "is_zarr_store", "missing_extra"]

PathLike = Union[str, os.PathLike]

_ANY = None  # every numeric dtype (kinds b, i, u, f), any shape


@dataclass(frozen=True)
class Format:
    """One row of the format table.

    Attributes
    ----------
    name : str
        Short name used in messages (``"PNG"``, ``"TIFF"``...).
    kind : str
        Which reader/writer of :mod:`inpaint_plugin._io` handles it: ``"tiff"``, ``"zarr"``,
        ``"npy"`` or ``"picture"``.
    suffixes : tuple of str
        Lower-case file name endings (longest match wins: ``.ome.tif`` before ``.tif``).
    reader, writer : str or None
        The library that reads / writes it (``None``: cannot be written).
    lossless : bool
        Whether writing then reading gives the same values back.
    channels : str
        Where the channels are: ``"axes"`` (the file says: TIFF/OME axes, OME-Zarr axes; RGB samples
        last), ``"last"`` (pictures: ``(Y, X)`` or ``(Y, X, C)``), ``"none"`` (a bare array).
    holds : mapping or None
        ``dtype name -> channel counts it can hold`` (1 = a 2-D grey image), or ``None`` for any
        numeric dtype and shape.
    max_channels : int or None
        Most channels one image can have (``None``: no limit).
    extra : str or None
        The optional dependency group it needs (``"dask"`` for zarr).
    lazy : bool
        Whether it can be read chunk by chunk (without loading the whole file).
    excluded_dtypes : tuple of str
        Dtypes refused although ``holds`` is ``None`` (OME-TIFF has no 64-bit integer pixel type).
    write_options : mapping
        Keyword arguments of the writer (WebP: lossless, keeping the colour under transparent pixels).
    """

    name: str
    kind: str
    suffixes: Tuple[str, ...]
    reader: str
    writer: Optional[str]
    lossless: bool
    channels: str
    holds: Optional[Mapping[str, Tuple[int, ...]]] = _ANY
    max_channels: Optional[int] = None
    extra: Optional[str] = None
    lazy: bool = False
    excluded_dtypes: Tuple[str, ...] = field(default=())
    write_options: Mapping[str, object] = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        """The usual suffix (the first listed)."""
        return self.suffixes[0]


FORMATS: Tuple[Format, ...] = (
    Format("OME-TIFF", "tiff", (".ome.tif", ".ome.tiff"), "tifffile", "tifffile", True, "axes", lazy=True,
           excluded_dtypes=("int64", "uint64", "float16")),
    Format("TIFF", "tiff", (".tif", ".tiff"), "tifffile", "tifffile", True, "axes", lazy=True),
    Format("OME-Zarr", "zarr", (".ome.zarr",), "zarr", "zarr", True, "axes", extra="dask", lazy=True),
    Format("zarr", "zarr", (".zarr",), "zarr", "zarr", True, "axes", extra="dask", lazy=True),
    Format("NumPy", "npy", (".npy",), "numpy", "numpy", True, "none", lazy=True),
    Format("PNG", "picture", (".png",), "imageio", "imageio", True, "last",
           holds={"uint8": (1, 2, 3, 4), "uint16": (1,), "bool": (1,)}, max_channels=4),
    Format("JPEG", "picture", (".jpg", ".jpeg"), "imageio", "imageio", False, "last",
           holds={"uint8": (1, 3)}, max_channels=3),
    Format("BMP", "picture", (".bmp",), "imageio", "imageio", True, "last",
           holds={"uint8": (1, 3), "bool": (1,)}, max_channels=3),
    Format("WebP", "picture", (".webp",), "imageio", "imageio", True, "last",
           holds={"uint8": (3, 4)}, max_channels=4, write_options={"lossless": True, "exact": True}),
    Format("GIF", "picture", (".gif",), "imageio", None, False, "last", max_channels=4),
)

#: Every suffix that can be read, longest first within a format.
READ_SUFFIXES: Tuple[str, ...] = tuple(s for f in FORMATS for s in f.suffixes)

_BY_SUFFIX = sorted(((s, f) for f in FORMATS for s in f.suffixes), key=lambda sf: -len(sf[0]))
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")


def _supported() -> str:
    return ", ".join(f"{f.name} ({', '.join(f.suffixes)})" for f in FORMATS)


def is_zarr_store(path: PathLike) -> bool:
    """Whether ``path`` is a folder holding zarr metadata (``zarr.json``, ``.zarray`` or ``.zgroup``).

    Parameters
    ----------
    path : str or os.PathLike
        A file system path.

    Returns
    -------
    bool
        True for a directory with one of those metadata files directly inside it.
    """
    p = Path(os.fspath(path))
    return p.is_dir() and any((p / name).exists() for name in _ZARR_MARKERS)


def format_for(path: PathLike, *, argument: Optional[str] = None) -> Format:
    """The format of ``path``, from its name (a folder with zarr metadata is zarr whatever its name).

    Parameters
    ----------
    path : str or path-like
        A file or folder name (it need not exist).
    argument : str, optional
        The argument's name for the error message (e.g. ``"-o/--output"``).

    Returns
    -------
    Format

    Raises
    ------
    ValueError
        The suffix is not in the table; the message lists the supported formats.
    """
    p = Path(os.fspath(path))
    name = p.name.lower()
    for suffix, fmt in _BY_SUFFIX:
        if name.endswith(suffix):
            return fmt
    if is_zarr_store(p):
        return _ZARR
    where = f"{argument} " if argument else ""
    raise ValueError(f"{where}{p}: unsupported image format {p.suffix!r}; supported: {_supported()}")


_ZARR = next(f for f in FORMATS if f.name == "zarr")


def missing_extra(fmt: Format) -> Optional[str]:
    """The ``pip install`` hint when the optional dependencies ``fmt`` needs are not installed, else None.

    Parameters
    ----------
    fmt : Format
        A row of the format table; only ``fmt.extra == "dask"`` (zarr: dask and zarr) is checked.

    Returns
    -------
    str or None
        A message naming the format and the extra to install, or None when nothing is missing.
    """
    if fmt.extra != "dask":
        return None
    try:
        import dask.array  # noqa: F401
        import zarr  # noqa: F401
    except ImportError:
        return f"{fmt.name} files need the dask extra: pip install 'inpaint-plugin[dask]'"
    return None


def default_channel_axis(path: PathLike, shape: Sequence[int], axes: Optional[str] = None) -> Optional[int]:
    """Where the channels of an image read from ``path`` are, or ``None`` (no channel axis).

    Parameters
    ----------
    path : str or path-like
        The file it came from (its format's channel convention applies).
    shape : sequence of int
        The array's shape.
    axes : str, optional
        The axes the file declares (one letter per axis, as :class:`inpaint_plugin._io.ImageMetadata`
        gives): ``C`` (channels) or ``S`` (samples, e.g. RGB) is the channel axis.

    Returns
    -------
    int or None
        A non-negative axis index, or ``None``.
    """
    ndim = len(shape)
    if axes is not None and len(axes) == ndim:
        for letter in "CS":
            if letter in axes.upper():
                return axes.upper().index(letter)
        return None
    fmt = format_for(path)
    if fmt.channels == "last" and ndim == 3 and shape[-1] in (2, 3, 4):
        return ndim - 1
    return None


def _channel_count(fmt: Format, shape: Sequence[int], channel_axis: Optional[int]) -> Tuple[Optional[int], str]:
    """(channels, problem) of ``shape`` for a picture format: channels last, 2-D planes only."""
    ndim = len(shape)
    if channel_axis is not None:
        ax = channel_axis + ndim if channel_axis < 0 else channel_axis
        if ndim != 3 or ax != ndim - 1:
            return None, (f"{fmt.name} holds one 2-D image with its channels last, got shape {tuple(shape)} "
                          f"with channel_axis={channel_axis}")
        return int(shape[-1]), ""
    if ndim == 2:
        return 1, ""
    if ndim == 3 and 2 <= shape[-1] <= 4:
        return int(shape[-1]), ""
    if ndim == 3 and shape[-1] > 4:
        return int(shape[-1]), ""
    return None, f"{fmt.name} holds one 2-D image (Y, X) or (Y, X, channels), got shape {tuple(shape)}"


def check_writable(path: PathLike, dtype, shape: Optional[Sequence[int]] = None, *,
                   channel_axis: Optional[int] = None, allow_lossy: bool = False,
                   argument: str = "path") -> Format:
    """Refuse, before any work, an output that cannot hold an image of this dtype and shape.

    Parameters
    ----------
    path : str or path-like
        The output's name (its suffix picks the format).
    dtype : numpy dtype or str
        The result's dtype (results keep the input's dtype).
    shape : sequence of int, optional
        The result's shape; checked against the picture formats' layouts when given.
    channel_axis : int, optional
        The result's channel axis, if any (pictures need it last).
    allow_lossy : bool
        Accept a lossy format (JPEG). Lossy output changes known pixels, so it is refused by default.
    argument : str
        The argument's name used in messages (e.g. ``"-o/--output"`` or ``"mask_out"``).

    Returns
    -------
    Format
        The output's format.

    Raises
    ------
    ValueError
        Unknown suffix; a read-only format; a lossy format without ``allow_lossy``; a dtype, a
        number of channels or a shape the format cannot hold; a missing optional dependency. The
        message names ``argument`` and suggests a format that can hold the result.
    """
    import numpy as np

    fmt = format_for(path, argument=argument)
    where = f"{argument}={os.fspath(path)!s}"
    dt = np.dtype(dtype)
    tif = ".tif (or .npy, .zarr)"
    if fmt.writer is None:
        raise ValueError(f"{where}: {fmt.name} files can be read but not written here (their writer changes "
                         f"the pixels); write .png or {tif} instead")
    if not fmt.lossless and not allow_lossy:
        raise ValueError(f"{where}: {fmt.name} is lossy and would change the known pixels; write .png or {tif} "
                         "instead, or allow it explicitly (allow_lossy=True, --allow-lossy)")
    if dt.kind not in "biuf":
        raise ValueError(f"{where}: cannot write dtype {dt} (numbers or booleans only)")
    if dt.name in fmt.excluded_dtypes:
        raise ValueError(f"{where}: {fmt.name} cannot hold {dt} values; write {tif} instead")
    if fmt.holds is not None:
        held = fmt.holds.get(dt.name)
        if held is None:
            what = ("floating-point" if dt.kind == "f" else "signed (possibly negative)" if dt.kind == "i"
                    else f"{dt.itemsize * 8}-bit")
            can = ", ".join(fmt.holds)
            raise ValueError(f"{where}: {fmt.name} cannot hold {what} {dt} values (it holds {can}); "
                             f"write {tif} instead")
        if shape is not None:
            channels, problem = _channel_count(fmt, shape, channel_axis)
            if channels is not None and fmt.max_channels is not None and channels > fmt.max_channels:
                stack = " or a stack of images" if channel_axis is None and channels > 4 else ""
                problem = (f"{fmt.name} holds one 2-D image with at most {fmt.max_channels} channels, the result "
                           f"has shape {tuple(shape)} ({channels} channels{stack})")
            elif channels is not None and channels not in held:
                layouts = {1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"}
                can = ", ".join(layouts.get(c, str(c)) for c in held)
                problem = (f"{fmt.name} holds {dt} images as {can} only, the result has "
                           f"{channels} channel{'s' if channels > 1 else ''} (shape {tuple(shape)})")
            if problem:
                raise ValueError(f"{where}: {problem}; write {tif} instead")
    hint = missing_extra(fmt)
    if hint:
        raise ValueError(f"{where}: {hint}; or write .tif or .npy instead")
    return fmt
