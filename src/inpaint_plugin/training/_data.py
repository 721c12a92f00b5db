"""Training data for :func:`inpaint_plugin.train`: images -> normalised 2-D planes -> random crops.

Images are a list of arrays or files, a directory (every TIFF/PNG/JPEG/npy file in it), a glob
pattern or one file (read with :func:`inpaint_plugin._io.read_image`). Every array is cut into 2-D
planes: the channel axis (``channel_axis``; for PNG/JPEG/TIFF files a last axis of length 3 or 4 is
taken as RGB(A) and the alpha channel is dropped) is moved last and all other leading axes (z,
time, ...) are stacks of planes.

Each plane is mapped to [0, 1] (values outside clipped). ``"range"`` (the default) does what
:func:`inpaint_plugin.inpaint` does for the deep methods (``Backend.normalize="range"``, see
:mod:`inpaint_plugin._engine`), so that the network is trained on the values it will see: uint8 data
divided by 255; other data mapped by the 0.1th and 99.9th percentiles of the plane's finite values,
one range for the channels of one RGB group (colour kept); inference computes that range on the
known pixels of the whole image, training on each plane. ``"minmax"`` maps the finite minimum and
maximum of each channel to 0 and 1 and ``"percentile"`` the 0.5th and 99.5th percentiles of each
channel; both stretch the contrast of every image, which inference does not do for uint8 data. Channels are mapped to the
network's RGB input with the API's own grouping (:meth:`inpaint_plugin.Backend.channel_groups`): a
grey plane becomes a grey RGB triple, a 2-channel plane ``(c0, c1, c0)``, 5 channels two triples
``(c0, c1, c2)`` and ``(c3, c4, c3)``, each a training sample of its own.

Planes keep their original dtype in memory; crops are converted when they are drawn. Crops holding
NaN/inf are drawn again.
"""
from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _rules

__all__ = ["NORMALIZATIONS", "Plane", "check_images", "check_layout", "load_sources", "plane_weights", "sample_crop", "split_sources"]

NORMALIZATIONS = ("range", "minmax", "percentile")
_PERCENTILES = (0.5, 99.5)
_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".npy")
_RGB_FILES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
_MAX_REDRAWS = 50


@dataclass(frozen=True)
class Plane:
    """One 2-D plane as a network sees it: raw data ``(H, W, C)``, per-channel ``lo``/``scale`` and the
    three channels that make its RGB input.

    Attributes
    ----------
    data : ndarray, shape (H, W, C)
        The raw plane.
    lo, scale : ndarray
        Per-channel offset and scale: the network sees ``(data - lo) / scale`` (as ``inpaint()`` maps it).
    group : tuple of int
        The three channels of ``data`` that make the network's RGB input.
    name : str
        Where the plane comes from (file and index), for messages.
    """

    data: np.ndarray
    lo: np.ndarray
    scale: np.ndarray
    group: tuple
    name: str

    @property
    def shape(self) -> tuple:
        return self.data.shape[:2]

    def crop(self, r: int, c: int, size: int) -> np.ndarray:
        """The ``size`` x ``size`` crop at ``(r, c)`` as float32 ``(size, size, 3)`` in [0, 1] (NaN kept)."""
        g = list(self.group)
        block = self.data[r : r + size, c : c + size][..., g].astype(np.float32)
        block -= self.lo[g].astype(np.float32)
        block /= self.scale[g].astype(np.float32)
        return np.clip(block, 0.0, 1.0)


def _files_of(spec: str) -> list:
    """The image files named by a directory, a glob pattern or a file path."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES)
        if not files:
            raise ValueError(f"images={spec!r}: the directory holds no image files ({', '.join(_SUFFIXES)})")
        return files
    if path.is_file():
        return [path]
    if any(ch in spec for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(spec)) if Path(p).is_file())
        if not files:
            raise ValueError(f"images={spec!r}: the pattern matches no file")
        return files
    raise ValueError(f"images={spec!r}: no such file or directory (give image arrays, files, a directory or a glob)")


def check_images(images) -> list:
    """The items of the user's ``images`` argument (arrays and paths), checked without reading a file.

    Parameters
    ----------
    images : array, path, or list of arrays and paths
        See the module docstring.

    Returns
    -------
    list
        One entry per array or path (a path as ``str``).

    Raises
    ------
    TypeError
        For anything but arrays, paths and lists of them.
    ValueError
        For an empty list, a path that does not exist, a directory without image files or a glob
        pattern that matches no file.
    """
    if isinstance(images, (str, os.PathLike)):
        items = [os.fspath(images)]
    elif isinstance(images, np.ndarray):
        items = [images]
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        raise TypeError(f"images must be an array, a list of arrays or paths, a directory or a glob pattern, "
                        f"got {type(images).__name__}")
    if not items:
        raise ValueError("images is empty")
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            items[i] = os.fspath(item)
            _files_of(items[i])
        elif not (isinstance(item, np.ndarray) or hasattr(item, "__array__")):
            raise TypeError(f"images[{i}] must be an array or a path, got {type(item).__name__}")
    return items


def _collect(images) -> list:
    """``[(name, array, from_file_with_suffix)]`` for the user's ``images`` argument."""
    from inpaint_plugin._io import read_image

    out = []
    for i, item in enumerate(check_images(images)):
        if isinstance(item, str):
            for f in _files_of(item):
                out.append((str(f), np.asarray(read_image(f)), f.suffix.lower()))
        else:
            out.append((f"images[{i}]", np.asarray(item), None))
    return out


def _planes_of(name: str, arr: np.ndarray, suffix, channel_axis) -> list:
    """``[(name, (H, W, C) array)]``: the 2-D planes of one array."""
    kind = arr.dtype.kind
    if kind not in "iuf":
        raise TypeError(f"{name}: images must be integer or float arrays, got dtype {arr.dtype}")
    if channel_axis is None and suffix in _RGB_FILES and arr.ndim >= 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3]  # an RGB(A) picture or TIFF: drop alpha
    elif channel_axis is None:
        arr = arr[..., np.newaxis]
    else:
        if not -arr.ndim <= channel_axis < arr.ndim:
            raise ValueError(f"channel_axis={channel_axis} is out of range for {name} with shape {arr.shape}")
        arr = np.moveaxis(arr, channel_axis, -1)
    if arr.ndim < 3:
        raise ValueError(f"{name}: an image needs two spatial axes, got shape {arr.shape}"
                         + (f" with channel_axis={channel_axis}" if channel_axis is not None else ""))
    flat = arr.reshape((-1,) + arr.shape[-3:])
    if len(flat) == 1:
        return [(name, flat[0])]
    return [(f"{name}[{i}]", plane) for i, plane in enumerate(flat)]


def _range(plane: np.ndarray, normalize: str):
    """Per-channel ``(lo, scale)`` of a plane's finite values; None if it has none."""
    values = plane.reshape(-1, plane.shape[-1])
    if plane.dtype.kind == "f":
        finite = np.isfinite(values).all(axis=1)
        if not finite.any():
            return None
        if not finite.all():
            values = values[finite]
    if normalize == "percentile":
        lo, hi = np.percentile(values, _PERCENTILES, axis=0)
    else:
        lo, hi = values.min(axis=0), values.max(axis=0)
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    return lo, np.where(hi > lo, hi - lo, 1.0)


def _group_range(plane: np.ndarray, group) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(lo, scale)`` of the ``"range"`` mapping for the channels of ``group``."""
    from .._engine import RANGE_PERCENTILES

    n = plane.shape[-1]
    lo, scale = np.zeros(n), np.ones(n)
    chans = sorted(set(group))
    if plane.dtype == np.uint8:
        lo[chans], scale[chans] = 0.0, 255.0
        return lo, scale
    vals = plane[..., chans].reshape(-1).astype(np.float64)
    vals = vals[np.isfinite(vals)]
    a, b = (float(v) for v in np.percentile(vals, RANGE_PERCENTILES))
    if not b > a:  # a flat plane: its min/max, else a unit range around the value
        a, b = float(vals.min()), float(vals.max())
        if not b > a:
            a, b = a - 0.5, a + 0.5
    lo[chans], scale[chans] = a, b - a
    return lo, scale


def check_layout(normalize, channel_axis) -> None:
    """Check the ``normalize`` and ``channel_axis`` arguments (the axis's range depends on each image).

    Parameters
    ----------
    normalize : {"range", "minmax", "percentile"}
    channel_axis : int or None

    Raises
    ------
    ValueError
        For an unknown ``normalize``.
    TypeError
        For a ``channel_axis`` that is not an integer or None.
    """
    if not isinstance(normalize, str) or normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(NORMALIZATIONS)}, got {normalize!r}")
    _rules.check_channel_axis(channel_axis, None)


def load_sources(images, *, channel_axis=None, normalize: str = "range", channels: str = "rgb") -> list:
    """The training sources of ``images``: a list with, for every 2-D plane, its list of :class:`Plane`
    (one per RGB channel group; planes without any finite value are skipped).

    Parameters
    ----------
    images : array, path, or list of arrays and paths
        See the module docstring.
    channel_axis : int, optional
        Axis of the channels in every array (None: none, except RGB(A) files).
    normalize : {"range", "minmax", "percentile"}
    channels : str
        The backend's channel handling (``Backend.channels``), for the channel grouping.

    Returns
    -------
    list of list of Plane
    """
    from .._backend import Backend

    check_layout(normalize, channel_axis)
    sources = []
    for name, arr, suffix in _collect(images):
        for pname, plane in _planes_of(name, arr, suffix, channel_axis):
            rng = _range(plane, normalize)
            if rng is None:
                warnings.warn(f"images: {pname} has no finite pixel and is skipped", stacklevel=3)
                continue
            groups = Backend("_train", print, "", channels=channels).channel_groups(plane.shape[-1])
            if normalize == "range":
                sources.append([Plane(plane, *_group_range(plane, g), tuple(g), pname) for g in groups])
            else:
                sources.append([Plane(plane, rng[0], rng[1], tuple(g), pname) for g in groups])
    if not sources:
        raise ValueError("images: no usable 2-D image found")
    return sources


def _rows(source: list, start: int, stop: int, tag: str) -> list:
    return [Plane(p.data[start:stop], p.lo, p.scale, p.group, f"{p.name}{tag}") for p in source]


def split_sources(sources: list, val_fraction: float, crop_size: int, rng: np.random.Generator):
    """Split into training and validation planes (flat lists of :class:`Plane`).

    With several 2-D sources, ``max(1, round(val_fraction * n))`` of them, chosen with ``rng``, are
    held out. A single source is cut in two: its bottom ``val_fraction`` of rows (at least
    ``crop_size``) is held out. Sources smaller than ``crop_size`` are dropped with a warning.

    Parameters
    ----------
    sources : list of list of Plane
        From :func:`load_sources`.
    val_fraction : float
        Share held out for validation.
    crop_size : int
        Side of the training crops: smaller planes are dropped.
    rng : numpy.random.Generator

    Returns
    -------
    tuple of list of Plane
        ``(train, validation)``.

    Raises
    ------
    ValueError
        If no source (or training part) is at least ``crop_size`` x ``crop_size``.
    """
    big = [s for s in sources if min(s[0].shape) >= crop_size]
    if len(big) < len(sources):
        small = [s[0].name for s in sources if min(s[0].shape) < crop_size]
        if not big:
            raise ValueError(f"crop_size={crop_size} is larger than every image (e.g. {small[0]} has shape "
                             f"{sources[0][0].shape}); lower crop_size (a multiple of 8), or, if the last axis "
                             f"holds colour channels, pass channel_axis=-1")
        warnings.warn(f"{len(small)} image(s) smaller than crop_size={crop_size} are not used "
                      f"(e.g. {small[0]})", stacklevel=3)
    if val_fraction == 0:
        return [p for s in big for p in s], []
    if len(big) >= 2:
        n_val = min(len(big) - 1, max(1, int(round(val_fraction * len(big)))))
        held = set(rng.permutation(len(big))[:n_val].tolist())
        train = [p for i, s in enumerate(big) for p in s if i not in held]
        val = [p for i, s in enumerate(big) for p in s if i in held]
        return train, val
    source = big[0]
    h = source[0].shape[0]
    n_val = max(crop_size, int(round(val_fraction * h)))
    if h - n_val < crop_size:
        raise ValueError(f"images: a single image of height {h} cannot be split into training and validation "
                         f"parts of at least crop_size={crop_size} rows each; give more images, lower crop_size "
                         f"or set val_fraction=0")
    return _rows(source, 0, h - n_val, "[top]"), _rows(source, h - n_val, h, "[bottom]")


def sample_crop(planes: list, weights: np.ndarray, size: int, rng: np.random.Generator, augment: bool) -> np.ndarray:
    """A random ``size`` x ``size`` crop ``(size, size, 3)`` in [0, 1] of a plane drawn with probability
    ``weights``; with ``augment``, a random rotation by a multiple of 90 degrees and a random flip.

    Parameters
    ----------
    planes : list of Plane
    weights : ndarray
        Sampling probability of each plane (:func:`plane_weights`).
    size : int
        Side of the crop, in pixels.
    rng : numpy.random.Generator
    augment : bool
        Random rotations and flips.

    Returns
    -------
    ndarray, shape (size, size, 3)
        float32 in [0, 1].

    Raises
    ------
    ValueError
        If no crop without NaN/inf is found in 50 draws.
    """
    for _ in range(_MAX_REDRAWS):
        plane = planes[int(rng.choice(len(planes), p=weights))]
        h, w = plane.shape
        r, c = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        crop = plane.crop(r, c, size)
        if augment:
            crop = np.rot90(crop, int(rng.integers(0, 4)))
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
        if np.isfinite(crop).all():
            return np.ascontiguousarray(crop)
    raise ValueError(f"images: no {size}x{size} crop without NaN/inf found in {_MAX_REDRAWS} draws; mask the "
                     f"non-finite areas out of the training images or lower crop_size")


def plane_weights(planes: list) -> np.ndarray:
    """Sampling probability of each plane: proportional to its pixel count.

    Parameters
    ----------
    planes : list of Plane

    Returns
    -------
    ndarray of float
        Probabilities summing to one.
    """
    w = np.array([p.shape[0] * p.shape[1] for p in planes], dtype=np.float64)
    return w / w.sum()
